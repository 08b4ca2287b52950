"""`opsconsole capacity --poll` against the simulator's capacity scenario over real SSH on
loopback: power, IB ports (with error rates from two looks) and health come live, and the
report ranks the rack over its budget and the degraded leaf from them."""

from __future__ import annotations

import time

import pytest

from opsconsole.capacity import build_report
from opsconsole.capacity.report import read_facts
from opsconsole.cli import capacity as capacity_cli
from opsconsole.config import load_fleet
from opsconsole.sim.scenarios import ONSET_S
from opsconsole.sim.server import SimServer
from opsconsole.sim.world import SimFleet
from opsconsole.store import open_store


@pytest.mark.slow
async def test_poll_reads_power_ports_and_health_live(tmp_path, monkeypatch):
    now = time.time()
    # 21 hosts: all of rack r01 (flat out) and sg1-r02-n01..n05 (n05 has the port down);
    # the world started a minute ago, so the scenario's faults are already on
    sim = SimFleet(21, seed=0, scenario="capacity", start_ts=now - ONSET_S - 30)
    server = SimServer(fleet=sim, watchdog_timeout_s=0.5)
    await server.start()
    try:
        config = server.write_files(tmp_path / "fleet", interval_s=1.0)
        fleet = load_fleet(config)
        monkeypatch.setattr(capacity_cli, "POLL_SETTLE_S", 2.0)
        readings, health = await capacity_cli._poll(fleet, 30.0)
    finally:
        await server.stop()
    assert health == {}
    assert (readings.power_source, readings.rates_known) == ("live", True)
    assert all(h.status == "fresh" for h in readings.hosts.values())
    n05 = {p.port: p for p in readings.hosts["sg1-r02-n05"].ports}
    assert n05["mlx5_3/1"].state == "DOWN"
    assert n05["mlx5_1/1"].rate_gbps == 200.0
    db = open_store(fleet.store_path)
    try:
        facts = read_facts(db, fleet, time.time(), 7)
    finally:
        db.close()
    report = build_report(fleet, facts, readings=readings, health=health, days=7)
    top = report.bottlenecks[0]
    assert (top.kind, top.severity, top.target.name) == ("power", "critical", "sg1-r01")
    leaf = report.fabric[0]
    assert (leaf.ports_down, leaf.ports_below_rate, leaf.hosts_unknown) == (1, 1, 0)
    assert leaf.ports_with_errors >= 1  # degraded links gather symbol errors every second
