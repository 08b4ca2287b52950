"""Collection on its own thread: batches arrive as messages, keys stay responsive, and a
dead poller, a broken store or a lost SSH agent are shown, never fatal."""

from __future__ import annotations

import time

import pytest

from opsconsole.ui.app import make_app
from opsconsole.ui.screens.confirm import ConfirmScreen
from tests.support.ui import SIZE, FakeClock, notices, record_notifications, wait_until
from tests.ui.fake_poller import PollerRecorder
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import new_state

pytestmark = pytest.mark.slow


@pytest.fixture
def threaded(fleet):
    def build(clock=time.time, **options):
        recorder = PollerRecorder(**options.pop("poller", {}))
        state = new_state(fleet, clock())
        app = make_app(
            fleet, state, poller_factory=recorder, clock=clock, publish_interval_s=0.05, **options
        )
        record_notifications(app)
        return app, recorder

    return build


def header(app) -> str:
    return screen_text(app).splitlines()[0] + screen_text(app).splitlines()[1]


class TestBatches:
    async def test_samples_from_the_polling_thread_reach_the_screen(self, threaded):
        app, recorder = threaded()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            assert app.driver.threaded
            # keys work while the other thread keeps polling
            await pilot.press("2")
            assert app.screen.grid.metric.key == "temp"
            sent = recorder.poller.samples_sent
            await wait_until(pilot, lambda: recorder.poller.samples_sent > sent + 3)
        assert recorder.poller.stopped
        assert not app.driver._thread.is_alive()

    async def test_host_view_receives_history_and_ports(self, threaded):
        app, _ = threaded()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            app.open_host("sg1-r01-n04")
            await wait_until(pilot, lambda: app.model.detail_for("sg1-r01-n04") is not None)
            await wait_until(pilot, lambda: "mlx5_1/1" in screen_text(app))
            detail = app.model.detail_for("sg1-r01-n04")
            assert len(detail.history[(0, "util_gpu_pct")]) >= 1


class TestConsoleConditions:
    async def test_a_poller_that_dies_is_shown_and_hosts_age_out(self, threaded):
        clock = FakeClock()
        app, _ = threaded(clock=clock, poller={"fail": "ssh config unreadable"})
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "collection stopped" in screen_text(app))
            assert "ssh config unreadable" in screen_text(app)
            clock.advance(31)
            await wait_until(pilot, lambda: "32 down" in header(app))

    async def test_store_trouble_is_shown_in_the_header(self, threaded):
        app, _ = threaded(store_note="store: database is locked (not recording)")
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "database is locked" in screen_text(app))
            await wait_until(pilot, lambda: app.model.generation > 5)  # later batches too
            assert "database is locked" in screen_text(app)

    async def test_a_store_failing_while_running_is_shown(self, threaded):
        app, recorder = threaded(poller={"store_error": "database is locked"})
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "store: database is locked" in screen_text(app))
            recorder.poller.writer.last_error = ""  # the disk came back
            await wait_until(pilot, lambda: "database is locked" not in screen_text(app))

    async def test_a_lost_ssh_agent_is_shown(self, threaded, monkeypatch, tmp_path):
        monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.gone"))
        app, _ = threaded()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "SSH agent lost" in screen_text(app))


class TestReconnect:
    async def test_r_asks_then_asks_the_poller_to_reconnect(self, threaded):
        app, recorder = threaded()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            app.screen.grid.move_to(("host", "sg1-r01-n07"))
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda: recorder.poller.reconnects == ["sg1-r01-n07"])

    async def test_n_cancels(self, threaded):
        app, recorder = threaded()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            app.screen.grid.move_to(("host", "sg1-r01-n07"))
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            assert recorder.poller.reconnects == []


class TestReadOnly:
    async def test_every_path_to_reconnect_is_refused(self, threaded):
        app, recorder = threaded(read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            assert "READ-ONLY" in header(app)
            grid = app.screen.grid
            grid.move_to(("host", "sg1-r01-n07"))
            await pilot.press("r")  # key on the fleet
            app.run_command("reconnect sg1-r01-n07")  # command mode
            app.action_reconnect_current()  # what the palette entry calls
            app.reconnect_host("sg1-r01-n07")  # what the dialog's "yes" calls
            app.open_host("sg1-r01-n07")
            await pilot.pause()
            await pilot.press("r")  # key on the host view
            await pilot.pause()
            assert app.refusals == ["reconnect host"] * 5
            assert not any(isinstance(s, ConfirmScreen) for s in app.screen_stack)
            assert recorder.poller.reconnects == []
            messages = [n.message for n in notices(app)]
            assert any("read-only" in m and "reconnect host" in m for m in messages)

    async def test_read_only_still_navigates_and_filters(self, threaded):
        app, _ = threaded(read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "32 fresh" in header(app))
            app.screen.set_filter("rack=sg1-r02")
            await pilot.press("2")
            assert app.refusals == []
