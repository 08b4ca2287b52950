"""The host view's GPU table (issue 17): drawn with Textual's public line API, it moves a
row cursor, tells the host view which GPU to chart, and draws a line again when its
cells change."""

from __future__ import annotations

import inspect

from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.widgets.gpu_table import GpuTable
from tests.support.ui import SIZE, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import feed_all


def test_overrides_nothing_private_of_textual():
    """No `_name` of Textual's widget classes is replaced (the table once hooked
    DataTable._render_cell, which any Textual release may rename or change)."""
    private = {
        name
        for cls in GpuTable.__mro__[1:]
        for name in vars(cls)
        if name.startswith("_") and not name.startswith("__")
    }
    ours = {
        name
        for name, value in vars(GpuTable).items()
        if inspect.isfunction(value) and name.startswith("_") and not name.startswith("__")
    }
    assert ours and not ours & private


async def test_cursor_moves_and_the_history_follows_it(app):
    async with app.run_test(size=SIZE) as pilot:
        app.open_host("sg1-r01-n03")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
        table = app.screen.query_one(GpuTable)
        assert table.has_focus and table.current_gpu == 0
        uuid = app.model.hosts["sg1-r01-n03"].gpus[2].uuid
        await pilot.press("down", "down")
        assert table.current_gpu == 2
        await wait_until(pilot, lambda: "GPU 2 · " in screen_text(app) and uuid in screen_text(app))
        await pilot.press("pagedown")
        assert table.current_gpu == 7
        await pilot.press("down")  # stays on the last GPU
        assert table.current_gpu == 7
        await pilot.press("up", "ctrl+home")
        assert table.current_gpu == 0


async def test_a_changed_cell_is_drawn_again(app, state, clock):
    async with app.run_test(size=SIZE) as pilot:
        app.open_host("sg1-r01-n03")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
        table = app.screen.query_one(GpuTable)
        before = table.get_cell("0", "util").plain
        await wait_until(pilot, lambda: f" 0    {before}" in screen_text(app))
        feed_all(state, clock.advance(2), 77)  # new readings for every GPU
        app.publish_now()
        await wait_until(pilot, lambda: table.get_cell("0", "util").plain != before)
        after = table.get_cell("0", "util").plain
        await wait_until(pilot, lambda: f" 0    {after}" in screen_text(app))
        assert f" 0    {before} " not in screen_text(app)


async def test_the_gpu_column_stays_when_the_table_scrolls_sideways(app):
    async with app.run_test(size=SIZE) as pilot:
        app.open_host("sg1-r01-n03")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
        table = app.screen.query_one(GpuTable)
        uuid = table.get_cell("2", "uuid").plain
        assert uuid not in screen_text(app)  # off to the right at 120 columns
        await pilot.press(*["right"] * 120)
        await wait_until(pilot, lambda: table.scroll_x == table.max_scroll_x > 0)

        def row_of_gpu_2() -> str:
            lines = [line for line in screen_text(app).splitlines() if uuid in line]
            return lines[0] if lines else ""

        await wait_until(pilot, lambda: row_of_gpu_2().startswith(" 2 "))
        assert "UUID" in screen_text(app) and " GPU " in screen_text(app)
