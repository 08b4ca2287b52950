"""The whole chain against the simulated fleet: real SSH servers, the real agent (run by
the simulator on simulated NVML and sysfs), the agentless command through the simulator's
shell, the poller, and the snapshot. Faults injected on some hosts must show up there."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.sim.server import SimServer

N_HOSTS = 20


@pytest.mark.slow
async def test_sim_fleet_snapshot_shows_every_gpu_and_the_faults(tmp_path):
    async with SimServer(N_HOSTS, seed=3, watchdog_timeout_s=0.5) as server:
        names = list(server.hosts)
        lost_host, down_host, ib_host, agentless_host = names[1], names[2], names[3], names[4]
        await server.inject(lost_host, "xid79", gpu=3)
        await server.inject(down_host, "host_unreachable")
        ib_port = server.fleet.host(ib_host).inject("ib_port_down")["port"]
        config = server.write_files(tmp_path, interval_s=0.5)
        fleet = load_fleet(config)
        fleet.hosts = [
            dataclasses.replace(h, mode="agentless") if h.name == agentless_host else h
            for h in fleet.hosts
        ]
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        snapshot = await Poller(fleet, state).poll_once(30.0)

    json.dumps(snapshot)
    hosts = snapshot["hosts"]
    assert set(hosts) == set(names)
    for name, host in hosts.items():
        if name == down_host:
            continue
        assert host["status"] == "fresh", (name, host["reason"], host["detail"])
        assert len(host["gpus"]) == 8
        assert host["gpu_count"] == host["expected_gpus"] == 8
        for gpu in host["gpus"]:
            if (name, gpu["index"]) == (lost_host, 3):
                continue
            assert gpu["readings"]["temp_c"]["state"] == "value", (name, gpu)
            assert gpu["readings"]["power_w"]["state"] == "value"

    assert (hosts[down_host]["status"], hosts[down_host]["reason"]) == ("down", "refused")

    lost = hosts[lost_host]["gpus"][3]
    assert lost["state"] == "lost"
    assert lost["readings"]["temp_c"]["state"] == "error"
    assert any(e["kind"] == "xid" and e["code"] == 79 for e in hosts[lost_host]["events"])

    port = next(p for p in hosts[ib_host]["ib"] if p["device"] == ib_port)
    assert port["state"] != "ACTIVE" and port["live"] is True

    agentless = hosts[agentless_host]
    assert agentless["mode"] == "agentless" and agentless["configured_mode"] == "agentless"
    assert agentless["facts"] is not None and len(agentless["facts"]["gpus"]) == 8
