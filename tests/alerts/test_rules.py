"""Each built-in rule fires on a synthetic FleetState and clears; for / keep_firing_for."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import AlertSettings, evaluate
from opsconsole.collect.protocol import IbPort
from opsconsole.collect.reasons import HOST_KEY_CHANGED
from tests.alerts.fleet import HOST, T0, feed, fleet_state, gpu, healthy, xid

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
