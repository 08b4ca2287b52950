"""The store fills up under a running console: collection goes on, the screen keeps
showing live samples, the header says what is wrong with the store, and once space is
freed the rows that waited are written and the note goes away."""

from __future__ import annotations

import asyncio
import time

import asyncssh
import pytest

from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.ui.app import make_app
from tests.support.collect import FakeCommands, Keys, ServerFarm, stream_samples
from tests.support.tmpfs import fill, small_tmpfs
from tests.support.ui import wait_until
from tests.ui.screen_text import screen_text

pytestmark = pytest.mark.slow


@pytest.fixture
async def farm(tmp_path):
    host_key, other, client = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(3))
    client_path = tmp_path / "id_ed25519"
    client.write_private_key(str(client_path))
    client_path.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client.export_public_key().decode())
    known = tmp_path / "known_hosts"
    known.write_text("")
    servers = ServerFarm(tmp_path, Keys(host_key, other, client_path, authorized, known))
    yield servers
    await servers.close()


def header(app) -> str:
    return "\n".join(screen_text(app).splitlines()[:3])


async def test_console_keeps_live_data_while_the_store_is_full(farm, tmp_path):
    for name in ("h1", "h2"):
        await farm.add(name, stream_samples)
    fleet = farm.fleet(interval_s=0.2)
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        path = disk / "ops.db"
        ingest = TelemetryIngest(open_store(path))
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        built: list[Poller] = []

        def factory(fleet, state):
            built.append(Poller(fleet, state, ingest=ingest, commands=FakeCommands()))
            return built[0]

        app = make_app(fleet, state, poller_factory=factory, publish_interval_s=0.1)
        async with app.run_test(size=(220, 30)) as pilot:  # a long tmp path in the note
            await wait_until(pilot, lambda: "2 fresh" in header(app))
            driver = app.driver

            def flush() -> None:
                done = asyncio.run_coroutine_threadsafe(
                    built[0].writer.flush(time.time(), force=True), driver._loop
                )
                done.result(30)

            filler = fill(disk)
            await asyncio.to_thread(flush)
            await wait_until(pilot, lambda: "disk is full" in header(app))
            assert f"store {path}: writing telemetry: disk is full" in header(app)
            seen = app.model.hosts["h1"].last_sample_ts
            await wait_until(pilot, lambda: app.model.hosts["h1"].last_sample_ts != seen)
            assert "2 fresh" in header(app)  # live data on screen, store or no store

            filler.unlink()
            await asyncio.to_thread(flush)
            await wait_until(pilot, lambda: "disk is full" not in header(app))
        rows = open_store(path).execute("SELECT count(DISTINCT host) FROM gpu_minute").fetchone()
        assert rows == (2,)  # what waited in memory was written once space came back
        ingest.db.close()
