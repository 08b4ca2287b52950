"""What tripped a new operator in the console (issue 17): quitting, where the cursor
starts and what Enter does on a group, filters with bad terms, the sort header and line,
the host view at first sight, the empty Alerts screen, and what the footer says."""

from __future__ import annotations

import logging
import re

import pytest
from asyncssh.logging import logger as asyncssh_logger

from opsconsole.alerts.store import apply_conditions
from opsconsole.cli.console import route_logs
from opsconsole.ui.screens.alerts import AlertsScreen
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.screens.extend import ExtendScreen
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.help import HelpScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.widgets.gpu_history import scale_for, spark_text
from opsconsole.ui.widgets.gpu_table import UUID_FULL, GpuTable, uuid_width
from tests.support.ui import SIZE, notices, type_text, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0


def footer(app) -> str:
    lines = screen_text(app).splitlines()
    return lines[-1] if lines else ""


def notes(app) -> list[str]:
    return [n.message for n in notices(app)]


class TestQuit:
    async def test_q_quits_and_is_in_the_footer(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "q Quit" in footer(app)
            await pilot.press("q")
            await wait_until(pilot, lambda: not app.is_running)

    @pytest.mark.slow
    async def test_q_quits_from_the_help_and_esc_only_closes_it(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            assert app.is_running
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("q")
            await wait_until(pilot, lambda: not app.is_running)

    @pytest.mark.slow
    async def test_q_asks_first_when_a_dialog_holds_unwritten_input(self, lease_app):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.push_screen(ExtendScreen(_a_lease(app)))
            await wait_until(pilot, lambda: isinstance(app.screen, ExtendScreen))
            await pilot.press("q")  # in the text field, q is a letter
            await pilot.pause()
            assert isinstance(app.screen, ExtendScreen) and app.is_running
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "Quit? What is typed" in screen_text(app)
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, ExtendScreen))
            assert app.is_running
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda: not app.is_running)


def _a_lease(app):
    from opsconsole.leases import LeaseRequest, allocate_lease

    request = LeaseRequest("kestrel-ai", T0, T0 + 86_400, gpus=2)
    desk = app.leases.desk  # its lock: the desk's worker may be reading on this connection
    return desk.call(
        "allocating",
        lambda: allocate_lease(desk.db, app.fleet, request, operator="t", now_ts=T0),
    )


