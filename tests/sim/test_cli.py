"""`opsconsole sim serve` as an operator (and `opsconsole demo`) runs it: a real process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from opsconsole.cli import main
from opsconsole.config import load_fleet
from opsconsole.sim.world import SimFleet
from tests.support.sim import T0, client_options

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_sim_serve_runs_until_sigterm(tmp_path):
    fleet_dir = tmp_path / "fleet"
    ready = tmp_path / "ready"
    command = [
        sys.executable, "-m", "opsconsole", "sim", "serve", "--hosts", "2", "--seed", "1",
        "--scenario", "xid79", "--dir", str(fleet_dir), "--ready-file", str(ready),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = (await process.stdout.readline()).decode()
        assert line == f"serving 2 simulated hosts; config: {fleet_dir / 'config.toml'}\n"
        assert ready.read_text() == f"{fleet_dir / 'config.toml'}\n"
        port = int((fleet_dir / "known_hosts").read_text().split("]:")[1].split()[0])
        async with asyncssh.connect("127.0.0.1", port, options=client_options(fleet_dir)) as conn:
            result = await conn.run("nvidia-smi --query-gpu=index --format=csv,noheader")
        assert result.stdout.split() == [str(i) for i in range(8)]
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _start(tmp_path, *args):
    fleet_dir = tmp_path / "fleet"
    command = [sys.executable, "-m", "opsconsole", "sim", "serve", "--dir", str(fleet_dir), *args]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    line = (await process.stdout.readline()).decode()
    assert line.startswith("serving "), (await process.stderr.read()).decode()
    return process, fleet_dir


@pytest.mark.slow
async def test_sim_serve_with_workers_serves_the_same_world(tmp_path):
    process, fleet_dir = await _start(tmp_path, "--hosts", "6", "--seed", "4", "--workers", "2")
    try:
        fleet = load_fleet(fleet_dir / "config.toml")
        expected = SimFleet(6, seed=4, start_ts=T0)
        for host in fleet.hosts[:2]:  # the two workers each serve one of these
            async with asyncssh.connect(
                host.address, host.port, options=client_options(fleet_dir)
            ) as conn:
                result = await conn.run("nvidia-smi --query-gpu=uuid --format=csv,noheader")
            uuids = [g.uuid for g in expected.host(host.name).gpus]
            assert result.stdout.split() == uuids
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "volcano"], "unknown scenario 'volcano'; choose from calm, "),
        (["--hosts", "0"], "--hosts must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["sim", "serve", "--dir", str(tmp_path), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opsconsole: {message}") and err.count("\n") == 1


def test_an_unwritable_directory_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sim", "serve", "--dir", str(blocker / "fleet")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opsconsole: cannot create {blocker / 'fleet'}") and err.count("\n") == 1
