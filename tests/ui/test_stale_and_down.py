"""A host that stops answering: stale, then down, and never an old number shown as live."""

from __future__ import annotations

import pytest
from rich.text import Text

from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.widgets.gpu_table import GpuTable
from opsconsole.ui.widgets.host_facts import HostFacts
from tests.support.ui import SIZE, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import feed_all, xid_event

SILENT = "sg1-r01-n02"


def grid_line(grid, name: str):
    return grid._line_strip(grid.lines.index(("host", name)), grid._columns())


def advance_without(state, clock, seconds: float, silent: str = SILENT) -> None:
    """Every host but `silent` keeps sampling every 2 s for `seconds`."""
    for _ in range(int(seconds // 2)):
        feed_all(state, clock.advance(2), 100, skip={silent})
    state.tick(clock())


class TestFleetMarking:
    @pytest.mark.slow
    async def test_stale_host_shows_age_and_dimmed_uncoloured_cells(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            advance_without(state, clock, 14)
            app.publish_now()
            await pilot.pause()
            grid = app.screen.grid
            strip = grid_line(grid, SILENT)
            text = "".join(s.text for s in strip)
            assert "▲ stale 14s" in text
            gpu_cells = [s for s in strip if len(s.text) == 3 and s.text.strip().isdigit()]
            assert gpu_cells, text
            assert all(s.style.bgcolor is None and s.style.dim for s in gpu_cells)
            assert "—" in text  # no live aggregates
            assert "1 stale" in screen_text(app)

    @pytest.mark.slow
    async def test_down_host_shows_dashes_and_counts_in_the_header(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            advance_without(state, clock, 40)
            app.publish_now()
            await pilot.pause()
            strip = grid_line(app.screen.grid, SILENT)
            assert "✖ down 40s" in "".join(s.text for s in strip)
            assert [s.text for s in strip].count(" — ") == 8  # every GPU cell: no number
            header = screen_text(app).splitlines()[0]
            assert "1 down" in header and "8 unknown" in header

    @pytest.mark.slow
    async def test_age_moves_on_without_a_batch(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            advance_without(state, clock, 12)
            app.publish_now()
            await pilot.pause()
            clock.advance(5)  # no sample, no tick, no batch: only time passes
            app.screen.grid.refresh_ages()
            await pilot.pause()
            assert "stale 17s" in screen_text(app)

    @pytest.mark.slow
    async def test_host_that_comes_back_is_fresh_again(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            advance_without(state, clock, 40)
            app.publish_now()
            await pilot.pause()
            feed_all(state, clock.advance(2), 101)
            app.publish_now()
            await pilot.pause()
            assert "● fresh" in "".join(s.text for s in grid_line(app.screen.grid, SILENT))
            assert "0 down" in screen_text(app)


class TestHostView:
    @pytest.mark.slow
    async def test_stale_host_view_dims_numbers_and_says_they_are_old(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            advance_without(state, clock, 14)
            app.open_host(SILENT)
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
            facts = str(app.screen.query_one(HostFacts).render())
            assert "STALE" in facts and "not live" in facts
            table = app.screen.query_one(GpuTable)
            util = table.get_cell("0", "util")
            assert isinstance(util, Text) and "italic" in str(util.style)

    @pytest.mark.slow
    async def test_down_host_view_shows_no_numbers(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            advance_without(state, clock, 40)
            app.open_host(SILENT)
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
            table = app.screen.query_one(GpuTable)
            for column in ("util", "temp", "power", "memory"):
                assert table.get_cell("0", column).plain.replace("/", "").strip("—") == ""
            assert "DOWN" in str(app.screen.query_one(HostFacts).render())

    @pytest.mark.slow
    async def test_host_view_shows_xid_meaning_clock_reasons_and_links(self, app, state, clock):
        host = state.hosts["sg1-r01-n01"]
        host._note_events([xid_event(clock() - 30, gpu=3, code=79)])
        state.changed(host, "sample")
        async with app.run_test(size=SIZE) as pilot:
            app.open_host("sg1-r01-n01")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
            table = app.screen.query_one(GpuTable)
            assert table.get_cell("3", "xid").plain == "79 GPU has fallen off the bus"
            assert table.get_cell("3", "health").plain.startswith("fault")
            reasons = {table.get_cell(str(i), "events").plain for i in range(8)}
            assert reasons <= {"none", "GPU idle", "SW power cap"}
            text = screen_text(app)
            assert "mlx5_0/1" in text and "eth0" in text
            assert "1 faulty" in text

    @pytest.mark.slow
    async def test_nvlinks_down_are_counted_and_warn(self, app, state, clock):
        from tests.ui.synthetic import nvlinks, synthetic_sample

        sample = synthetic_sample(0, 50, clock.advance(2))
        sample.gpus[4].nvlink = nvlinks([n >= 2 for n in range(18)])
        host = state.hosts["sg1-r01-n01"]
        host.apply_sample(sample, clock())
        state.changed(host, "sample")
        async with app.run_test(size=SIZE) as pilot:
            app.open_host("sg1-r01-n01")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
            table = app.screen.query_one(GpuTable)
            assert table.get_cell("4", "nvlink").plain == "16 up 2 down"
            assert table.get_cell("3", "nvlink").plain == "18 up"
            assert table.get_cell("4", "health").plain == "warn: 2 NVLinks down"
