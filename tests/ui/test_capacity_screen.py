"""The Capacity screen with Pilot: `c` opens it on the capacity demo's leases (a
synthetic 64-host fleet fed through the real FleetState), the ranked bottlenecks, the
per-site bars and the runway chart appear, and Enter jumps to what a bottleneck names:
the fleet view filtered to a rack, or the Leases screen on a lease."""

from __future__ import annotations

import msgspec
import pytest
from textual_plotext import PlotextPlot

from opsconsole.cli.demo import seed_capacity_leases
from opsconsole.store import open_store
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.capacity import CapacityScreen
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.leases import LeasesScreen
from tests.support.ui import OPERATOR, SIZE, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0, synthetic_fleet, warm_fleet

pytestmark = pytest.mark.slow


@pytest.fixture
def capacity_app(tmp_path, clock):
    fleet = synthetic_fleet(64)
    path = tmp_path / "capacity.db"
    seed_capacity_leases(path, fleet, T0)
    db = open_store(path, busy_timeout_s=0.2)
    app = make_app(
        fleet,
        warm_fleet(fleet, samples=5, now_ts=T0),
        clock=clock,
        publish_interval_s=3600,
        store=db,
        operator=OPERATOR,
    )
    yield app
    db.close()


async def open_capacity(pilot, app) -> CapacityScreen:
    app.publish_now()
    await pilot.press("c")
    await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen.report is not None and screen.table.row_count > 0)
    await pilot.pause()
    return screen


async def select(pilot, screen: CapacityScreen, kind: str) -> None:
    """Cursor onto the first bottleneck of `kind`, then Enter."""
    row = next(b.rank - 1 for b in screen.report.bottlenecks if b.kind == kind)
    screen.table.move_cursor(row=row)
    await pilot.pause()
    await pilot.press("enter")


async def test_opens_with_ranked_bottlenecks_bars_and_runway(capacity_app):
    app = capacity_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_capacity(pilot, app)
        report = screen.report
        kinds = [b.kind for b in report.bottlenecks]
        assert {"fragmentation", "runway"} <= set(kinds)
        assert [b.rank for b in report.bottlenecks] == list(range(1, len(kinds) + 1))
        assert report.sources["power"] == "live"  # the console's own readings, not rollups
        text = screen_text(app)
        assert "428 leased · 0 reserved · 84 free" in text  # the SG1 bar's figures
        assert "0 whole nodes · 84 scattered" in text
        assert "over-committed from 2025-06-25" in text
        assert "0 whole nodes free, 84 scattered GPUs" in text  # the top bottleneck
        assert "runway: GPUs committed vs available" in text  # the chart's title
        assert screen.query_one(PlotextPlot).plt is not None


async def test_enter_on_a_rack_bottleneck_filters_the_fleet_to_it(capacity_app):
    app = capacity_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_capacity(pilot, app)
        target = next(b.target for b in screen.report.bottlenecks if b.kind == "fragmentation")
        assert (target.kind, target.name) == ("rack", "sg1-r04")
        await select(pilot, screen, "fragmentation")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
        grid = app.fleet_screen.grid
        assert grid.row_filter.text == "rack=sg1-r04"
        assert grid.current_line == ("rack", "sg1-r04")
        hosts = {name for kind, name in grid.lines if kind == "host"}
        assert hosts == {f"sg1-r04-n{i:02d}" for i in range(1, 17)}
        await pilot.press("escape")  # Esc undoes the jump's filter, as any drill-down
        assert grid.row_filter.text == ""


async def test_enter_on_a_runway_bottleneck_opens_its_lease(capacity_app):
    app = capacity_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_capacity(pilot, app)
        await select(pilot, screen, "runway")
        await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
        leases = app.screen
        await wait_until(pilot, lambda: leases.table.current_lease_id == 8)
        assert app.leases.filter.tenant == "kestrel-ai"


async def test_without_a_store_it_says_why(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
        await pilot.pause()
        assert "capacity needs the leases and the minute rollups" in screen_text(app)


async def test_enter_on_a_one_host_fabric_bottleneck_opens_the_host_and_esc_returns(
    capacity_app,
):
    app = capacity_app
    state = app.driver.feed.state
    host = state.hosts["sg1-r02-n05"]  # under kestrel-ai's lease
    sample = host.sample
    ports = [msgspec.structs.replace(sample.ib[0], state="DOWN", phys_state="Polling")]
    host.apply_sample(msgspec.structs.replace(sample, ib=ports + sample.ib[1:], seq=99), T0)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_capacity(pilot, app)
        fabric = next(b for b in screen.report.bottlenecks if b.kind == "fabric")
        assert (fabric.severity, fabric.target.kind, fabric.target.name) == (
            "critical",
            "host",
            "sg1-r02-n05",
        )
        assert "leases of kestrel-ai cross them" in fabric.title
        await select(pilot, screen, "fabric")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
        assert app.screen.host_name == "sg1-r02-n05"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
