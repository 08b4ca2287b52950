"""The simulated world on its own: layout, determinism, physics, scenarios."""

from __future__ import annotations

import pytest

from opsconsole.errors import SimError
from opsconsole.sim import hardware as hw
from opsconsole.sim.scenarios import FLAP_PERIOD_S, ONSET_S, SCENARIOS
from opsconsole.sim.world import SimFleet, host_layout
from tests.support.sim import T0, ManualClock, agent_for, step


def test_layout_names_racks_leafs_and_sites():
    assert host_layout(0) == ("sg1-r01-n01", "SG1", "sg1-r01", "sg1-leaf-01")
    assert host_layout(15)[0] == "sg1-r01-n16"
    assert host_layout(16)[:3] == ("sg1-r02-n01", "SG1", "sg1-r02")
    assert host_layout(16 * 4)[3] == "sg1-leaf-02"  # four racks to a leaf
    assert host_layout(16 * 32) == ("my1-r01-n01", "MY1", "my1-r01", "my1-leaf-01")


def test_fleet_has_h200_hosts_with_eight_gpus():
    fleet = SimFleet(20, seed=1, start_ts=T0)
    assert len(fleet.hosts) == 20
    assert list(fleet.racks) == ["sg1-r01", "sg1-r02"]
    host = fleet.host("sg1-r02-n04")
    assert len(host.gpus) == 8
    assert len({g.uuid for h in fleet.hosts.values() for g in h.gpus}) == 160
    assert [p.device for p in host.ib_ports] == [f"mlx5_{i}" for i in range(8)]


def test_bad_fleet_arguments_are_sim_errors():
    with pytest.raises(SimError, match="unknown scenario"):
        SimFleet(4, seed=1, scenario="volcano", start_ts=T0)
    with pytest.raises(SimError, match="no simulated host"):
        SimFleet(4, seed=1, start_ts=T0).host("nope")


def _readings(seed: int, times: list[float]) -> list[dict]:
    fleet = SimFleet(6, seed=seed, start_ts=T0)
    out = []
    for host in fleet.hosts.values():
        clock = ManualClock()
        agent = agent_for(host, clock)
        for t in times:
            sample = step(host, agent, clock, t - clock.now)
            sample.pop("collect_ms")
            out.append(sample)
    return out


def test_same_seed_same_readings_different_seed_different():
    times = [T0 + 2, T0 + 4, T0 + 60, T0 + 3600]
    assert _readings(11, times) == _readings(11, times)
    assert _readings(11, times) != _readings(12, times)


def test_a_host_is_the_same_whatever_the_fleet_size():
    small = SimFleet(2, seed=3, start_ts=T0).host("sg1-r01-n02")
    large = SimFleet(40, seed=3, start_ts=T0).host("sg1-r01-n02")
    for host in (small, large):
        host.advance(T0 + 30)
    assert [g.power_w for g in small.gpus] == [g.power_w for g in large.gpus]


@pytest.mark.slow
def test_power_stays_under_the_limit_and_capping_sets_the_power_cap_bit():
    fleet = SimFleet(32, seed=2, start_ts=T0)
    capped = uncapped = 0
    for t in range(2, 122, 2):
        fleet.advance(T0 + t)
        for host in fleet.hosts.values():
            for gpu in host.gpus:
                assert 0 < gpu.power_w <= hw.GPU_POWER_LIMIT_W
                wanted_w = gpu.idle_w + (gpu.max_draw_w - gpu.idle_w) * gpu.util_gpu_pct / 100
                if gpu.clock_event_reasons & hw.CLOCK_EVENT_SW_POWER_CAP:
                    capped += 1
                    assert gpu.power_w > hw.GPU_POWER_LIMIT_W - 10
                    assert gpu.sm_clock_mhz < hw.GPU_SM_CLOCK_MAX_MHZ
                elif wanted_w < hw.GPU_POWER_LIMIT_W - 10:
                    uncapped += 1
    assert capped > 0 and uncapped > 0


