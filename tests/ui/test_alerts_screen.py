"""The Alerts screen and its dialogs, from keys to rows in the SQLite file: acknowledge with
a comment, silence a rack for an hour, resolve, unacknowledge, end a silence, read-only
refusals, Enter to the host, the header counts, the fleet markers and the toasts. Alerts
are put in the store with `apply_conditions` (no engine); rows are read back through a
fresh connection, so what is asserted is what was committed to the file."""

from __future__ import annotations

import sqlite3

import pytest

from opsconsole.alerts import (
    Condition,
    acknowledge,
    apply_conditions,
    create_silence,
    list_alerts,
)
from opsconsole.alerts.silences import active_silences
from opsconsole.store import open_store
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.alert_action import AlertActionScreen
from opsconsole.ui.screens.alerts import AlertsScreen
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.silence import SilenceScreen
from opsconsole.ui.screens.silences import SilencesScreen
from opsconsole.ui.view.alert_board import build_alert_board, parse_alert_filter
from tests.support.ui import OPERATOR, SIZE, FakeClock, add_tenants, notices, type_text, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0, synthetic_fleet, warm_fleet

pytestmark = pytest.mark.slow

HOT_HOST, XID_HOST, ACKED_HOST = "sg1-r01-n03", "sg1-r01-n05", "sg1-r02-n01"


def labels(host: str, **more: str) -> dict[str, str]:
    rack = host.rsplit("-", 1)[0]
    return {"site": "SG1", "rack": rack, "host": host, **more}


HOT = Condition(
    rule="gpu_temp_high",
    severity="warning",
    kind="condition",
    labels=labels(HOT_HOST, gpu="5", tenant="aurora-labs"),
    summary=f"{HOT_HOST} GPU 5: GPU temperature high (91 °C)",
)
XID79 = Condition(
    rule="xid_hardware",
    severity="critical",
    kind="event",
    labels=labels(XID_HOST, gpu="2", code="79", cause="hardware", event="79@1@2"),
    summary=f"{XID_HOST} GPU 2: XID 79 GPU has fallen off the bus; reboot the node",
)
IB_DOWN = Condition(
    rule="ib_port_down",
    severity="critical",
    kind="condition",
    labels=labels(ACKED_HOST, port="mlx5_0/1"),
    summary=f"{ACKED_HOST} mlx5_0/1: InfiniBand port not ACTIVE (DOWN)",
)


