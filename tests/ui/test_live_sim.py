"""The console on a real simulated fleet: asyncssh servers on loopback, the real Poller on
the console's polling thread, a host that becomes unreachable."""

from __future__ import annotations

import time

import pytest

from opsconsole.config import load_fleet
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.widgets.gpu_table import GpuTable
from tests.support.ui import wait_until
from tests.ui.screen_text import screen_text

pytestmark = pytest.mark.slow

server_module = pytest.importorskip("opsconsole.sim.server")
poller_module = pytest.importorskip("opsconsole.collect.poller")

FAST_POLLING = (
    "[polling]\n"
    "stale_after_s = 2\n"
    "down_after_s = 4\n"
    "connect_jitter_s = 0.1\n"
    "reconnect_backoff_min_s = 0.5\n"
    "reconnect_backoff_max_s = 2\n"
)


async def test_fleet_host_and_an_unreachable_host(tmp_path):
    server = server_module.SimServer(4, 3, "calm")
    await server.start()
    try:
        config = server.write_files(tmp_path, interval_s=0.5)
        config.write_text(config.read_text().replace("[polling]\n", FAST_POLLING))
        fleet = load_fleet(config)
        state = poller_module.FleetState.from_fleet(fleet, now_ts=time.time())
        app = make_app(
            fleet,
            state,
            poller_factory=lambda f, s: poller_module.Poller(f, s),
            publish_interval_s=0.25,
        )
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until(pilot, lambda: "4 fresh" in screen_text(app), timeout_s=60)
            victim = fleet.hosts[1].name
            app.open_host(victim)
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
            table = app.screen.query_one(GpuTable)
            await wait_until(pilot, lambda: table.row_count == 8)
            await wait_until(pilot, lambda: "mlx5_0/1" in screen_text(app))

            await server.inject(victim, "host_unreachable")
            await wait_until(pilot, lambda: "DOWN" in screen_text(app), timeout_s=60)
            assert table.get_cell("0", "util").plain == "—"
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            grid = app.screen.grid
            line = grid._line_strip(grid.lines.index(("host", victim)), grid._columns())
            assert "✖ down" in "".join(s.text for s in line)
            assert "3 fresh" in screen_text(app)
    finally:
        await server.stop()


async def test_console_on_an_unusable_store_still_shows_the_fleet(tmp_path):
    """`opsconsole console` with a store file that is not a database: the fleet is shown
    and the header says the store is not recording."""
    from opsconsole.cli.console import build_console

    server = server_module.SimServer(2, 5, "calm")
    await server.start()
    try:
        config = server.write_files(tmp_path, interval_s=0.5)
        config.write_text(config.read_text().replace("[polling]\n", FAST_POLLING))
        bad_store = tmp_path / "not-a-db.sqlite"
        bad_store.write_bytes(b"this is not a SQLite file, it is " * 100)
        app, release_store = build_console(load_fleet(config), store_path=bad_store)
        try:
            async with app.run_test(size=(120, 36)) as pilot:
                await wait_until(pilot, lambda: "2 fresh" in screen_text(app), timeout_s=60)
                assert "not recording" in screen_text(app)
        finally:
            release_store()
    finally:
        await server.stop()