def test_temperature_lags_power():
    fleet = SimFleet(16, seed=4, start_ts=T0)
    host = next(h for h in fleet.hosts.values() if all(g.workload == "idle" for g in h.gpus))
    gpu = host.gpus[0]
    cold_c = gpu.temp_c
    gpu.workload = "training"  # a job lands on an idle GPU
    host.advance(T0 + 1)
    assert gpu.power_w > 400  # power follows utilisation at once...
    steady_c = hw.steady_temp_c(gpu, host.inlet_c)
    assert cold_c < gpu.temp_c < cold_c + (steady_c - cold_c) / 2  # ...temperature does not
    for t in range(2, 400, 2):
        host.advance(T0 + t)
    assert abs(gpu.temp_c - hw.steady_temp_c(gpu, host.inlet_c)) < 2.0


def test_thermal_runaway_climbs_past_90_with_hw_thermal_slowdown():
    fleet = SimFleet(8, seed=1, start_ts=T0)
    host = next(h for h in fleet.hosts.values() if h.gpus[0].workload == "training")
    host.inject("thermal_runaway")
    hottest = 0.0
    for t in range(2, 900, 2):
        host.advance(T0 + t)
        hottest = max(hottest, *(g.temp_c for g in host.gpus))
    assert hottest >= 90
    assert all(g.clock_event_reasons & hw.CLOCK_EVENT_HW_THERMAL for g in host.gpus)
    host.clear("thermal_runaway")
    for t in range(900, 2400, 2):
        host.advance(T0 + t)
    assert max(g.temp_c for g in host.gpus) < 80


def _faulty(fleet: SimFleet, now: float) -> dict[str, set[str]]:
    fleet.apply_scenario(now)
    return {n: set(h.faults) for n, h in fleet.hosts.items() if h.faults}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_scenario_starts_before_its_onset(name):
    fleet = SimFleet(128, seed=9, scenario=name, start_ts=T0)
    assert _faulty(fleet, T0 + ONSET_S - 1) == {}


def test_calm_stays_calm():
    assert _faulty(SimFleet(64, seed=9, start_ts=T0), T0 + 3600) == {}


@pytest.mark.slow
def test_thermal_runaway_scenario_takes_one_whole_rack():
    fleet = SimFleet(128, seed=9, scenario="thermal-runaway", start_ts=T0)
    faulty = _faulty(fleet, T0 + 600)
    racks = {fleet.host(n).rack for n in faulty}
    assert len(racks) == 1
    assert set(faulty) == {n for n, h in fleet.hosts.items() if h.rack in racks}
    assert all(f == {"thermal_runaway"} for f in faulty.values())


def test_xid79_scenario_takes_one_gpu_of_one_node():
    fleet = SimFleet(128, seed=9, scenario="xid79", start_ts=T0)
    faulty = _faulty(fleet, T0 + 600)
    assert list(faulty.values()) == [{"xid79"}]
    host = fleet.host(next(iter(faulty)))
    assert sum(g.lost for g in host.gpus) == 1


def test_fabric_degradation_scenario_stays_on_one_leaf():
    fleet = SimFleet(128, seed=9, scenario="fabric-degradation", start_ts=T0)
    faulty = _faulty(fleet, T0 + 900)
    leafs = {fleet.host(n).leaf for n in faulty}
    assert len(leafs) == 1
    assert set(faulty) == {n for n, h in fleet.hosts.items() if h.leaf in leafs}
    assert all("ib_degraded" in f for f in faulty.values())
    assert any("ib_port_down" in f for f in faulty.values())


def test_host_flapping_scenario_toggles_one_host():
    fleet = SimFleet(32, seed=9, scenario="host-flapping", start_ts=T0)
    start = T0 + ONSET_S + 1
    seen = []
    for period in range(4):
        faulty = _faulty(fleet, start + period * FLAP_PERIOD_S)
        seen.append(sorted(faulty))
    assert len(seen[0]) == 1 and seen[1] == [] and seen[2] == seen[0] and seen[3] == []
    assert [h.name for h in fleet.scenario_hosts] == seen[0]