def rows(store_path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(store_path) as conn:
        return conn.execute(sql, params).fetchall()


def alert_id(db, rule: str) -> int:
    return next(a.id for a in list_alerts(db, include_resolved=True) if a.rule == rule)


@pytest.fixture
def alert_store(lease_store):
    """HOT (warning, firing) and XID 79 (critical, firing) fired five minutes ago."""
    apply_conditions(lease_store, [HOT, XID79], T0 - 300)
    return lease_store


async def open_alerts(pilot, app) -> AlertsScreen:
    await pilot.pause()
    await pilot.press("a")
    await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
    screen = app.screen
    await wait_until(pilot, lambda: app.alerts.board is not None and screen.table.row_count > 0)
    await pilot.pause()
    return screen


async def select(pilot, screen: AlertsScreen, wanted_id: int) -> None:
    """Cursor onto one alert with the arrow keys (headings are stepped over)."""
    for _ in range(screen.table.row_count):
        if screen.table.current_alert_id == wanted_id:
            return
        await pilot.press("down")
        await pilot.pause()
    assert screen.table.current_alert_id == wanted_id


class TestAcknowledge:
    async def test_ack_with_a_comment_from_the_keyboard(self, lease_app, alert_store, store_path):
        app = lease_app
        hot = alert_id(alert_store, "gpu_temp_high")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            text = screen_text(app)
            assert "CRITICAL · 1" in text and "WARNING · 1" in text
            assert text.index("CRITICAL") < text.index("WARNING")  # worst first
            await select(pilot, screen, hot)
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertActionScreen))
            await type_text(pilot, "cooling ticket 42")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            assert rows(
                store_path, "SELECT state, acked_by, ack_comment, ack_expires_ts FROM alerts"
                " WHERE id = ?", hot,
            ) == [("acknowledged", OPERATOR, "cooling ticket 42", None)]  # fmt: skip
            await wait_until(pilot, lambda: f"acked by {OPERATOR}" in screen_text(app))
            await wait_until(pilot, lambda: "cooling ticket 42" in screen_text(app))  # history

    async def test_ack_with_a_timeout(self, lease_app, alert_store, store_path):
        app = lease_app
        hot = alert_id(alert_store, "gpu_temp_high")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await select(pilot, screen, hot)
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertActionScreen))
            await type_text(pilot, "on it")
            await pilot.press("tab")
            await type_text(pilot, "30m")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        assert rows(store_path, "SELECT ack_expires_ts FROM alerts WHERE id = ?", hot) == [
            (T0 + 1800,)
        ]

    async def test_someone_else_was_first(self, lease_app, alert_store, store_path):
        """The store refuses; the dialog says who was first in one line and stays open."""
        app = lease_app
        hot = alert_id(alert_store, "gpu_temp_high")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await select(pilot, screen, hot)
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertActionScreen))
            acknowledge(alert_store, hot, "alice", "mine", now_ts=T0)  # another console
            await type_text(pilot, "on it")
            await pilot.press("enter")
            await wait_until(
                pilot, lambda: "already acknowledged by alice: mine" in screen_text(app)
            )
            assert isinstance(app.screen, AlertActionScreen)
            assert "Traceback" not in screen_text(app)
        assert rows(store_path, "SELECT acked_by FROM alerts WHERE id = ?", hot) == [("alice",)]

    async def test_unack_and_resolve_with_a_required_comment(
        self, lease_app, alert_store, store_path
    ):
        app = lease_app
        hot = alert_id(alert_store, "gpu_temp_high")
        acknowledge(alert_store, hot, "alice", "mine", now_ts=T0 - 60)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await select(pilot, screen, hot)
            await pilot.press("u")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertActionScreen))
            await type_text(pilot, "alice went home")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            assert rows(store_path, "SELECT state, acked_by FROM alerts WHERE id = ?", hot) == [
                ("firing", None)
            ]
            await wait_until(pilot, lambda: app.alerts.board.alert(hot).state == "firing")
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertActionScreen))
            await pilot.press("enter")  # no comment: refused in the dialog
            refused = "comment saying what was done is required"
            await wait_until(pilot, lambda: refused in screen_text(app))
            assert rows(store_path, "SELECT state FROM alerts WHERE id = ?", hot) == [("firing",)]
            await type_text(pilot, "reseated the fan")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            await wait_until(pilot, lambda: "resolved" in screen_text(app))
        assert rows(
            store_path, "SELECT state, resolved_by, resolve_comment FROM alerts WHERE id = ?", hot
        ) == [("resolved", OPERATOR, "reseated the fan")]
        history = rows(
            store_path, "SELECT to_state, operator, comment FROM alert_history WHERE alert_id = ?"
            " ORDER BY id", hot,
        )  # fmt: skip
        assert history[-2:] == [
            ("firing", OPERATOR, "alice went home"),
            ("resolved", OPERATOR, "reseated the fan"),
        ]


class TestSilence:
    async def test_silence_a_rack_for_an_hour_from_the_keyboard(
        self, lease_app, alert_store, store_path
    ):
        app = lease_app
        hot = alert_id(alert_store, "gpu_temp_high")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await select(pilot, screen, hot)
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, SilenceScreen))
            # site, rack, host (ticked), gpu, rule (ticked), tenant: tick the rack only
            await pilot.press("down", "space", "down", "space", "down", "down", "space")
            await pilot.pause()
            assert "silences rack=sg1-r01 until" in screen_text(app)
            # ticked boxes read as ticked without colour: X in the rack's, blank elsewhere
            assert "▐X▌ rack = sg1-r01" in screen_text(app)
            assert "▐ ▌ host = " in screen_text(app) and "▐ ▌ rule = " in screen_text(app)
            assert "matches 2 open alert(s)" in screen_text(app)  # HOT and XID 79 in r01
            await pilot.press("tab", "tab")  # the duration stays 1h
            await type_text(pilot, "rack maintenance")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            assert rows(
                store_path, "SELECT site, rack, host, gpu, rule, tenant, start_ts, end_ts,"
                " created_by, comment FROM silences"
            ) == [
                (None, "sg1-r01", None, None, None, None, T0, T0 + 3600, OPERATOR,
                 "rack maintenance")
            ]  # fmt: skip
            await wait_until(
                pilot,
                lambda: app.alerts.board.shown_state(app.alerts.board.alert(hot)) == "silenced",
            )
            await wait_until(pilot, lambda: "◌ silenced" in screen_text(app))
            await wait_until(pilot, lambda: "silenced by #1 rack=sg1-r01" in screen_text(app))

    async def test_end_a_silence_from_the_list(self, lease_app, alert_store, store_path):
        create_silence(
            alert_store, {"host": HOT_HOST}, start_ts=T0 - 60, end_ts=T0 + 7200,
            created_by="alice", comment="fan swap", now_ts=T0 - 60,
        )  # fmt: skip
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_alerts(pilot, app)
            await pilot.press("S")
            await wait_until(pilot, lambda: isinstance(app.screen, SilencesScreen))
            await wait_until(pilot, lambda: "host=sg1-r01-n03" in screen_text(app))
            await pilot.press("x")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(
                pilot, lambda: rows(store_path, "SELECT end_ts FROM silences") == [(T0,)]
            )
            await wait_until(pilot, lambda: "in force and scheduled: 0" in screen_text(app))