class TestStartAndFold:
    @pytest.mark.slow
    async def test_the_cursor_starts_on_the_first_host_and_enter_opens_it(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.screen.grid.current_line == ("host", "sg1-r01-n01")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            assert app.screen.host_name == "sg1-r01-n01"

    @pytest.mark.slow
    async def test_enter_on_a_rack_or_site_folds_and_unfolds_it(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            grid.move_to(("rack", "sg1-r01"))
            await pilot.press("enter")
            await pilot.pause()
            hosts = [name for kind, name in grid.lines if kind == "host"]
            assert len(hosts) == 16 and all(h.startswith("sg1-r02-") for h in hosts)
            assert grid.current_line == ("rack", "sg1-r01")
            assert "▸ sg1-r01" in screen_text(app)
            assert grid.row_filter.text == ""  # folding is not filtering
            grid.move_to(("site", "SG1"))
            await pilot.press("enter")
            await pilot.pause()
            assert grid.lines == [("site", "SG1")]
            await pilot.press("enter")
            await pilot.press("down")
            await pilot.press("enter")  # rack sg1-r01, still folded: unfold it
            await pilot.pause()
            assert sum(1 for kind, _ in grid.lines if kind == "host") == 32


class TestFilter:
    @pytest.mark.slow
    async def test_a_bad_filter_names_every_bad_term_and_keeps_the_previous(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert screen.set_filter("rack=sg1-r02")
            await pilot.press("slash")
            for _ in range(len("rack=sg1-r02")):
                await pilot.press("backspace")
            await type_text(pilot, "util>abc foo=1")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            await wait_until(pilot, lambda: any("bad terms" in m for m in notes(app)))
            message = next(m for m in notes(app) if "bad terms" in m)
            assert "util>abc" in message and "not a number" in message
            assert "foo=1" in message and "unknown column 'foo'" in message
            grid = screen.grid
            assert grid.row_filter.text == "rack=sg1-r02"
            assert sum(1 for kind, _ in grid.lines if kind == "host") == 16
            assert "rack=sg1-r02  16 of 32 hosts" in screen_text(app)


class TestSort:
    @pytest.mark.slow
    async def test_sorted_headers_are_whole_and_the_sort_line_names_the_sort(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "site → rack → host, sites in config order" in screen_text(app)
            for key, header in (("util", "UTIL▼"), ("temp", "TEMP▼")):
                app.run_command(f"sort {key}")
                await pilot.pause()
                text = screen_text(app)
                assert header in text and "…" not in text.splitlines()[2]
                assert f"flat, highest {key} first" in text
                assert "site → rack → host" not in text
            app.run_command("sort host desc")
            await pilot.pause()
            assert "hosts by name Z→A" in screen_text(app)
            assert app.screen.grid.lines[2] == ("host", "sg1-r01-n16")


class TestHostView:
    @pytest.mark.slow
    async def test_last_known_state_at_once_with_a_loading_mark(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.driver.feed.watch = lambda name: None  # the detail never comes
            app.open_host("sg1-r01-n03")
            assert isinstance(app.screen, HostScreen)
            await wait_until(pilot, lambda: app.screen.ready)
            screen = app.screen
            assert screen.query_one("GpuTable").row_count == 8  # from the snapshot
            await pilot.pause()
            text = screen_text(app)
            assert "history: loading…" in text and "loading history" in screen.sub_title

    @pytest.mark.slow
    async def test_the_reused_host_screen_draws_the_new_hosts_gpus(self, app):
        """The GPU table draws cells once per content: opening another host must show its
        own numbers, not cells drawn for the one before."""

        def drawn_rows() -> list[str]:
            table = app.screen.query_one(GpuTable)
            rows = []
            for r in range(table.row_count):
                gpu, util, mem, temp = (c.plain for c in table.get_row_at(r)[:4])
                rows.append(
                    rf"\b{gpu}\s+{re.escape(util)}\s+{re.escape(mem)}\s+{re.escape(temp)}\b"
                )
            return rows

        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            seen = []
            for name in ("sg1-r01-n03", "sg1-r02-n09"):
                app.open_host(name)
                await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
                await wait_until(pilot, lambda: app.screen.ready)
                rows = drawn_rows()
                await wait_until(
                    pilot, lambda rows=rows: all(re.search(p, screen_text(app)) for p in rows)
                )
                seen.append(rows)
                app.close_host()
                await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            assert seen[0] != seen[1]  # the two hosts differ, so a stale cell would show

    async def test_uuids_whole_when_wide_and_link_window_explained(self, app):
        async with app.run_test(size=(240, 40)) as pilot:
            app.open_host("sg1-r01-n03")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            await wait_until(pilot, lambda: "AVG OVER" in screen_text(app))
            uuid = app.model.hosts["sg1-r01-n03"].gpus[0].uuid
            assert uuid.removeprefix("GPU-") in screen_text(app)
        assert uuid_width(240) == UUID_FULL and uuid_width(120) == 13

    def test_sparklines_keep_a_fixed_scale_so_noise_looks_flat(self):
        low, high = scale_for("util_gpu_pct", [94.0, 96.0, 95.0], None)
        assert (low, high) == (0.0, 100.0)
        bars = spark_text([94.0, 96.0, 95.0, 94.0], low, high, 10).plain
        assert set(bars) == {"█"}  # 94–96 % of 0–100: all at the top, not a saw
        assert spark_text([0.0, None, 100.0], 0.0, 100.0, 10).plain == "▁·█"
        assert scale_for("power_w", [300.0], 700.0) == (0.0, 700.0)
        assert scale_for("temp_c", [45.0, 47.0], None) == (20.0, 100.0)


class TestAlertsScreen:
    @pytest.mark.slow
    async def test_the_empty_alerts_screen_says_what_would_be_there(self, lease_app):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.alerts.go()
            await wait_until(pilot, lambda: app.alerts.board is not None)
            await wait_until(pilot, lambda: "No alerts: nothing is firing" in screen_text(app))
            assert "No alert selected" not in screen_text(app)

    @pytest.mark.slow
    async def test_toast_on_the_alerts_screen_does_not_send_the_operator_away(self, lease_app):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.alerts.go()
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            alerts = _many_alerts(app)
            app.alerts.notified(alerts)
            await pilot.pause()
            (toast,) = notes(app)[-1:]
            assert "listed below" in toast and "on the fleet" not in toast

    @pytest.mark.slow
    async def test_ack_needs_a_comment_in_the_dialog_as_on_the_cli(self, lease_app):
        from opsconsole.ui.screens.alert_action import AlertActionScreen

        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            (alert, *_) = _many_alerts(app)
            app.alerts.go()
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            app.push_screen(AlertActionScreen("ack", alert))
            await wait_until(pilot, lambda: "required" in screen_text(app))
            assert "optional" not in screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "who is on it" in screen_text(app))
            assert isinstance(app.screen, AlertActionScreen)  # nothing written


def _many_alerts(app):
    from opsconsole.alerts.conditions import Condition

    conditions = [
        Condition(
            rule="gpu_temp_high",
            severity="warning",
            kind="condition",
            labels={"host": f"sg1-r01-n0{i}", "gpu": "0"},
            summary="hot",
        )
        for i in range(1, 6)
    ]
    return apply_conditions(app.leases.desk.db, conditions, T0)


class TestFooter:
    @pytest.mark.slow
    async def test_each_screen_shows_its_own_meaning_of_shared_keys(self, lease_app):
        """r, a, c, s mean different things on different screens: the footer always
        says which, and q Quit is always there (120 columns)."""
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            want = {
                "fleet": ("r Reconnect", "a Alerts", "s Sort", "c Capacity", "q Quit"),
                "host": ("r Reconnect", "a Alerts", "q Quit"),
                "alerts": ("r Resolve", "a Ack", "s Silence", "q Quit"),
                "leases": ("a Allocate", "c Cancel lease", "s State", "q Quit"),
            }
            await wait_until(pilot, lambda: all(k in footer(app) for k in want["fleet"]))
            app.open_host("sg1-r01-n01")
            await wait_until(pilot, lambda: all(k in footer(app) for k in want["host"]))
            app.alerts.go()
            await wait_until(pilot, lambda: all(k in footer(app) for k in want["alerts"]))
            app.leases.go(None)
            await wait_until(pilot, lambda: all(k in footer(app) for k in want["leases"]))


def test_demo_logs_the_agent_command_once(tmp_path):
    log_path = tmp_path / "console.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        route_logs(log_path)
        agent = "python3 -c '" + "A" * 40_000 + "'"
        for conn in range(64):
            channel = asyncssh_logger.get_child("channel", f"conn={conn}, chan=0")
            channel.info("  Command: %s", agent)
        asyncssh_logger.get_child("channel", "conn=0, chan=1").info("  Command: %s", "uptime")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = log_path.read_text()
    assert text.count("A" * 40_000) == 1
    assert text.count("logged in full above") == 63 and "Command: uptime" in text
    assert len(text) < 60_000


class TestTimezone:
    @pytest.mark.slow
    async def test_the_console_prints_times_in_the_configured_zone(
        self, fleet, state, clock, lease_store
    ):
        from opsconsole.leases.times import use_timezone
        from opsconsole.ui.app import make_app

        fleet.config = fleet.config.model_copy(update={"timezone": "Asia/Singapore"})
        from opsconsole.leases import LeaseRequest, allocate_lease

        # Booked before the console opens: its lease desk owns the connection afterwards.
        request = LeaseRequest("kestrel-ai", T0, T0 + 86_400, gpus=2)
        allocate_lease(lease_store, fleet, request, operator="t", now_ts=T0)
        app = make_app(
            fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator="t"
        )
        try:
            async with app.run_test(size=SIZE) as pilot:
                app.open_host("sg1-r01-n01")
                await wait_until(pilot, lambda: "+08)" in screen_text(app))  # last seen
                app.leases.go(None)

                def lease_row() -> str:
                    rows = [r for r in screen_text(app).splitlines() if "kestrel-ai  " in r]
                    return rows[0] if rows else ""

                await wait_until(pilot, lambda: "+08" in lease_row())
                assert "Z" not in lease_row()
        finally:
            use_timezone("UTC")
