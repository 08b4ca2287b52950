"""k9s-style navigation: `:` command mode, Enter drills down, Esc goes back, `?` help,
and the command palette offering the same actions."""

from __future__ import annotations

import pytest

from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.help import HelpScreen
from opsconsole.ui.screens.host import HostScreen
from tests.support.ui import SIZE, notices, type_text, wait_until
from tests.ui.screen_text import screen_text


class TestCommandMode:
    @pytest.mark.slow
    async def test_colon_host_opens_the_host_and_esc_returns(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, FleetScreen)
            await pilot.press("colon")
            await type_text(pilot, "host sg1-r02-n03")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            assert app.screen.host_name == "sg1-r02-n03"
            assert "sg1-r02-n03" in screen_text(app)
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))

    @pytest.mark.slow
    async def test_colon_fleet_from_a_host(self, app):
        async with app.run_test(size=SIZE) as pilot:
            app.open_host("sg1-r01-n05")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            await pilot.press("colon")
            await type_text(pilot, "fleet")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            # the cursor stayed on the host that was open
            assert app.screen.grid.current_host == "sg1-r01-n05"

    @pytest.mark.slow
    async def test_unknown_commands_say_so(self, app):
        async with app.run_test(size=SIZE) as pilot:
            app.run_command("frobnicate")
            app.run_command("host no-such-host")
            await pilot.pause()
            messages = [n.message for n in notices(app)]
            assert any("unknown command" in m for m in messages)
            assert any("no-such-host" in m for m in messages)
            assert isinstance(app.screen, FleetScreen)


class TestDrillDown:
    @pytest.mark.slow
    async def test_enter_on_a_host_opens_it(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            grid.move_to(("host", "sg1-r01-n02"))
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            assert app.screen.host_name == "sg1-r01-n02"
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))

    async def test_filter_to_a_rack_and_esc_undoes(self, app):
        """(Enter on a rack folds it: tests/ui/test_first_hour.py.)"""
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            app.run_command("filter rack=sg1-r02")
            await pilot.pause()
            hosts = [name for kind, name in grid.lines if kind == "host"]
            assert len(hosts) == 16 and all(h.startswith("sg1-r02-") for h in hosts)
            await pilot.press("escape")
            await pilot.pause()
            assert sum(1 for kind, _ in grid.lines if kind == "host") == 32

    @pytest.mark.slow
    async def test_arrow_keys_move_the_cursor(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            assert grid.current_line == ("host", "sg1-r01-n01")  # starts on the first host
            await pilot.press("down", "down")
            assert grid.current_line == ("host", "sg1-r01-n03")
            await pilot.press("end")
            assert grid.current_line == ("host", "sg1-r02-n16")
            await pilot.press("home")
            assert grid.current_line == ("site", "SG1")


class TestHelpAndPalette:
    @pytest.mark.slow
    async def test_help_lists_every_key_of_the_screen(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            described = {description for _, description, _ in app.screen.keys}
            for description in ("Filter", "Metric", "Sort", "Reconnect", "Command", "Quit"):
                assert description in described
            assert "Open or fold" in described  # not "Open / fold / Filter": / is its own key
            text = screen_text(app)
            assert ":host" in text
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))

    @pytest.mark.slow
    async def test_palette_opens_a_host(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+p")
            await pilot.pause()
            await type_text(pilot, "Open host sg1-r02-n07")
            await wait_until(pilot, lambda: "sg1-r02-n07" in screen_text(app))
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            assert app.screen.host_name == "sg1-r02-n07"


class TestReadOnlyPalette:
    @pytest.mark.slow
    async def test_the_palette_marks_and_refuses_reconnect(self, fleet, state, clock):
        from opsconsole.ui.app import make_app

        app = make_app(fleet, state, clock=clock, read_only=True, publish_interval_s=3600)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.screen.grid.move_to(("host", "sg1-r01-n02"))
            await pilot.press("ctrl+p")
            await pilot.pause()
            await type_text(pilot, "Reconnect host")
            await wait_until(pilot, lambda: "refused: read-only console" in screen_text(app))
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.refusals == ["reconnect host"])
            assert isinstance(app.screen, FleetScreen)
