"""The simulator's capacity scenario: which hosts it touches and what that does to the
readings the console will see (a rack over its budget, power-capped GPUs, idle GPUs,
degraded and down IB ports), and the workload faults undoing themselves."""

from __future__ import annotations

import math

import pytest

from opsconsole.sim import hardware as hw
from opsconsole.sim.files import rack_power_budget_kw
from opsconsole.sim.scenarios import (
    CAPACITY_FULL_LOAD,
    CAPACITY_IB_DEGRADED,
    CAPACITY_IB_DOWN,
    CAPACITY_IDLE,
    CAPACITY_RACK_BUDGETS_KW,
    ONSET_S,
)
from opsconsole.sim.world import SimFleet
from tests.support.capacity import T0


def run(fleet: SimFleet, hosts, seconds: float, step_s: float = 2.0) -> None:
    t = ONSET_S
    while t <= seconds:
        fleet.apply_scenario(T0 + t)
        for host in hosts:
            host.advance(T0 + t)
        t += step_s


def test_faults_land_on_the_planned_hosts_after_the_onset():
    fleet = SimFleet(64, seed=0, scenario="capacity", start_ts=T0)
    fleet.apply_scenario(T0 + ONSET_S - 1)
    assert not any(h.faults for h in fleet.hosts.values())
    fleet.apply_scenario(T0 + ONSET_S)
    faulty = {name: sorted(h.faults) for name, h in fleet.hosts.items() if h.faults}
    assert {n for n, f in faulty.items() if "full_load" in f} == set(CAPACITY_FULL_LOAD)
    assert {n for n, f in faulty.items() if "job_ended" in f} == set(CAPACITY_IDLE)
    assert {n for n, f in faulty.items() if "ib_degraded" in f} == set(CAPACITY_IB_DEGRADED)
    assert faulty["sg1-r02-n05"] == ["ib_degraded", "ib_port_down"]
    for name, device in CAPACITY_IB_DEGRADED.items():
        assert fleet.hosts[name].ib_port(device).rate_gbps == hw.IB_RATE_HALF[0]
    for name, device in CAPACITY_IB_DOWN.items():
        assert not fleet.hosts[name].ib_port(device).up


@pytest.mark.slow
def test_the_full_load_rack_stays_over_its_derated_budget_and_power_caps():
    fleet = SimFleet(64, seed=0, scenario="capacity", start_ts=T0)
    budget_kw = dict(CAPACITY_RACK_BUDGETS_KW)["sg1-r01"]
    assert budget_kw < rack_power_budget_kw(8)
    rack = [fleet.hosts[name] for name in CAPACITY_FULL_LOAD]
    run(fleet, rack, ONSET_S + 120)
    capped = [
        g for h in rack for g in h.gpus if g.clock_event_reasons & hw.CLOCK_EVENT_SW_POWER_CAP
    ]
    assert len(capped) >= 16
    lowest_kw = math.inf
    t = ONSET_S + 120
    while t < ONSET_S + 2 * 3600:  # checkpoint dips of several nodes at once included
        t += 10.0
        for host in rack:
            host.advance(T0 + t)
        lowest_kw = min(lowest_kw, sum(h.power_w for h in rack) / 1000.0)  # GPUs + 1800 W each
    assert lowest_kw > budget_kw


def test_job_ended_hosts_idle_and_workloads_come_back_on_clear():
    fleet = SimFleet(64, seed=0, scenario="capacity", start_ts=T0)
    idle = [fleet.hosts[name] for name in CAPACITY_IDLE]
    before = [[(g.workload, list(g.processes)) for g in h.gpus] for h in idle]
    run(fleet, idle, ONSET_S + 20)
    assert all(g.util_gpu_pct == 0 and not g.processes for h in idle for g in h.gpus)
    for host in idle:
        host.clear("job_ended")
    assert [[(g.workload, list(g.processes)) for g in h.gpus] for h in idle] == before


def test_a_smaller_fleet_takes_what_it_has():
    fleet = SimFleet(16, seed=0, scenario="capacity", start_ts=T0)
    assert {h.name for h in fleet.scenario_hosts} == set(CAPACITY_FULL_LOAD)
