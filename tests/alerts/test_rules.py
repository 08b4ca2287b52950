"""Each built-in rule fires on a synthetic FleetState and clears, at its threshold; for /
keep_firing_for; the lease rules read an AlertContext and stay quiet without one."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.impact import AlertContext, EndingLease, IdleGpu, LeaseView
from opsconsole.alerts.rules import BUILTIN_RULES, AlertSettings, evaluate
from opsconsole.collect.reasons import HOST_KEY_CHANGED
from opsconsole.config import Rack
from opsconsole.wire import IbPort
from tests.alerts.fleet import HOST, T0, feed, fleet_state, gpu, healthy, xid

OTHER = "sg1-r01-n02"
HOUR = 3600.0

# durations off, so one evaluation shows what a rule sees
INSTANT = AlertSettings(
    rules={
        n: dataclasses.replace(r, for_s=0.0, keep_firing_for_s=0.0)
        for n, r in AlertSettings().rules.items()
    }
)
PORT_DOWN = IbPort(device="mlx5_0", port=1, state="DOWN", phys_state="Polling", rate_gbps=400.0)
PORT_SLOW = IbPort(device="mlx5_0", port=1, state="ACTIVE", rate_gbps=200.0)

CASES = {
    "gpu_temp_high": ({"gpus": [gpu(0, temp_c=91.0), gpu(1)]}, {"gpu": "0"}),
    "gpu_thermal_clock_events": ({"gpus": [gpu(0), gpu(1, clock_event_reasons=32)]}, {"gpu": "1"}),
    "gpu_power_cap_clock_events": ({"gpus": [gpu(0, clock_event_reasons=4)]}, {"gpu": "0"}),
    "gpu_ecc_uncorrected": ({"gpus": [gpu(0, ecc_volatile_uncorrected=2), gpu(1)]}, {"gpu": "0"}),
    "gpu_row_remap_pending": ({"gpus": [gpu(0, remap_pending=True), gpu(1)]}, {"gpu": "0"}),
    "gpu_row_remap_failed": ({"gpus": [gpu(0, remap_failed=True), gpu(1)]}, {"gpu": "0"}),
    "gpu_lost": ({"gpus": [gpu(0, state="lost", temp_c=None), gpu(1)]}, {"gpu": "0"}),
    "gpu_missing": ({"gpu_count": 1, "gpus": [gpu(0)]}, {}),
    "ib_port_down": ({"ib": [PORT_DOWN]}, {"port": "mlx5_0/1"}),
    "ib_rate_low": ({"ib": [PORT_SLOW]}, {"port": "mlx5_0/1"}),
    "gpu_driver_unresponsive": (
        {"driver": "unresponsive", "driver_detail": "NVML call stuck 12 s"},
        {"reason": "unresponsive"},
    ),
}  # fmt: skip


def rules_of(conditions) -> set[str]:
    return {c.rule for c in conditions}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_sample_rule_fires_and_clears(rule: str):
    fields, labels = CASES[rule]
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    assert evaluate(state, T0, tracker, INSTANT) == []
    feed(state, T0 + 2, healthy(T0 + 2, **fields))
    (cond,) = evaluate(state, T0 + 2, tracker, INSTANT)
    assert cond.rule == rule and cond.kind == "condition"
    assert cond.labels == {"site": "SG1", "rack": "sg1-r01", "host": HOST} | labels
    assert cond.fingerprint and HOST in cond.summary
    feed(state, T0 + 4)
    assert evaluate(state, T0 + 4, tracker, INSTANT) == []


def test_nvlink_down_names_the_link_and_unread_is_not_down():
    state, tracker = fleet_state(), PendingTracker()
    links = gpu(0).nvlink
    down = msgspec.structs.replace(links, up=[True, False])
    unread = msgspec.structs.replace(links, up=[None, None])
    feed(state, T0, healthy(T0, gpus=[gpu(0, nvlink=down), gpu(1, nvlink=unread)]))
    (cond,) = evaluate(state, T0, tracker, INSTANT)
    assert (cond.rule, cond.labels["gpu"], cond.labels["port"]) == (
        "gpu_nvlink_down",
        "0",
        "nvlink1",
    )


def test_host_stale_then_down_carry_the_reason_and_keep_one_fingerprint_per_rule():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    state.hosts[HOST].mark_disconnected("connection lost", "reset by peer", T0 + 1)
    state.hosts["sg1-r01-n02"].apply_sample(healthy(T0 + 12), T0 + 12)
    state.tick(T0 + 12)
    (stale,) = evaluate(state, T0 + 12, tracker, INSTANT)
    assert stale.rule == "host_stale" and stale.labels["reason"]
    state.hosts["sg1-r01-n02"].apply_sample(healthy(T0 + 31), T0 + 31)
    state.tick(T0 + 31)
    (down,) = evaluate(state, T0 + 31, tracker, INSTANT)
    assert down.rule == "host_down" and down.severity == "critical"


def test_host_key_changed_is_critical():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    state.hosts[HOST].mark_connect_failed(HOST_KEY_CHANGED, "ed25519 key differs", T0 + 1)
    rules = {c.rule: c for c in evaluate(state, T0 + 1, tracker, INSTANT)}
    assert set(rules) == {"host_down", "host_key_changed"}
    assert rules["host_key_changed"].severity == "critical"


def test_each_xid_is_its_own_event_alert_classed_by_the_catalogue_with_an_ignore_list():
    state, tracker = fleet_state(), PendingTracker()
    events = [xid(79, T0 - 5, 0), xid(13, T0 - 4, 1), xid(13, T0 - 3, 1), xid(43, T0 - 2, 1)]
    feed(state, T0, healthy(T0, events=events))
    settings = dataclasses.replace(INSTANT, xid_ignore=frozenset({43}))
    conds = evaluate(state, T0, tracker, settings)
    assert sorted(c.rule for c in conds) == ["xid_application", "xid_application", "xid_hardware"]
    assert all(c.kind == "event" for c in conds)
    assert len({c.fingerprint for c in conds}) == 3
    hw = next(c for c in conds if c.rule == "xid_hardware")
    assert hw.severity == "critical" and hw.labels["code"] == "79" and hw.labels["gpu"] == "0"
    app = sorted((c for c in conds if c.rule == "xid_application"), key=lambda c: c.labels["count"])
    assert [c.labels["count"] for c in app] == ["1", "2"]  # a repeat is counted, not hidden
    assert "#2 on this GPU" in app[1].summary and "#" not in app[0].summary


def test_for_holds_back_a_short_spike_and_keep_firing_rides_over_a_dip():
    settings = AlertSettings().with_rule("gpu_temp_high", for_s=10.0, keep_firing_for_s=6.0)
    state, tracker = fleet_state(), PendingTracker()
    hot = healthy(0, gpus=[gpu(0, temp_c=95.0), gpu(1)])
    timeline = [(0, hot, False), (4, None, False), (8, hot, False), (12, hot, False),
                (18, hot, True), (20, None, True), (22, None, True), (24, None, False)]  # fmt: skip
    for offset, sample, firing in timeline:
        ts = T0 + offset
        feed(state, ts, msgspec.structs.replace(sample, ts=ts) if sample else None)
        assert bool(evaluate(state, ts, tracker, settings)) is firing, offset


def test_a_stale_host_neither_clears_nor_starts_its_gpu_conditions():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)]))
    assert rules_of(evaluate(state, T0, tracker, INSTANT)) == {"gpu_temp_high"}
    state.hosts["sg1-r01-n02"].apply_sample(healthy(T0 + 15), T0 + 15)
    state.tick(T0 + 15)
    assert rules_of(evaluate(state, T0 + 15, tracker, INSTANT)) == {"gpu_temp_high", "host_stale"}


def test_every_rule_issue_5_names_is_built_in():
    names = {rule.name for rule in BUILTIN_RULES}
    assert names >= {
        "gpu_temp_high", "gpu_thermal_clock_events", "gpu_power_cap_clock_events",
        "gpu_ecc_uncorrected", "gpu_row_remap_pending", "gpu_row_remap_failed",
        "gpu_nvlink_down", "gpu_missing", "gpu_lost", "gpu_driver_unresponsive",
        "ib_port_down", "ib_rate_low", "ib_errors_rising", "host_stale", "host_down",
        "host_key_changed", "net_rtt_high", "net_loss_high", "lease_ending_soon", "gpu_leased_idle",
        "rack_power_high",
    }  # fmt: skip
    assert len(names) == len(BUILTIN_RULES)


def test_driver_not_ok_fires_for_unavailable_too_and_clears():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0, healthy(T0, driver="unavailable", gpu_count=None, gpus=[]))
    (cond,) = evaluate(state, T0, tracker, INSTANT)
    assert cond.rule == "gpu_driver_unresponsive" and cond.severity == "critical"
    assert "unavailable" in cond.summary
    feed(state, T0 + 2)
    assert evaluate(state, T0 + 2, tracker, INSTANT) == []


def test_rtt_above_the_threshold_fires_and_at_it_clears():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    host = state.hosts[HOST]
    for ts, rtt_ms, firing in [(T0, 50.0, False), (T0 + 2, 50.5, True), (T0 + 4, 12.0, False)]:
        host.rtt_ms = rtt_ms
        feed(state, ts)
        conds = evaluate(state, ts, tracker, INSTANT)
        assert [c.rule for c in conds] == (["net_rtt_high"] if firing else []), ts
    host.rtt_ms = 80.0
    (cond,) = evaluate(state, T0 + 4, tracker, INSTANT)
    assert cond.labels == {"site": "SG1", "rack": "sg1-r01", "host": HOST}
    assert "80.0 ms" in cond.summary


def test_probe_loss_needs_enough_probes_fires_above_the_threshold_and_clears():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    host = state.hosts[HOST]
    for _ in range(3):
        host.record_rtt_probe(None)
    assert evaluate(state, T0, tracker, INSTANT) == []  # three probes say too little
    host.record_rtt_probe(4.0)  # 3 of 4 lost
    (cond,) = evaluate(state, T0 + 2, tracker, INSTANT)
    assert cond.rule == "net_loss_high" and "75 %" in cond.summary
    assert host.rtt_ms == 4.0
    for _ in range(20):
        host.record_rtt_probe(4.0)  # the lost ones age out of the window
    assert host.probe_loss_pct == 0.0
    feed(state, T0 + 4)
    assert evaluate(state, T0 + 4, tracker, INSTANT) == []


def ib_sample(ts: float, symbol_errors: int, xmit_wait: int = 0):
    counters = {"symbol_error": symbol_errors, "port_xmit_wait": xmit_wait, "port_rcv_data": 0}
    port = IbPort(device="mlx5_0", port=1, state="ACTIVE", rate_gbps=400.0, counters=counters)
    return healthy(ts, ib=[port])


def test_ib_errors_rising_fires_above_the_rate_and_clears_when_the_counter_stops():
    state, tracker = fleet_state(), PendingTracker()
    seen = []
    errors = 0
    for step in range(60):  # 2 s apart: 16 steps at 1/s, 12 at 3/s, then flat
        ts = T0 + 2 * step
        errors += 2 if step < 16 else 6 if step < 28 else 0
        feed(state, ts, ib_sample(ts, errors, xmit_wait=1000 * step))
        seen.append(bool(evaluate(state, ts, tracker, INSTANT)))
    assert seen[1:16] == [False] * 15  # exactly 1 error/s is not above the threshold
    assert seen[17] and all(seen[17:28])
    assert not any(seen[-5:])  # the 30 s window has moved past the last error


def test_ib_errors_rising_names_the_port_and_ignores_load_counters():
    state, tracker = fleet_state(), PendingTracker()
    for step in range(10):
        ts = T0 + 2 * step
        feed(state, ts, ib_sample(ts, 10 * step, xmit_wait=10**6 * step))
    (cond,) = evaluate(state, T0 + 18, tracker, INSTANT)
    assert cond.rule == "ib_errors_rising" and cond.labels["port"] == "mlx5_0/1"
    assert "symbol_error 5/s" in cond.summary and "xmit_wait" not in cond.summary
    state2, tracker2 = fleet_state(), PendingTracker()
    for step in range(10):
        ts = T0 + 2 * step
        feed(state2, ts, ib_sample(ts, 0, xmit_wait=10**6 * step))
    assert evaluate(state2, T0 + 18, tracker2, INSTANT) == []


def rack_settings(budget_kw: float | None, overhead_w: float = 1000.0) -> AlertSettings:
    rack = Rack("sg1-r01", "SG1", None, budget_kw, overhead_w)
    return dataclasses.replace(INSTANT, racks={"sg1-r01": rack})


def feed_power(state, ts: float, watts_a: float, watts_b: float | None = 1500.0) -> None:
    """Both hosts' two GPUs at the given power; None leaves host B's power unread."""
    for name, watts in ((HOST, watts_a), (OTHER, watts_b)):
        gpus = [gpu(0, power_w=watts), gpu(1, power_w=watts)]
        state.hosts[name].apply_sample(healthy(ts, gpus=gpus), ts)
    state.tick(ts)


def test_rack_power_fires_above_the_share_of_budget_and_clears():
    settings = rack_settings(10.0)  # 90 % of 10 kW = 9 kW
    state, tracker = fleet_state(), PendingTracker()
    # each host: 2 GPUs + 1,000 W overhead
    for ts, watts, firing in [(T0, 1500.0, False), (T0 + 2, 2000.0, False),
                              (T0 + 4, 2001.0, True), (T0 + 6, 1900.0, False)]:  # fmt: skip
        feed_power(state, ts, watts)
        conds = evaluate(state, ts, tracker, settings)
        assert [c.rule for c in conds] == (["rack_power_high"] if firing else []), ts
        if firing:
            (cond,) = conds
            assert cond.labels == {"site": "SG1", "rack": "sg1-r01"}
            assert "9.0 of 10 kW" in cond.summary and cond.severity == "warning"


def test_rack_power_counts_only_hosts_whose_draw_is_known_and_says_so():
    settings = rack_settings(5.0)
    state, tracker = fleet_state(), PendingTracker()
    feed_power(state, T0, 2000.0, None)  # host B fresh but without power readings
    (cond,) = evaluate(state, T0, tracker, settings)
    assert "5.0 of 5 kW" in cond.summary and "1 host(s) not counted" in cond.summary


def test_a_rack_without_a_budget_never_fires():
    state, tracker = fleet_state(), PendingTracker()
    feed_power(state, T0, 10_000.0, 10_000.0)
    assert evaluate(state, T0, tracker, rack_settings(None)) == []
    assert evaluate(state, T0, PendingTracker(), INSTANT) == []  # no racks in the settings


def ending(lease_id: int, end_ts: float, tenant: str = "acme") -> EndingLease:
    return EndingLease(lease_id, tenant, end_ts, (HOST, OTHER), 16)


def test_lease_ending_soon_is_one_alert_per_lease_within_the_window():
    view = LeaseView(T0, ending=(ending(12, T0 + 5 * HOUR), ending(15, T0 + 26 * HOUR, "globex")))
    context = AlertContext(leases=view)
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    (cond,) = evaluate(state, T0, tracker, INSTANT, context)
    assert cond.rule == "lease_ending_soon" and cond.severity == "info"
    assert cond.labels == {"tenant": "acme", "lease": "12", "leases": "12"}
    assert "(tenant acme, lease 12)" in cond.summary and "sg1-r01-n[01-02]" in cond.summary
    later = T0 + 3 * HOUR  # lease 15 is now 23 h away
    conds = evaluate(state, later, tracker, INSTANT, context)
    assert sorted(c.labels["lease"] for c in conds) == ["12", "15"]
    assert len({c.fingerprint for c in conds}) == 2
    assert evaluate(state, T0 + 26 * HOUR, tracker, INSTANT, context) == []  # both ended


def test_lease_rules_do_not_fire_without_a_context():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    assert evaluate(state, T0, tracker, INSTANT) == []
    assert evaluate(state, T0, tracker, INSTANT, AlertContext()) == []


def test_leased_idle_gpu_fires_from_the_context_unless_busy_now():
    idle = {(HOST, 1): IdleGpu(HOST, 1, 230, 2.0)}
    context = AlertContext(idle_gpus=idle)
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0, healthy(T0, gpus=[gpu(0, util_gpu_pct=0.0), gpu(1, util_gpu_pct=1.0)]))
    (cond,) = evaluate(state, T0, tracker, INSTANT, context)
    assert cond.rule == "gpu_leased_idle" and cond.labels["gpu"] == "1"
    assert "under 5 % for 4 h" in cond.summary
    feed(state, T0 + 2, healthy(T0 + 2, gpus=[gpu(0), gpu(1, util_gpu_pct=5.0)]))
    assert evaluate(state, T0 + 2, tracker, INSTANT, context) == []  # at the threshold: busy
    assert evaluate(state, T0 + 2, PendingTracker(), INSTANT) == []


def test_application_xid_severity_is_configurable_and_others_keep_theirs():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0, healthy(T0, events=[xid(13, T0 - 3, 1), xid(79, T0 - 2, 0)]))
    settings = dataclasses.replace(INSTANT, xid_application_severity="critical")
    by_rule = {c.rule: c.severity for c in evaluate(state, T0, tracker, settings)}
    assert by_rule == {"xid_application": "critical", "xid_hardware": "critical"}
    by_rule = {c.rule: c.severity for c in evaluate(state, T0, PendingTracker(), INSTANT)}
    assert by_rule == {"xid_application": "info", "xid_hardware": "critical"}


def test_a_rule_left_out_of_the_settings_never_fires():
    settings = AlertSettings(rules={n: r for n, r in INSTANT.rules.items() if n != "gpu_temp_high"})
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=99.0), gpu(1)]))
    assert evaluate(state, T0, tracker, settings) == []


def test_an_xid_flood_is_capped_per_host_and_said_once():
    from opsconsole.alerts.rules import XID_ALERTS_PER_HOST

    state, tracker = fleet_state(), PendingTracker()
    flood = [xid(13, T0 - 100 + i, i % 2) for i in range(XID_ALERTS_PER_HOST + 8)]
    feed(state, T0, healthy(T0, events=flood))
    conds = evaluate(state, T0, tracker, INSTANT)
    events = [c for c in conds if c.kind == "event"]
    (said,) = [c for c in conds if c.rule == "xid_flood"]
    assert len(events) == XID_ALERTS_PER_HOST
    newest = {str(round(e.ts)) for e in flood[-XID_ALERTS_PER_HOST:]}
    assert {c.labels["event"].split("@")[1] for c in events} == newest  # the newest kept
    assert f"{XID_ALERTS_PER_HOST + 8} XIDs" in said.summary and said.labels["host"] == HOST
