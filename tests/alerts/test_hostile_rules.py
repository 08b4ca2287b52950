"""Alert rules for hosts that lie: identity, UUIDs on two hosts, extra GPUs, clock skew,
over budget; and forged power kept out of the rack sum."""

from __future__ import annotations

import dataclasses

import msgspec

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import AlertSettings, evaluate
from opsconsole.collect.budget import HostBudget
from opsconsole.config import Rack
from opsconsole.wire import GpuInventory, Hello, HostFacts
from tests.alerts.fleet import HOST, T0, fleet_state, gpu, healthy

OTHER = "sg1-r01-n02"
INSTANT = AlertSettings(
    rules={
        n: dataclasses.replace(r, for_s=0.0, keep_firing_for_s=0.0)
        for n, r in AlertSettings().rules.items()
    }
)


def hello(hostname: str, uuids: list[str]) -> Hello:
    gpus = [GpuInventory(index=i, uuid=u) for i, u in enumerate(uuids)]
    return Hello(proto=1, agent_version="t", mode="nvml", ts=T0, host=HostFacts(hostname=hostname),
                 gpus=gpus)  # fmt: skip


def by_rule(conditions) -> dict[str, list]:
    out: dict[str, list] = {}
    for cond in conditions:
        out.setdefault(cond.rule, []).append(cond)
    return out


def test_spoofed_identity_and_shared_uuids_name_both_hosts():
    state, tracker = fleet_state(), PendingTracker()
    state.hosts[HOST].apply_hello(hello(HOST, ["GPU-a", "GPU-b"]), T0)
    state.hosts[OTHER].apply_hello(hello(HOST, ["GPU-a", "GPU-b"]), T0)
    for name in (HOST, OTHER):
        state.hosts[name].apply_sample(healthy(T0), T0)
    fired = by_rule(evaluate(state, T0, tracker, INSTANT))
    (mismatch,) = fired["identity_mismatch"]
    assert mismatch.host == OTHER and mismatch.severity == "critical"
    assert f"configured host {HOST}" in mismatch.summary
    conflicts = {c.host: c.summary for c in fired["uuid_conflict"]}
    assert set(conflicts) == {HOST, OTHER}
    assert f"also on {OTHER}" in conflicts[HOST] and f"also on {HOST}" in conflicts[OTHER]
    state.hosts[OTHER].apply_hello(hello(OTHER, ["GPU-c", "GPU-d"]), T0 + 2)
    assert "uuid_conflict" not in by_rule(evaluate(state, T0 + 2, tracker, INSTANT))


def test_extra_gpus_alert_and_the_rack_sum_leaves_them_out():
    rack = Rack(name="sg1-r01", site="SG1", leaf=None, power_budget_kw=10.0, host_overhead_w=0)
    settings = dataclasses.replace(INSTANT, racks={"sg1-r01": rack})
    state, tracker = fleet_state(), PendingTracker()
    phantom = [gpu(i, power_w=1000.0) for i in range(120)]
    state.hosts[HOST].apply_sample(healthy(T0, gpus=phantom, gpu_count=120), T0)
    state.hosts[OTHER].apply_sample(healthy(T0), T0)
    fired = by_rule(evaluate(state, T0, tracker, settings))
    (extra,) = fired["extra_gpus"]
    assert "120 reported, 2 accepted; 118 kept out" in extra.summary
    assert "rack_power_high" not in fired  # 2 kW of 10, not 120 kW


def test_forged_power_never_reaches_the_rack_sum():
    rack = Rack(name="sg1-r01", site="SG1", leaf=None, power_budget_kw=108.9, host_overhead_w=0)
    settings = dataclasses.replace(INSTANT, racks={"sg1-r01": rack})
    state, tracker = fleet_state(), PendingTracker()
    forged = healthy(T0, gpus=[gpu(0, power_w=1e308), gpu(1, power_w=1e308)])
    forged = msgspec.json.decode(msgspec.json.encode(forged), type=type(forged))
    state.hosts[HOST].apply_sample(forged, T0)
    state.hosts[OTHER].apply_sample(healthy(T0), T0)
    fired = by_rule(evaluate(state, T0, tracker, settings))
    assert "rack_power_high" not in fired
    assert state.hosts[HOST].reason == "invalid readings"


def test_clock_skew_fires_above_threshold_either_way():
    state, tracker = fleet_state(), PendingTracker()
    state.hosts[HOST].apply_sample(healthy(T0 + 3600), T0)  # an hour ahead
    state.hosts[OTHER].apply_sample(healthy(T0 - 5), T0)  # within 10 s
    (skew,) = by_rule(evaluate(state, T0, tracker, INSTANT))["clock_skew"]
    assert skew.host == HOST and "3600 s ahead of the console" in skew.summary


def test_over_budget_host_alerts_with_what_was_dropped():
    state, tracker = fleet_state(), PendingTracker()
    clock = [0.0]
    budget = HostBudget(2.0, clock=lambda: clock[0])
    state.hosts[HOST].budget = budget
    for _ in range(200):
        budget.admit_line(100)
    state.hosts[HOST].apply_sample(healthy(T0), T0)
    state.hosts[OTHER].apply_sample(healthy(T0), T0)
    (over,) = by_rule(evaluate(state, T0, tracker, INSTANT))["host_over_budget"]
    assert over.host == HOST and "lines" in over.summary and "dropped" in over.summary
    assert state.hosts[HOST].reason == "over budget"
    clock[0] = 120.0
    assert "host_over_budget" not in by_rule(evaluate(state, T0 + 1, tracker, INSTANT))