class TestReadOnly:
    async def test_every_change_is_refused(self, fleet, state, clock, alert_store, store_path):
        app = make_app(
            fleet, state, clock=clock, publish_interval_s=3600, store=alert_store,
            operator=OPERATOR, read_only=True,
        )  # fmt: skip
        async with app.run_test(size=SIZE) as pilot:
            await open_alerts(pilot, app)
            for key in ("a", "r", "s"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, AlertsScreen)
            assert app.refusals == ["acknowledge alert", "resolve alert", "silence alerts"]
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: "(refused: read-only)" in screen_text(app))
        assert rows(store_path, "SELECT state FROM alerts") == [("firing",), ("firing",)]
        assert rows(store_path, "SELECT count(*) FROM silences") == [(0,)]


class TestNavigation:
    async def test_enter_opens_the_host_and_xid_advice_is_shown(self, lease_app, alert_store):
        app = lease_app
        xid = alert_id(alert_store, "xid_hardware")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await select(pilot, screen, xid)
            await wait_until(pilot, lambda: "likely cause: hardware" in screen_text(app))
            assert "recommended action: reboot the node" in screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            assert app.screen.host_name == XID_HOST
            # the host view lists its open alerts; `a` there shows the Alerts screen for it
            await wait_until(pilot, lambda: "ALERTS critical #" in screen_text(app))
            assert "xid_hardware" in screen_text(app)
            await pilot.press("escape")  # back to the alerts it was opened from
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))

    async def test_a_on_the_host_view_lists_that_hosts_alerts(self, lease_app, alert_store):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_alerts(pilot, app)
            await pilot.press("escape")
            app.open_host(HOT_HOST)
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            await wait_until(pilot, lambda: "gpu_temp_high" in screen_text(app))
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, AlertsScreen))
            await wait_until(pilot, lambda: "gpu_temp_high" in screen_text(app))
            assert app.alerts.filter.text == f"host={HOT_HOST} state=open"
            assert "xid_hardware" not in screen_text(app)  # another host's

    async def test_filter_by_state_and_esc_clears_it(self, lease_app, alert_store):
        app = lease_app
        acknowledge(alert_store, alert_id(alert_store, "gpu_temp_high"), "alice", "", now_ts=T0)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_alerts(pilot, app)
            await pilot.press("slash")
            await type_text(pilot, "state=acked")
            await pilot.press("enter")
            await wait_until(pilot, lambda: "acked by alice" in screen_text(app))
            assert "CRITICAL" not in screen_text(app)
            assert "1 of 2 alert(s)" in screen_text(app)
            await pilot.press("escape")
            await wait_until(pilot, lambda: "CRITICAL" in screen_text(app))
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            assert screen.is_attached is False


