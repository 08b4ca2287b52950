"""Alerts: what is wrong now, worst first, who is on it, and what happened to it. Opened
with `a` on the fleet (or `:alerts`).

Everything drawn here reads `app.alerts.board`, which a worker re-reads every two seconds
and after every change; the history pane of the selected alert is read by a worker too.
Acknowledge, unacknowledge, resolve and silence open dialogs that write through the
read-only guard in thread workers; Enter jumps to the affected host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Static

from opsconsole.alerts import Alert
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertHistoryLoaded, AlertsChanged
from opsconsole.ui.screens.alert_action import AlertActionScreen
from opsconsole.ui.screens.prompt import PromptScreen
from opsconsole.ui.screens.silence import SilenceScreen
from opsconsole.ui.screens.silences import SilencesScreen
from opsconsole.ui.view.alert_board import AlertFilterError, History, parse_alert_filter
from opsconsole.ui.view.alert_text import DIM, detail_text
from opsconsole.ui.view.lease_text import short_ts
from opsconsole.ui.widgets.alert_table import AlertTable
from opsconsole.ui.widgets.fleet_summary import FleetSummary
from opsconsole.ui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

FILTER_HINT = "state=firing site=SG1 tenant=NAME severity=critical host~r01 …"
NO_STORE = (
    " This console has no alert store (started without one, or it could not be opened);"
    " alerts cannot be shown here. `opsconsole alerts list` reads them from the store."
)


class AlertsScreen(Screen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("a", "acknowledge", "Ack"),
        Binding("u", "unacknowledge", "Unack"),
        Binding("r", "resolve", "Resolve"),
        Binding("s", "silence", "Silence"),
        Binding("S", "silences", "Silences"),
    ]

    def __init__(self) -> None:
        super().__init__(id="alerts")
        self.history: tuple[int, History] | None = None
        """(alert id, its transitions) last read for the pane."""
        self._detail_for: tuple[object, ...] | None = None
        """What the pane's history was read for: the alert and the moves that add history."""

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield Static(id="alert-status")
        yield AlertTable(id="alert-table")
        with VerticalScroll(id="alert-detail-box"):
            yield Static(id="alert-detail")
        yield KeyBar()  # the screen's keys and q Quit, at 120 columns

    @property
    def table(self) -> AlertTable:
        return self.query_one(AlertTable)

    def on_mount(self) -> None:
        self.sub_title = "alerts"
        self.table.focus()
        self.show_board()
        self.app.alerts.refresh()

    def on_screen_resume(self) -> None:
        self.show_board()

    # --- drawing ----------------------------------------------------------------------
    def on_alerts_changed(self, message: AlertsChanged) -> None:
        try:
            self.show_board()
        except NoMatches:
            pass  # the screen is being taken down as the board arrived

    def show_board(self) -> None:
        """The app has a new board (or new trouble): redraw from it."""
        board = self.app.alerts.board
        self._show_status()
        if board is not None:
            self.table.show(board, board.grouped(self.app.alerts.filter))
        self._show_detail()
        self.query_one(FleetSummary).update_summary()

    def _show_status(self) -> None:
        app = self.app
        text = Text(no_wrap=True, overflow="ellipsis")
        if app.alerts.desk is None:
            text.append(NO_STORE, "#ffd75f")
            self.query_one("#alert-status", Static).update(text)
            return
        text.append(" filter ", DIM)
        if app.alerts.filter.text:
            text.append(app.alerts.filter.text, "bold #ffd75f")
        else:
            text.append("none", DIM)
        board = app.alerts.board
        if board is not None:
            listed = sum(len(alerts) for _, alerts in board.grouped(app.alerts.filter))
            resolved = sum(1 for a in board.alerts if a.state == "resolved")
            text.append(f"   {listed} of {len(board.alerts)} alert(s)", DIM)
            text.append(f" · {resolved} resolved in the last 24 h", DIM)
            if board.silences:
                text.append(f" · {len(board.silences)} silence(s) in force", DIM)
            text.append(f"   as of {short_ts(board.now_ts)}", DIM)
        elif not app.alerts.trouble:
            text.append("   loading…", DIM)
        if app.alerts.trouble:
            text.append(f"   ⚠ {app.alerts.trouble}", "bold #ffd75f")
        self.query_one("#alert-status", Static).update(text)

    def _show_detail(self) -> None:
        alert = self.current_alert
        board = self.app.alerts.board
        pane = self.query_one("#alert-detail", Static)
        if alert is None or board is None:
            self._detail_for = None
            pane.update(Text(self._nothing_selected(), DIM) if board is not None else "")
            return
        moves = (alert.id, alert.state, alert.fired_ts, alert.acked_ts, alert.resolved_ts)
        if self._detail_for != moves:  # new selection, or it moved: read its history again
            self._detail_for = moves
            self._load_history(alert.id)
        history = self.history[1] if self.history and self.history[0] == alert.id else None
        silence = board.silence(board.silenced.get(alert.id))
        pane.update(detail_text(alert, board, history, silence))

    def _nothing_selected(self) -> str:
        """Why the pane is empty, and what would fill it."""
        board, wanted = self.app.alerts.board, self.app.alerts.filter
        if board is None or not board.alerts:
            return (
                " No alerts: nothing is firing or acknowledged, and nothing was resolved in"
                " the last 24 h. New firings appear here, in the header and as toasts."
            )
        if not any(alerts for _, alerts in board.grouped(wanted)):
            return (
                f" No alert matches the filter {wanted.text!r} ({len(board.alerts)} hidden);"
                " Esc clears it."
            )
        return " Move the cursor to an alert for its labels, advice and history."

    def _load_history(self, alert_id: int) -> None:
        desk = self.app.alerts.need_desk()

        def unreadable(text: str) -> AlertHistoryLoaded:
            return AlertHistoryLoaded(
                alert_id, [(None, None, "?", None, f"history cannot be read: {text}")]
            )

        desk.gateway.ask(
            self,
            lambda: desk.history(alert_id),
            lambda rows: AlertHistoryLoaded(alert_id, rows),
            unreadable,
            group="alert-history",
            answer_when_cancelled=True,
        )

    def on_alert_history_loaded(self, message: AlertHistoryLoaded) -> None:
        message.stop()
        self.history = (message.alert_id, message.rows)
        alert = self.current_alert
        if alert is not None and alert.id == message.alert_id:
            self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @property
    def current_alert(self) -> Alert | None:
        board = self.app.alerts.board
        alert_id = self.table.current_alert_id
        return board.alert(alert_id) if board is not None and alert_id is not None else None

    # --- navigation and filter --------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: the affected host's screen."""
        event.stop()
        alert = self.current_alert
        if alert is None:
            return
        host = alert.labels.get("host")
        if not host:
            self.notify(f"Alert {alert.id} names no host.", severity="warning")
            return
        self.app.open_host(host, over_current=True)

    def set_filter(self, text: str) -> bool:
        try:
            self.app.alerts.filter = parse_alert_filter(text)
        except AlertFilterError as exc:
            self.notify(str(exc), title="Filter", severity="error", markup=False)
            return False
        self.show_board()
        return True

    def action_filter(self) -> None:
        before = self.app.alerts.filter.text

        def live(text: str) -> None:
            try:
                self.app.alerts.filter = parse_alert_filter(text)
            except AlertFilterError:
                return  # half-typed; the final text is checked on Enter
            self.show_board()

        def done(text: str | None) -> None:
            self.set_filter(before if text is None else text)

        self.app.push_screen(
            PromptScreen("/", value=before, placeholder=FILTER_HINT, on_change=live), done
        )

    def action_back(self) -> None:
        """Esc: clear the filter first, then back to the fleet."""
        if self.app.alerts.filter.text:
            self.set_filter("")
        else:
            self.app.go_fleet()

    # --- changes ------------------------------------------------------------------------
    def _selected(self, doing: str, states: tuple[str, ...]) -> Alert | None:
        """The alert under the cursor if `doing` fits its state, else a message."""
        alert = self.current_alert
        if alert is None:
            self.notify(f"Move the cursor to an alert to {doing} it.", severity="warning")
            return None
        if alert.state not in states:
            self.notify(
                f"Alert {alert.id} is {alert.state}: cannot {doing} it.", severity="warning"
            )
            return None
        return alert

    @changes_state("acknowledge alert")
    def action_acknowledge(self) -> None:
        alert = self._selected("acknowledge", ("firing",))
        if alert is not None:
            self.app.push_screen(AlertActionScreen("ack", alert), self._written)

    @changes_state("unacknowledge alert")
    def action_unacknowledge(self) -> None:
        alert = self._selected("unacknowledge", ("acknowledged",))
        if alert is not None:
            self.app.push_screen(AlertActionScreen("unack", alert), self._written)

    @changes_state("resolve alert")
    def action_resolve(self) -> None:
        alert = self._selected("resolve", ("firing", "acknowledged"))
        if alert is not None:
            self.app.push_screen(AlertActionScreen("resolve", alert), self._written)

    @changes_state("silence alerts")
    def action_silence(self) -> None:
        alert = self.current_alert
        if alert is None:
            self.notify("Move the cursor to an alert to silence its like.", severity="warning")
            return
        self.app.push_screen(SilenceScreen(alert), self._written)

    def action_silences(self) -> None:
        """List silences (expiring one is guarded inside)."""
        if self.app.alerts.desk is not None:
            self.app.push_screen(SilencesScreen())

    def _written(self, text: str | None) -> None:
        if text:
            self.app.alerts.written(text)
