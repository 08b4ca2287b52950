"""Validation runs end to end: real SSH (host keys checked) to simulated hosts, the tools'
own output parsed, every run stored with raw output, failures drained with the measured
figure as reason, cleaning after a lease, and the CLI over the same store."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from opsconsole.alerts.store import list_alerts
from opsconsole.cli import main
from opsconsole.config import load_fleet
from opsconsole.errors import ValidateError
from opsconsole.leases import (
    LeaseRequest,
    allocate_lease,
    create_tenant,
    list_drains,
    release_lease,
)
from opsconsole.leases.handover import NodeState, node_states
from opsconsole.leases.slotspec import parse_slots
from opsconsole.sim.server import SimServer
from opsconsole.store import open_store
from opsconsole.validate import schedule, store
from opsconsole.validate.service import validate_hosts
from opsconsole.validate.settings import validation_settings

N1, N2, N3, N4 = (f"sg1-r01-n0{i}" for i in range(1, 5))


@pytest.fixture
async def sim(tmp_path):
    server = SimServer(4, seed=5)
    await server.start()
    config = server.write_files(tmp_path / "fleet", interval_s=1.0)
    text = config.read_text()
    config.write_text(
        text.replace(
            "[validation]\n",
            '[validation]\nclean_after_lease = true\nrequired_level = "quick"\nmax_age_h = 24.0\n',
        )
    )
    server.config_path = config
    yield server
    await server.stop()


@pytest.fixture
def fleet(sim):
    return load_fleet(sim.config_path)


@pytest.fixture
def vdb(fleet):
    db = open_store(fleet.store_path)
    yield db
    db.close()


async def validate(db, fleet, hosts, **kw):
    """The service is synchronous (CLI, thread workers): run it off the server's loop."""
    return await asyncio.to_thread(validate_hosts, db, fleet, hosts, operator="tester", **kw)


@pytest.mark.slow
async def test_slow_ib_port_fails_fabric_with_measured_vs_expected_and_drains(sim, fleet, vdb):
    sim.fleet.host(N3).inject("ib_slow", port="mlx5_3")
    run = await validate(vdb, fleet, [N1, N2, N3], level="quick", fabric=True)
    assert run.state == "failed"
    assert run.verdicts == {N1: "passed", N2: "passed", N3: "failed"}
    slow = [c for c in run.checks if c.name == "ib_write_bw" and c.status == "fail"]
    assert len(slow) == 2 and all(c.blame == (N3,) for c in slow)
    assert "mlx5_3" in slow[0].summary and "expected >= 360 Gb/s" in slow[0].summary
    assert slow[0].figures["avg_gbps"] < 200 and "BW average[Gb/sec]" in slow[0].raw
    [d] = list_drains(vdb)
    assert d.host == N3 and f"validation run {run.id}" in d.reason and "360 Gb/s" in d.reason
    states = node_states(vdb, fleet)
    assert states[N3].state == NodeState.FAILED
    assert states[N1].state == NodeState.FREE and "quick" in states[N1].passes
    [alert] = list_alerts(vdb)
    assert (alert.rule, alert.severity, alert.labels["host"]) == (
        "validation_failed",
        "critical",
        N3,
    )
    assert "expected >= 360 Gb/s" in alert.summary
    stored = store.get_run(vdb, run.id)
    assert {c.name for c in stored.checks} >= {"dcgm", "pcie", "nvlink", "ib_ports", "nccl_fabric"}
    assert all(c.raw for c in stored.checks if c.name == "dcgm")


async def test_hbm_fault_fails_standard_and_slow_nvlink_fails_local_nccl(sim, fleet, vdb):
    sim.fleet.host(N1).inject("hbm_fail", gpu=5)
    sim.fleet.host(N2).inject("nvlink_slow", gpu=6)
    run = await validate(vdb, fleet, [N1, N2, N4], level="standard")
    assert run.verdicts == {N1: "failed", N2: "failed", N4: "passed"}
    reasons = {d.host: d.reason for d in list_drains(vdb)}
    assert "memory on GPU 5" in reasons[N1]
    assert "nvlink" in reasons[N2] and "expected >= 420 GB/s" in reasons[N2]


async def test_leased_gpus_refuse_the_run_and_the_refusal_is_stored(fleet, vdb):
    now = time.time()
    create_tenant(vdb, "acme", gpu_quota=64, operator="tester", now_ts=now)
    request = LeaseRequest(
        "acme", now, now + 3600, slots=tuple(parse_slots([N4], fleet)), override_reason="t"
    )
    lease = allocate_lease(vdb, fleet, request, operator="tester", now_ts=now)
    with pytest.raises(ValidateError, match=rf"refused: GPUs leased.*{N4} \(lease {lease.id}"):
        await validate(vdb, fleet, [N4])
    [refused] = store.list_runs(vdb, state="refused")
    assert refused.hosts == (N4,)
    assert node_states(vdb, fleet)[N4].state == NodeState.LEASED


