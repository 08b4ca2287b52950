"""The webhook's queue is in SQLite: a message the receiver has not taken yet survives a
kill -9 of `opsconsole poll` and is delivered once the notifier starts again."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys

import pytest

from opsconsole.config import load_fleet
from opsconsole.plugin.host import load_plugins
from opsconsole.sim.server import SimServer
from tests.plugin.receiver import Receiver


async def wait_until(predicate, timeout_s: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def queued(db_path) -> list[dict]:
    with sqlite3.connect(db_path) as db:
        try:
            rows = db.execute("SELECT payload FROM plugin_queue").fetchall()
        except sqlite3.OperationalError:
            return []
    return [json.loads(p) for (p,) in rows]


@pytest.mark.slow
async def test_queued_messages_survive_kill_9_of_poll(tmp_path):
    with Receiver(default_status=503) as receiver:
        async with SimServer(2, seed=3) as server:
            down = next(iter(server.hosts))
            await server.inject(down, "host_unreachable")
            config = server.write_files(tmp_path, interval_s=0.5)
            with config.open("a") as f:
                f.write(
                    f'\n[plugins.webhook]\nurl = "{receiver.url}"\nmax_attempts = 100\n'
                    "backoff_min_s = 0.2\nbackoff_max_s = 0.5\n"
                )
            poll = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opsconsole", "poll", "--config", str(config),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                refused = await wait_until(lambda: len(receiver.requests) >= 1)
                assert refused, "the webhook never tried to deliver"
            finally:
                poll.send_signal(signal.SIGKILL)
                await poll.wait()
            assert poll.returncode == -signal.SIGKILL
        store = tmp_path / "opsconsole.db"
        left = queued(store)
        assert any(m["alert"]["rule"] == "host_down" for m in left)

        receiver.default_status = 200  # the receiver is back; the console restarts
        plugins = load_plugins(load_fleet(config))
        try:
            delivered = await wait_until(lambda: any(
                m["alert"]["rule"] == "host_down" for m in receiver.accepted()
            ))  # fmt: skip
            assert delivered
            assert await wait_until(lambda: queued(store) == [])
        finally:
            plugins.close()
    (message,) = [m for m in receiver.accepted() if m["alert"]["rule"] == "host_down"]
    assert message["alert"]["labels"]["host"] == down and message["transition"] == "firing"
