"""The `ipmi_power` collector: ipmitool's DCMI and SDR output parsed (hostile output
refused), and end to end over the simulated fleet's SSH connections: every host's BMC
figure reaches the live state and replaces the GPU-sum estimate in rack power."""

from __future__ import annotations

import asyncio
import time

import pytest

from opsconsole.capacity.live import live_readings, node_power_from_state, state_hosts
from opsconsole.capacity.power import rack_power_rows
from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.plugin.host import load_plugins
from opsconsole.sim.ipmi import has_dcmi, run_ipmitool
from opsconsole.sim.server import SimServer
from opsconsole.sim.world import SimFleet
from plugins.ipmi_power import IpmiPower, parse_power


def test_dcmi_and_sdr_outputs_give_the_node_figure():
    fleet = SimFleet(5, seed=1, start_ts=1_750_000_000.0)
    hosts = list(fleet.hosts.values())
    dcmi_host, sdr_host = hosts[0], hosts[4]
    assert has_dcmi(dcmi_host) and not has_dcmi(sdr_host)
    status, out, _ = run_ipmitool(dcmi_host, ["ipmitool", "dcmi", "power", "reading"])
    assert status == 0 and parse_power(out) == float(out.split("reading:")[1].split()[0])
    status, _, _ = run_ipmitool(sdr_host, ["ipmitool", "dcmi", "power", "reading"])
    assert status != 0
    _, sdr, _ = run_ipmitool(sdr_host, ["ipmitool", "sdr"])
    psu = [
        float(line.split("|")[1].split()[0])
        for line in sdr.splitlines()
        if "Input Power" in line and "Watts" in line
    ]
    assert parse_power(sdr) == sum(psu) > 0
    assert parse_power("Total Power      | 5210 Watts   | ok\nPSU1 Input | 10 Watts | ok") == 5210


def test_hostile_or_useless_output_is_no_reading():
    plugin = IpmiPower.__new__(IpmiPower)
    assert plugin.parse("h", 0, "") == {}
    assert plugin.parse("h", None, "Instantaneous power reading: 500 Watts") == {}
    assert plugin.parse("h", 0, "Instantaneous power reading: 99999999 Watts") == {}
    assert plugin.parse("h", 0, "\x1b[2J" * 1000 + "no sensors") == {}
    assert plugin.parse("h", 0, "Instantaneous power reading: 5300 Watts") == {
        "node_power_w": 5300.0
    }


@pytest.mark.slow
async def test_bmc_power_replaces_the_gpu_sum_in_rack_power(tmp_path):
    async with SimServer(5, seed=11) as server:
        config = server.write_files(tmp_path, interval_s=0.5)
        with config.open("a") as f:
            f.write("\n[plugins.ipmi_power]\ninterval_s = 1.0\n")
        fleet = load_fleet(config)
        plugins = load_plugins(fleet)
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        poller = Poller(fleet, state, probes=plugins.host_probes())
        await poller.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(h.node_power_w is not None for h in state.hosts.values()):
                    break
                await asyncio.sleep(0.1)
            node_w = node_power_from_state(state)
            samples = {name: h.sample for name, h in state.hosts.items()}
        finally:
            await poller.stop()
            await asyncio.to_thread(plugins.close)
    assert set(node_w) == {h.name for h in fleet.hosts}  # DCMI and the SDR fallback alike
    for name, watts in node_w.items():
        gpu_w = sum(g.power_w for g in samples[name].gpus if g.power_w is not None)
        assert watts > gpu_w + 500  # the node's base draw is in the BMC's figure
    readings = live_readings(state_hosts(state), None, node_w)
    (rack,) = rack_power_rows(fleet.hosts, fleet.racks, readings, {})
    assert rack.hosts_reporting == 5
    assert abs(rack.measured_kw - sum(node_w.values()) / 1000) < 1e-9


def test_rack_power_alert_uses_the_bmc_figure_instead_of_gpu_sum_plus_overhead():
    from opsconsole.alerts.conditions import PendingTracker
    from opsconsole.alerts.rules import evaluate
    from tests.alerts.test_rules import T0, feed_power, fleet_state, rack_settings

    settings = rack_settings(10.0)  # fires above 9 kW
    state, tracker = fleet_state(), PendingTracker()
    feed_power(state, T0, 1500.0)  # estimate: 2 x (2 x 1,500 W + 1,000 W) = 8 kW
    assert evaluate(state, T0, tracker, settings) == []
    for host in state.hosts.values():
        host.extra_readings["node_power_w"] = 4800.0  # what the BMCs say: 9.6 kW
    (cond,) = evaluate(state, T0, tracker, settings)
    assert cond.rule == "rack_power_high" and "9.6 of 10 kW" in cond.summary
