"""`opsconsole poll` as an operator runs it, in a subprocess against a simulated fleet
served by this test's event loop (a bad config in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from opsconsole.sim.server import SimServer
from tests.support.cli import run_cli as run_in_process
from tests.support.waiting import wait_for


async def run_cli(*args: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opsconsole",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_poll_once_json_reports_every_host_and_exits_5_when_one_is_down(tmp_path):
    async with SimServer(3, seed=2) as server:
        down = next(iter(server.hosts))
        await server.inject(down, "host_unreachable")
        config = server.write_files(tmp_path, interval_s=0.5)
        code, out, err = await run_cli(
            "poll", "--config", str(config), "--once", "--json", "--timeout", "20"
        )
        kept, _, _ = await run_cli(
            "poll", "--config", str(config), "--once", "--no-store", "--ok-when-down",
            "--timeout", "20",
        )  # fmt: skip
    assert kept == 0
    assert code == 5, err  # hosts_down: a cron job notices
    snapshot = json.loads(out)
    assert snapshot["counts"]["fresh"] == 2
    assert (snapshot["hosts"][down]["status"], snapshot["hosts"][down]["reason"]) == (
        "down",
        "refused",
    )
    with sqlite3.connect(tmp_path / "opsconsole.db") as db:  # --once records too
        assert db.execute("SELECT count(*) FROM hosts").fetchone()[0] == 3
        stored = db.execute("SELECT rule, labels FROM alerts WHERE state = 'firing'").fetchall()
    # ...and evaluates the rules once: the unreachable host is an alert, in the snapshot too
    (alert,) = [a for a in snapshot["alerts"] if a["rule"] == "host_down"]
    assert alert["labels"]["host"] == down and alert["severity"] == "critical"
    assert [r for r, labels in stored if r == "host_down" and down in labels]


def test_poll_with_unusable_config_exits_1(tmp_path):
    result = run_in_process("poll", "--config", str(tmp_path / "missing.toml"), "--once")
    assert result.returncode == 1 and result.stdout == ""
    assert "no such config file" in result.stderr


@pytest.mark.slow
async def test_headless_poll_stops_cleanly_on_sigterm(tmp_path):
    async with SimServer(2, seed=4) as server:
        faulty = next(iter(server.hosts))
        await server.inject(faulty, "xid79", gpu=1)
        config = server.write_files(tmp_path, interval_s=0.5)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "opsconsole",
            "poll",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"hosts 2:" in first
        store = tmp_path / "opsconsole.db"
        await wait_for(lambda: _seen_and_alerted(store, faulty), 30, what="both hosts stored")
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert b"(stopped)" in out and b"2 fresh" in out
    with sqlite3.connect(tmp_path / "opsconsole.db") as db:
        seen = db.execute("SELECT count(*) FROM hosts WHERE last_seen_ts IS NOT NULL")
        assert seen.fetchone()[0] == 2
        rules = {
            r
            for (r,) in db.execute("SELECT rule FROM alerts WHERE labels LIKE ?", (f"%{faulty}%",))
        }
    # the headless poller evaluates rules and notifies in its log (stderr)
    assert {"gpu_lost", "xid_hardware"} <= rules
    assert "ALERT CRITICAL gpu_lost" in err.decode()


def _seen_and_alerted(path: Path, faulty: str) -> bool:
    """Both hosts stored as seen and the faulty one's two alerts recorded (the poll
    flushes its store on its own schedule)."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=0.1)) as db:
            seen = db.execute("SELECT count(*) FROM hosts WHERE last_seen_ts IS NOT NULL")
            alerted = db.execute(
                "SELECT count(DISTINCT rule) FROM alerts"
                " WHERE rule IN ('gpu_lost', 'xid_hardware') AND labels LIKE ?",
                (f"%{faulty}%",),
            )
            return seen.fetchone()[0] == 2 and alerted.fetchone()[0] == 2
    except sqlite3.OperationalError:  # not created yet, or busy
        return False
