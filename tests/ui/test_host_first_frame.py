"""Opening a host paints its last known state at once, marked loading until the host's
detail (history, ports) comes from the polling thread (issue 17: a busy machine showed an
empty skeleton for seconds)."""

from __future__ import annotations

from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.widgets.gpu_table import GpuTable
from tests.support.ui import SIZE, wait_until
from tests.ui.screen_text import screen_text

HOST = "sg1-r01-n03"


async def test_last_known_state_is_painted_marked_loading_until_the_detail_comes(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        feed = app.driver.feed
        watch = feed.watch
        feed.watch = lambda name: None  # the polling thread has not answered yet
        app.open_host(HOST)
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.ready)
        screen = app.screen
        table = screen.query_one(GpuTable)
        assert app.model.detail_for(HOST) is None and table.row_count == 8
        first = [table.get_cell(str(gpu), "util").plain for gpu in range(8)]
        await wait_until(pilot, lambda: "history: loading…" in screen_text(app))
        painted = screen_text(app)
        for gpu, util in enumerate(first):
            assert f" {gpu}    {util}" in painted  # the snapshot's numbers, on screen
        assert "loading history" in screen.sub_title

        feed.watch = watch  # the detail arrives: the marks go
        watch(HOST)
        app.publish_now()
        await wait_until(pilot, lambda: app.model.detail_for(HOST) is not None)
        await wait_until(pilot, lambda: "loading" not in screen_text(app))
        assert screen.sub_title == HOST and "GPU 0 · last" in screen_text(app)