class TestHeaderAndFleet:
    async def test_counts_and_host_markers(self, lease_app, alert_store):
        apply_conditions(alert_store, [HOT, XID79, IB_DOWN], T0 - 200)
        acknowledge(alert_store, alert_id(alert_store, "ib_port_down"), "bob", "", now_ts=T0)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.alerts.board is not None)
            await pilot.pause()
            text = screen_text(app)
            assert "alerts 3 firing · 2 unacked  1 critical" in text
            for host in (XID_HOST, HOT_HOST, ACKED_HOST):  # ACKED_HOST's is muted
                assert f"! {host} " in text
            assert "\n  sg1-r01-n01 " in text
            assert app.alerts.marks[XID_HOST].severity == "critical"
            assert app.alerts.marks[XID_HOST].loud and not app.alerts.marks[ACKED_HOST].loud

    async def test_no_alerts_no_header_words(self, lease_app):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.alerts.board is not None)
            await pilot.pause()
            assert "alerts" not in screen_text(app).splitlines()[0]

    async def test_new_firings_are_toasted(self, lease_app, alert_store):
        app = lease_app
        fired = list_alerts(alert_store)
        async with app.run_test(size=SIZE) as pilot:
            app.alerts.notified(fired[:1])
            await pilot.pause()
            notes = notices(app)
            assert len(notes) == 1 and notes[0].severity in ("error", "warning")
            assert fired[0].rule in notes[0].title
            many = [fired[0]] * 5
            app.alerts.notified(many)
            await pilot.pause()
            notes = notices(app)
            assert len(notes) == 2 and notes[1].title == "5 new alerts"


class TestBoardLogic:
    def test_resolved_alerts_stay_a_day(self, alert_store):
        apply_conditions(alert_store, [XID79], T0 - 100)  # HOT clears: resolved at T0 - 100
        alerts = list_alerts(alert_store, include_resolved=True)
        assert len(build_alert_board(alerts, [], T0).alerts) == 2
        assert len(build_alert_board(alerts, [], T0 + 86_400).alerts) == 1

    def test_marks_and_counts(self, alert_store):
        """A host's marker is loud in the colour of the worst alert nobody is on."""
        hot_on_xid_host = Condition(
            rule="gpu_temp_high",
            severity="warning",
            kind="condition",
            labels=labels(XID_HOST, gpu="1"),
            summary="hot",
        )
        apply_conditions(alert_store, [HOT, XID79, hot_on_xid_host], T0 - 10)
        acknowledge(alert_store, alert_id(alert_store, "xid_hardware"), "bob", "", now_ts=T0)
        create_silence(
            alert_store, {"host": HOT_HOST}, start_ts=T0 - 1, end_ts=T0 + 60, created_by="bob",
            comment="", now_ts=T0,
        )  # fmt: skip
        board = build_alert_board(list_alerts(alert_store), active_silences(alert_store, T0), T0)
        marks = board.host_marks()
        assert (marks[XID_HOST].severity, marks[XID_HOST].loud) == ("warning", True)
        assert (marks[HOT_HOST].severity, marks[HOT_HOST].loud) == ("warning", False)
        counts = board.counts()
        assert (counts.open, counts.unacked, counts.unacked_critical, counts.silenced) == (
            3, 1, 0, 1
        )  # fmt: skip

    def test_filter_terms(self, alert_store):
        board = build_alert_board(list_alerts(alert_store), [], T0)

        def listed(text: str) -> list[str]:
            groups = board.grouped(parse_alert_filter(text))
            return [a.rule for _, alerts in groups for a in alerts]

        assert listed("") == ["xid_hardware", "gpu_temp_high"]
        assert listed("tenant=aurora-labs") == ["gpu_temp_high"]
        assert listed("severity=critical site=sg1") == ["xid_hardware"]
        assert listed("state=open !xid") == ["gpu_temp_high"]
        assert listed("host~n05") == ["xid_hardware"]
        with pytest.raises(ValueError, match="unknown filter"):
            parse_alert_filter("colour=red")
        with pytest.raises(ValueError, match="state 'sleeping'"):
            parse_alert_filter("state=sleeping")


class TestSnapshot:
    def test_alerts_screen(self, snap_compare, tmp_path):
        """Critical XID firing (selected, its advice and history shown), a warning
        acknowledged, an InfiniBand alert resolved: fixed clock, fixed ids."""
        db = open_store(tmp_path / "alerts.db")
        add_tenants(db)
        apply_conditions(db, [HOT, XID79, IB_DOWN], T0 - 900)
        acknowledge(db, 1, "alice", "cooling ticket 42", timeout_s=7200, now_ts=T0 - 600)
        apply_conditions(db, [HOT, XID79], T0 - 120)  # the port came back
        fleet = synthetic_fleet(32)
        app = make_app(
            fleet, warm_fleet(fleet, 5), clock=FakeClock(), publish_interval_s=3600, store=db,
            operator=OPERATOR,
        )  # fmt: skip

        async def open_with_history(pilot):
            screen = await open_alerts(pilot, app)
            await wait_until(pilot, lambda: screen.history is not None)
            await pilot.pause()

        assert snap_compare(app, run_before=open_with_history, terminal_size=SIZE)