async def test_ended_lease_cleans_then_frees_and_a_dirty_node_is_drained(sim, fleet, vdb):
    settings = validation_settings(fleet)
    now = time.time()
    create_tenant(vdb, "acme", gpu_quota=64, operator="tester", now_ts=now)
    assert (
        await asyncio.to_thread(schedule.run_due, vdb, fleet, settings, operator="tester") == []
    )  # switches cleaning on; nothing ended yet
    leases = []
    for host in (N1, N2):
        slots = tuple(parse_slots([host], fleet))
        request = LeaseRequest("acme", now, now + 3600, slots=slots, override_reason="test")
        leases.append(allocate_lease(vdb, fleet, request, operator="tester", now_ts=now))
    sim.fleet.host(N2).inject("dirty_node", gpu=2)
    for lease in leases:
        release_lease(vdb, lease.id, operator="tester", now_ts=time.time())
    states = node_states(vdb, fleet)
    assert states[N1].state == states[N2].state == NodeState.CLEANING
    [run] = await asyncio.to_thread(schedule.run_due, vdb, fleet, settings, operator="tester")
    assert run.level == "clean" and run.reason == "cleaning after lease"
    assert run.verdicts == {N1: "passed", N2: "failed"}
    states = node_states(vdb, fleet)
    assert states[N1].state == NodeState.FREE
    assert states[N2].state == NodeState.FAILED
    assert "survives" not in states[N2].failed_reason  # the tool's words, not the sim's
    assert "compute process" in states[N2].failed_reason
    assert [d.host for d in list_drains(vdb)] == [N2]


async def test_cli_validate_list_and_show(fleet, capsys):
    config = str(fleet.path)
    code = await asyncio.to_thread(main, ["validate", "sg1-r01-n0[1-2]", "-c", config, "--json"])
    run = json.loads(capsys.readouterr().out)
    assert code == 0 and run["state"] == "passed" and run["hosts"] == [N1, N2]
    assert main(["validate", "list", "-c", config, "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [run["id"]]
    assert main(["validate", "show", str(run["id"]), "-c", config, "--json", "--raw"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert any("DCGM Diagnostic" in c["raw"] for c in shown["checks"])
    assert main(["validate", "show", "999", "-c", config]) == 1
    assert "no validation run 999" in capsys.readouterr().err
    assert main(["validate", "nodes", "-c", config, "--json"]) == 0
    nodes = {n["host"]: n for n in json.loads(capsys.readouterr().out)}
    assert nodes[N1]["state"] == "free" and "quick" in nodes[N1]["passes"]
    assert main(["validate", "nosuch-host", "-c", config]) == 1
    assert 'unknown host "nosuch-host"' in capsys.readouterr().err


async def test_unreachable_host_is_an_error_not_a_verdict(sim, fleet, vdb):
    await sim.inject(N4, "host_unreachable")
    run = await validate(vdb, fleet, [N1, N4], level="quick")
    assert run.state == "error" and run.verdicts == {N1: "passed", N4: "error"}
    mine = [c for c in run.checks if c.hosts == (N4,)]
    assert {c.status for c in mine} == {"error"}
    assert all(c.summary.startswith("ssh: refused") for c in mine)
    assert list_drains(vdb) == []  # could not tell: nothing drained


async def test_worker_cleans_a_released_lease_then_frees_it(fleet, vdb):
    from opsconsole.validate.schedule import start_handover_worker

    now = time.time()
    create_tenant(vdb, "acme", gpu_quota=64, operator="tester", now_ts=now)
    slots = tuple(parse_slots([N3], fleet))
    request = LeaseRequest("acme", now, now + 3600, slots=slots, override_reason="test")
    lease = allocate_lease(vdb, fleet, request, operator="tester", now_ts=now)
    worker = start_handover_worker(fleet, fleet.store_path, operator="tester", interval_s=0.2)
    try:
        await asyncio.sleep(0)
        deadline = time.monotonic() + 5
        while vdb.conn.execute("SELECT count(*) FROM handover_epoch").fetchone()[0] == 0:
            assert time.monotonic() < deadline, "the worker never switched cleaning on"
            await asyncio.sleep(0.05)
        release_lease(vdb, lease.id, operator="tester", now_ts=time.time())
        seen = []
        deadline = time.monotonic() + 30
        while not seen or seen[-1] != NodeState.FREE:
            assert time.monotonic() < deadline, f"not free in time: {seen}"
            state = node_states(vdb, fleet)[N3].state
            if not seen or seen[-1] != state:
                seen.append(state)
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(worker.stop)
    assert seen[0] == NodeState.CLEANING and seen[-1] == NodeState.FREE
    [run] = store.list_runs(vdb)
    assert (run.level, run.hosts, run.state) == ("clean", (N3,), "passed")
