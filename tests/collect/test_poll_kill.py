"""`kill -9` of a headless `poll` while it ingests: what it committed is there, the file
passes `PRAGMA integrity_check`, and the next `poll` opens it and carries on."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys

import pytest

from opsconsole.sim.server import SimServer
from tests.collect.test_cli_poll import run_cli


def stored_hellos(path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT count(*) FROM hosts WHERE last_hello IS NOT NULL").fetchone()[
                0
            ]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
async def test_sigkill_of_poll_leaves_a_sound_store(tmp_path):
    async with SimServer(2, seed=5, gpus_per_host=4) as server:
        config = server.write_files(tmp_path, interval_s=0.5)
        store = tmp_path / "opsconsole.db"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opsconsole", "poll", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert b"hosts 2:" in await asyncio.wait_for(process.stdout.readline(), 30)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while stored_hellos(store) < 2:  # committed by the ingest thread
                assert loop.time() < deadline, "hellos not stored"
                await asyncio.sleep(0.1)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == -signal.SIGKILL
        with sqlite3.connect(store) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert stored_hellos(store) == 2
        code, out, err = await run_cli(
            "poll", "--config", str(config), "--once", "--json", "--timeout", "20"
        )
    assert code == 0, err
    assert json.loads(out)["counts"]["fresh"] == 2
