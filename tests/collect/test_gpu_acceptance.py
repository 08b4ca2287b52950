"""Extra GPUs: noted by the poller, accepted with `opsconsole hosts accept-gpus` (comment
required, audited), picked up by a running poller and kept across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole.cli import main
from opsconsole.collect.gpu_ledger import GpuLedger
from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.leases import audit_entries, verify_audit
from opsconsole.store import open_store
from tests.alerts.fleet import gpu, healthy

HOST = "n1"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f"""
operator = "alice"
[ssh]
known_hosts = "{tmp_path / "known_hosts"}"
use_ssh_config = false
[store]
path = "{tmp_path / "ops.db"}"
[[sites]]
name = "T1"
[[racks]]
names = "t1-r01"
site = "T1"
[host_classes.g2]
gpus = 2
[[hosts]]
names = "{HOST}"
address = "127.0.0.1"
rack = "t1-r01"
class = "g2"
"""
    )
    return path


def gpus(count: int) -> list:
    out = [gpu(i) for i in range(count)]
    for g in out:
        g.uuid = f"GPU-{g.index:04d}"
    return out


def four_gpus(ts: float):
    return healthy(ts, gpus=gpus(4), gpu_count=4)


def started(config: Path) -> tuple[FleetState, Poller]:
    """A poller as after start(), without connecting: only the ledger sync is exercised."""
    fleet = load_fleet(config)
    state = FleetState.from_fleet(fleet, now_ts=1000.0)
    poller = Poller(fleet, state, clock=lambda: 1000.0)
    poller.sync_gpu_ledger()
    return state, poller


def test_accept_gpus_is_audited_and_survives_a_restart(config, capsys):
    state, poller = started(config)
    host = state.hosts[HOST]
    host.apply_sample(four_gpus(1000.0), 1000.0)
    assert host.extra_gpus == 2 and len(host.gpus()) == 2
    argv = ["hosts", "accept-gpus", HOST, "--config", str(config)]

    assert main([*argv, "--yes"]) == 1  # before the poller noted them: nothing to accept
    assert "no GPUs beyond" in capsys.readouterr().err
    poller.sync_gpu_ledger()  # the tick: the report goes to the ledger
    assert main([*argv, "--yes"]) == 4
    assert "comment is required" in capsys.readouterr().err
    assert main([*argv, "--comment", "upgraded to 4 GPUs, ticket 81"]) == 4
    assert "--yes" in capsys.readouterr().err
    assert main(["hosts", "accept-gpus", "nope", "--config", str(config), "--yes"]) == 1
    assert "nope" in capsys.readouterr().err

    assert main([*argv, "--comment", "upgraded to 4 GPUs, ticket 81", "--yes", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["configured"], shown["reported"]) == (2, 4)
    assert shown["extra_uuids"] == ["GPU-0002", "GPU-0003"]
    db = open_store(load_fleet(config).store_path)
    (entry,) = [e for e in audit_entries(db) if e["action"] == "host.accept_gpus"]
    assert entry["subject"] == f"host:{HOST}" and entry["operator"] == "alice"
    assert "ticket 81" in json.dumps(entry["after"])
    assert verify_audit(db).ok

    assert host.accepted_gpus == 2  # the running poller's next tick takes it
    poller.sync_gpu_ledger()
    assert host.accepted_gpus == 4 and host.extra_gpus == 0
    host.apply_sample(four_gpus(1002.0), 1002.0)
    assert len(host.gpus()) == 4 and host.extra_gpus == 0

    restarted, _ = started(config)  # a new process: the acceptance is read back
    host = restarted.hosts[HOST]
    assert host.accepted_gpus == 4
    host.apply_sample(four_gpus(1010.0), 1010.0)
    assert len(host.gpus()) == 4 and "extra GPUs" not in " ".join(host.distrust_notes())
    assert main([*argv, "--comment", "again", "--yes"]) == 1  # nothing left to accept


def test_more_gpus_than_accepted_are_noted_again(config):
    state, poller = started(config)
    host = state.hosts[HOST]
    host.apply_sample(four_gpus(1000.0), 1000.0)
    poller.sync_gpu_ledger()
    ledger = GpuLedger.for_fleet(poller.fleet)
    ledger.refresh()
    assert ledger.pending[HOST].reported == 4
    ledger.accept(HOST, operator="alice", comment="real", now_ts=1001.0)
    poller.sync_gpu_ledger()
    six = healthy(1003.0, gpus=gpus(6), gpu_count=6)
    host.apply_sample(six, 1003.0)
    assert host.extra_gpus == 2 and host.extra_gpu_uuids == ("GPU-0004", "GPU-0005")
    poller.clock = lambda: 1020.0
    poller.sync_gpu_ledger()
    ledger.refresh()
    assert (ledger.pending[HOST].accepted, ledger.pending[HOST].reported) == (4, 6)
    assert ledger.accepted_count(HOST) == 4


@pytest.mark.slow
async def test_a_running_poller_takes_the_acceptance_from_another_process(config, tmp_path):
    import socket

    from tests.support.waiting import wait_for

    with socket.socket() as probe:  # a port nobody listens on: the host stays down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(
        config.read_text().replace('address = "127.0.0.1"', f'port = {port}\naddress = "127.0.0.1"')
    )
    (tmp_path / "known_hosts").write_text("")
    fleet = load_fleet(config)
    state = FleetState.from_fleet(fleet, now_ts=1000.0)
    poller = Poller(fleet, state)
    await poller.start()
    try:
        host = state.hosts[HOST]
        host.apply_sample(four_gpus(1000.0), 1000.0)
        ledger = GpuLedger.for_fleet(fleet)
        await wait_for(lambda: ledger.refresh() or HOST in ledger.pending)
        assert (
            main(
                ["hosts", "accept-gpus", HOST, "--config", str(config), "--comment", "ok", "--yes"]
            )
            == 0
        )
        await wait_for(lambda: host.accepted_gpus == 4, timeout_s=5.0)
        assert host.extra_gpus == 0
    finally:
        await poller.stop()
