"""Lease impact: who holds each slot now, leases ending soon, idle leased GPUs from the
rollups, and the tenant/leases labels on GPU, host and rack alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.alerts.conditions import Condition, PendingTracker, fingerprint
from opsconsole.alerts.impact import (
    AlertContext,
    IdleGpu,
    build_context,
    idle_leased_gpus,
    label_impact,
    lease_change_mark,
    lease_view,
)
from opsconsole.alerts.rules import AlertSettings, evaluate
from opsconsole.alerts.store import apply_conditions
from opsconsole.collect.state import FleetState
from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    cancel_lease,
    create_tenant,
    release_lease,
)
from opsconsole.leases.reader import Booking, DrainRow, HeldSlot, IdleSlot
from opsconsole.store.inventory import sync_inventory
from tests.alerts.fleet import healthy
from tests.leases.fleet import DAY, HOUR, NOW, make_fleet

N1, N2, N3 = "sg1-r01-n01", "sg1-r01-n02", "sg1-r02-n01"


@pytest.fixture
def fleet(tmp_path: Path):
    return make_fleet(tmp_path / "opsconsole.toml")


@pytest.fixture
def leased(db, fleet):
    """acme: lease 1 on N1 GPUs 0-3 for 10 h; globex: lease 2 on N1 GPUs 4-5 for 3 days,
    lease 3 on N2 GPU 0 for 20 h; lease 4 (acme) reserved from tomorrow on N3; lease 5
    (globex) released; lease 6 (acme) on N3 cancelled."""
    sync_inventory(db, fleet)
    for name in ("acme", "globex"):
        create_tenant(db, name, gpu_quota=64, operator="t", now_ts=NOW)

    def book(tenant, host, gpus, start, end):
        slots = tuple(GpuSlot(host, i) for i in gpus)
        request = LeaseRequest(tenant, start, end, slots=slots)
        return allocate_lease(db, fleet, request, operator="t", now_ts=NOW).id

    assert book("acme", N1, range(4), NOW, NOW + 10 * HOUR) == 1
    assert book("globex", N1, range(4, 6), NOW, NOW + 3 * DAY) == 2
    assert book("globex", N2, [0], NOW, NOW + 20 * HOUR) == 3
    assert book("acme", N3, range(8), NOW + DAY, NOW + 2 * DAY) == 4
    assert book("globex", N2, [7], NOW, NOW + DAY) == 5
    release_lease(db, 5, operator="t", now_ts=NOW + 60)
    assert book("acme", N3, [0], NOW + 3 * DAY, NOW + 4 * DAY) == 6
    cancel_lease(db, 6, operator="t", now_ts=NOW + 60)
    return db


LATER = NOW + HOUR


def test_lease_view_holds_each_slot_host_and_rack_now(leased):
    view = lease_view(leased, LATER, 12 * HOUR)
    assert {slot: h.lease_id for slot, h in view.slots.items()} == {
        **{(N1, i): 1 for i in range(4)},
        **{(N1, i): 2 for i in range(4, 6)},
        (N2, 0): 3,
    }
    assert view.slots[(N1, 0)].tenant == "acme" and view.slots[(N1, 4)].tenant == "globex"
    assert [h.lease_id for h in view.hosts[N1]] == [1, 2]
    assert [h.lease_id for h in view.racks["sg1-r01"]] == [1, 2, 3]
    assert N3 not in view.hosts and "sg1-r02" not in view.racks  # reserved, cancelled
    assert (N2, 7) not in view.slots  # released


def test_lease_view_lists_active_leases_ending_within_the_horizon(leased):
    (lease,) = lease_view(leased, LATER, 12 * HOUR).ending
    assert (lease.lease_id, lease.tenant, lease.hosts, lease.gpus) == (1, "acme", (N1,), 4)
    assert lease.end_ts == NOW + 10 * HOUR
    assert [e.lease_id for e in lease_view(leased, LATER, DAY).ending] == [1, 3]
    assert lease_view(leased, LATER, 0).ending == ()


def test_a_view_reads_an_empty_store(db):
    view = lease_view(db, NOW, DAY)
    assert (dict(view.slots), dict(view.hosts), view.ending) == ({}, {}, ())
    assert idle_leased_gpus(db, NOW, 5.0, 4.0) == {}


def cond(rule: str, summary: str = "trouble", **labels: str) -> Condition:
    return Condition(
        rule=rule,
        severity="critical",
        kind="condition",
        labels={"site": "SG1", **labels},
        summary=summary,
    )


def test_gpu_conditions_name_the_slot_holder_and_keep_their_fingerprint(leased):
    view = lease_view(leased, LATER, DAY)
    xid = cond("xid_hardware", f"{N1} GPU 5: XID 79", rack="sg1-r01", host=N1, gpu="5")
    free = cond("gpu_temp_high", rack="sg1-r01", host=N1, gpu="7")
    labelled, unleased = label_impact([xid, free], view)
    assert labelled.labels["tenant"] == "globex" and labelled.labels["leases"] == "2"
    assert labelled.summary == f"{N1} GPU 5: XID 79 (tenant globex, lease 2)"
    assert labelled.fingerprint == xid.fingerprint
    assert labelled.fingerprint == fingerprint(labelled.rule, labelled.labels)
    assert unleased is free


def test_host_conditions_name_every_tenant_on_the_host_sorted(leased):
    view = lease_view(leased, LATER, DAY)
    for rule, extra in [("host_down", {}), ("ib_port_down", {"port": "mlx5_0/1"}),
                        ("gpu_missing", {}), ("host_key_changed", {})]:  # fmt: skip
        (got,) = label_impact([cond(rule, "down", rack="sg1-r01", host=N1, **extra)], view)
        assert (got.labels["tenant"], got.labels["leases"]) == ("acme,globex", "1,2"), rule
        assert got.summary == "down (tenants acme, globex; leases 1, 2)"


def test_rack_conditions_name_every_tenant_in_the_rack(leased):
    view = lease_view(leased, LATER, DAY)
    (got,) = label_impact([cond("rack_power_high", rack="sg1-r01")], view)
    assert (got.labels["tenant"], got.labels["leases"]) == ("acme,globex", "1,2,3")
    (quiet,) = label_impact([cond("rack_power_high", rack="sg1-r02")], view)
    assert "tenant" not in quiet.labels


def test_relabelling_replaces_labels_from_an_earlier_labelling(leased):
    """Alerts resumed from the store carry old labels and summaries: they are rewritten,
    not stacked, and dropped when the lease is gone."""
    view = lease_view(leased, LATER, DAY)
    (once,) = label_impact([cond("host_down", "down", host=N2)], view)
    (twice,) = label_impact([once], view)
    assert twice.summary == "down (tenant globex, lease 3)" and twice.labels == once.labels
    (gone,) = label_impact([once], lease_view(leased, NOW + 21 * HOUR, DAY))
    assert gone.summary == "down" and "tenant" not in gone.labels and "leases" not in gone.labels


def test_label_impact_takes_a_context_or_nothing(leased):
    host_down = cond("host_down", host=N2)
    (got,) = label_impact([host_down], AlertContext(leases=lease_view(leased, LATER, DAY)))
    assert got.labels["tenant"] == "globex"
    assert label_impact([host_down], None) == [host_down]
    assert label_impact([host_down], AlertContext()) == [host_down]


def add_minutes(db, host: str, gpu: int, start_ts: float, utils: list[float | None]) -> None:
    """One gpu_minute row per value from `start_ts`; None is a minute without a reading."""
    first = int(start_ts) // 60 * 60
    db.conn.executemany(
        "INSERT INTO gpu_minute (host, gpu_index, minute_ts, n, util_pct_n, util_pct_min,"
        " util_pct_avg, util_pct_max, temp_c_n, power_w_n, mem_used_mib_n, clock_event_n)"
        " VALUES (?, ?, ?, 30, ?, ?, ?, ?, 0, 0, 0, 0)",
        [(host, gpu, first + 60 * i, 0 if u is None else 30, u, u, u) for i, u in enumerate(utils)],
    )
    db.conn.commit()


WINDOW_MIN = 4 * 60
CHECK = NOW + 5 * HOUR  # every current lease has held its slots for the 4 h window
SINCE = CHECK - 4 * HOUR


def test_idle_needs_every_minute_below_the_threshold_and_most_of_the_window(leased):
    db = leased
    add_minutes(db, N1, 0, SINCE, [2.0] * WINDOW_MIN)  # idle
    add_minutes(db, N1, 1, SINCE, [2.0] * 100 + [40.0] + [2.0] * 139)  # one busy minute
    add_minutes(db, N1, 2, SINCE, [4.9] * WINDOW_MIN)  # just below 5 %: idle
    add_minutes(db, N1, 3, SINCE, [5.0] * WINDOW_MIN)  # at 5 %: not idle
    add_minutes(db, N1, 4, SINCE, [0.0] * 192 + [None] * 48)  # readings cover 80 %: idle
    add_minutes(db, N1, 5, SINCE, [0.0] * 191 + [None] * 49)  # 191 minutes: not enough
    add_minutes(db, N2, 0, SINCE + 3 * HOUR, [0.0] * 60)  # only the last hour stored
    add_minutes(db, N2, 7, SINCE, [0.0] * WINDOW_MIN)  # idle but its lease was released
    add_minutes(db, N3, 3, SINCE, [0.0] * WINDOW_MIN)  # idle but not leased
    add_minutes(db, N1, 0, SINCE - HOUR, [90.0] * 60)  # busy before the window: ignored
    idle = idle_leased_gpus(db, CHECK, 5.0, 4.0)
    assert sorted(idle) == [(N1, 0), (N1, 2), (N1, 4)]
    assert idle[(N1, 0)].minutes == WINDOW_MIN and idle[(N1, 2)].util_pct_max == 4.9


def test_no_readings_is_not_idle(leased):
    """N1 GPU 6-7 are not leased; N1 GPU 0-5 and N2 GPU 0 have no rows at all."""
    assert idle_leased_gpus(leased, CHECK, 5.0, 4.0) == {}
    add_minutes(leased, N1, 0, SINCE, [None] * WINDOW_MIN)
    assert idle_leased_gpus(leased, CHECK, 5.0, 4.0) == {}


def test_a_gpu_leased_for_less_than_the_window_is_not_idle_yet(leased):
    add_minutes(leased, N1, 0, NOW - 2 * HOUR, [0.0] * (5 * 60))
    assert idle_leased_gpus(leased, NOW + 3 * HOUR, 5.0, 4.0) == {}  # lease 1 is 3 h old
    assert (N1, 0) in idle_leased_gpus(leased, NOW + 3 * HOUR, 5.0, 2.0)


def test_build_context_follows_the_rules_and_feeds_evaluate_end_to_end(leased, fleet):
    """Idle GPU and lease ending from the store, a host alert naming its tenants, the
    labels stored with the alert."""
    add_minutes(leased, N1, 0, SINCE, [1.0] * WINDOW_MIN)
    base = AlertSettings().with_rule("lease_ending_soon", window_s=6 * HOUR)
    context = build_context(leased, CHECK, base)
    assert [e.lease_id for e in context.leases.ending] == [1]
    assert set(context.idle_gpus) == {(N1, 0)}
    off = AlertSettings(rules={n: r for n, r in base.rules.items() if n != "gpu_leased_idle"})
    assert build_context(leased, CHECK, off).idle_gpus == {}

    state = FleetState(fleet.hosts, now_ts=CHECK)
    for name, host in state.hosts.items():
        if name != N2:  # GPUs 0 and 1 reported, utilisation unknown
            host.apply_sample(healthy(CHECK, gpu_count=host.expected_gpus), CHECK)
    state.hosts[N2].mark_connect_failed("unreachable", "no route to host", CHECK)
    conditions = evaluate(state, CHECK, PendingTracker(), base, context)
    assert sorted(c.rule for c in conditions) == [
        "gpu_leased_idle", "host_down", "lease_ending_soon"
    ]  # fmt: skip
    by_rule = {c.rule: c for c in label_impact(conditions, context)}
    assert by_rule["host_down"].labels["tenant"] == "globex"
    assert by_rule["lease_ending_soon"].labels == {"tenant": "acme", "lease": "1", "leases": "1"}
    idle = by_rule["gpu_leased_idle"]
    assert (idle.labels["gpu"], idle.labels["tenant"]) == ("0", "acme")
    assert idle.summary.endswith("(tenant acme, lease 1)")
    alerts = {a.rule: a for a in apply_conditions(leased, list(by_rule.values()), CHECK)}
    assert alerts["host_down"].labels["leases"] == "3"


class StubLeases:
    """A `LeaseReader` without SQL: the alert side depends on the protocol only."""

    def __init__(self, held: list[HeldSlot]) -> None:
        self.held = held

    def change_mark(self) -> int:
        return 7

    def held_slots(self, now_ts: float) -> list[HeldSlot]:
        return self.held

    def idle_held_slots(
        self, now_ts: float, since_ts: float, util_pct: float, need_minutes: int
    ) -> list[IdleSlot]:
        assert (now_ts - since_ts, need_minutes) == (4 * HOUR, 192)  # 80 % of 240 minutes
        return [IdleSlot(N2, 3, 200, 1.5)]

    def tenant_names(self) -> tuple[str, ...]:
        return ()

    def bookings(self, since_ts: float, until_ts: float) -> tuple[Booking, ...]:
        return ()

    def drains_before(self, until_ts: float) -> tuple[DrainRow, ...]:
        return ()


def test_the_view_takes_its_leases_from_any_lease_reader(db, fleet):
    sync_inventory(db, fleet)  # racks still come from the store's inventory
    stub = StubLeases([HeldSlot(N1, 0, 41, "initech", NOW + HOUR)])
    view = lease_view(db, NOW, DAY, stub)
    assert view.slots[(N1, 0)].tenant == "initech"
    assert [h.lease_id for h in view.racks["sg1-r01"]] == [41]
    assert [e.lease_id for e in view.ending] == [41]
    idle = idle_leased_gpus(db, NOW, 5.0, 4.0, stub)
    assert idle == {(N2, 3): IdleGpu(N2, 3, 200, 1.5)}
    assert lease_change_mark(db, stub) == 7
