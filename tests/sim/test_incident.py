"""The incident scenario (alerts demo): which faults are on when, and that the demo
leases its faulty hosts so the alerts name tenants."""

from __future__ import annotations

import random
import time

import pytest

from opsconsole.cli.demo import seed_incident_leases
from opsconsole.config import load_fleet
from opsconsole.leases import list_leases
from opsconsole.sim.scenarios import INCIDENT_PERIOD_S, ONSET_S, SCENARIOS
from opsconsole.sim.server import SimServer
from opsconsole.sim.world import SimFleet
from opsconsole.store import open_store


def faults(elapsed_s: float, hosts: int = 64) -> dict[str, list[str]]:
    fleet = SimFleet(hosts, seed=0, scenario="incident", start_ts=0.0)
    scenario = SCENARIOS["incident"]
    params = scenario.pick(list(fleet.hosts.values()), random.Random(0))
    out = {h: [f for f, _ in scenario.faults_at(p, elapsed_s)] for h, p in params.items()}
    return {h: f for h, f in out.items() if f}


@pytest.mark.slow
def test_faults_start_after_the_onset_clear_and_return_each_cycle():
    assert faults(ONSET_S - 1) == {}
    assert faults(ONSET_S + 70) == {
        "sg1-r01-n01": ["xid79"], "sg1-r01-n02": ["full_load", "thermal_runaway"],
        "sg1-r02-n03": ["ib_port_down"], "sg1-r02-n04": ["nvlink_down"],
    }  # fmt: skip
    cleared = {"sg1-r01-n02": ["full_load"]}  # only the workload: condition alerts resolve
    assert faults(ONSET_S + 250) == cleared
    assert faults(ONSET_S + INCIDENT_PERIOD_S + 1) == {"sg1-r01-n01": ["xid79"]} | cleared


def test_a_small_fleet_skips_the_hosts_it_lacks():
    assert set(faults(ONSET_S + 70, hosts=17)) == {"sg1-r01-n01", "sg1-r01-n02"}


async def test_demo_leases_the_faulty_hosts_to_two_tenants(tmp_path):
    async with SimServer(20, seed=0) as server:
        fleet = load_fleet(server.write_files(tmp_path))
    seed_incident_leases(fleet.store_path, fleet, time.time())
    db = open_store(fleet.store_path)
    leases = {lease.tenant: lease for lease in list_leases(db)}
    db.close()
    assert {h for h, _ in leases["aurora-labs"].slots} == {"sg1-r01-n01", "sg1-r01-n02"}
    assert {h for h, _ in leases["kestrel-ai"].slots} == {"sg1-r02-n03", "sg1-r02-n04"}
