"""The app's alert side, a controller the app holds (`app.alerts`): it asks the gateway
for the alerts as an `AlertBoard` every two seconds and after every change, keeps the
newest board and the fleet grid's markers, tells every screen on the stack that it
changed (an `AlertsChanged` message), shows the toasts for new firings, and opens the
Alerts screen.

Why the console only reads: the alert engine evaluates rules and writes alerts on the
poller's side (and in `opsconsole poll` without a console); the console shows what the
store says, so two consoles and the CLI agree. Reads never overlap: a read asked for
while one runs is done once it finishes, so a slow store delays the board, never piles
up workers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.screen import ModalScreen

from opsconsole.alerts import Alert
from opsconsole.errors import AlertError, OpsconsoleError, StoreError
from opsconsole.ui.controllers.messages import AlertsChanged, AlertsLoaded, AlertStoreTrouble
from opsconsole.ui.gateway.alert_desk import AlertDesk
from opsconsole.ui.screens.alerts import AlertsScreen
from opsconsole.ui.view.alert_board import SEVERITIES, AlertBoard, AlertFilter, HostMark
from opsconsole.ui.view.alert_text import TOAST_SEVERITY, TOAST_TIMEOUT_S, toast_text, toast_title

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

log = logging.getLogger("opsconsole.ui")

ALERT_REFRESH_S = 2.0
"""The engine records every poll interval; the console follows at about that pace."""
TOASTS_AT_MOST = 3
"""More new firings than this at once get one summarising toast, not a wall of them."""


class AlertsController:
    def __init__(self, app: OpsConsoleApp, desk: AlertDesk | None) -> None:
        self.app = app
        self.desk = desk
        self.board: AlertBoard | None = None
        self.filter = AlertFilter()
        self.trouble = ""
        """One line on why the alerts cannot be read now ("" when they can)."""
        self.marks: dict[str, HostMark] = {}
        """host → the fleet grid's marker, from the newest board."""
        self._read_running = False
        self._read_again = False

    def need_desk(self) -> AlertDesk:
        """The desk, for the dialogs and workers that open only when there is one."""
        if self.desk is None:
            raise StoreError("this console has no alert store")
        return self.desk

    def start(self) -> None:
        if self.desk is not None:
            self.refresh()
            self.app.set_interval(ALERT_REFRESH_S, self.refresh)

    # --- reading ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the alerts again, off the UI thread; the board arrives as a message."""
        desk = self.desk
        if desk is None:
            return
        if self._read_running:
            self._read_again = True  # read once more when this one is done
            return
        self._read_running = True
        desk.gateway.ask(
            self.app, self._read, AlertsLoaded, AlertStoreTrouble,
            group="alert-board", exclusive=False,
        )  # fmt: skip

    def _read(self) -> AlertBoard:
        """On the worker: the board, or AlertStoreTrouble's line for any failure (a bug
        here must not stop every later read, as an unanswered read would)."""
        assert self.desk is not None
        try:
            return self.desk.load_board()
        except Exception as exc:
            if isinstance(exc, OpsconsoleError):
                raise
            log.exception("reading alerts failed")
            raise AlertError(f"reading alerts failed: {exc}") from exc

    def _read_done(self) -> None:
        self._read_running = False
        if self._read_again:
            self._read_again = False
            self.refresh()

    def loaded(self, board: AlertBoard) -> None:
        self._read_done()
        self.board = board
        self.trouble = ""
        marks = board.host_marks()
        old = self.marks
        changed = {h for h in old.keys() | marks.keys() if old.get(h) != marks.get(h)}
        model = self.app.model
        changed &= model.host_versions.keys()  # an alert may name a host not configured
        self.marks = marks
        for name in changed:  # cached grid lines of these hosts repaint with their marker
            model.host_versions[name] += 1
        self._changed(changed)

    def unreadable(self, text: str) -> None:
        self._read_done()
        self.trouble = f"alerts: {text}"
        self._changed(set())

    def _changed(self, changed_hosts: set[str]) -> None:
        self.app.tell_screens(AlertsChanged, changed_hosts)

    # --- new firings ------------------------------------------------------------------
    def notified(self, alerts: Sequence[Alert]) -> None:
        """The engine handed out new firings (called on the UI thread, through
        `call_from_thread`): a toast each, or one summarising toast when many, a log
        line each, and a fresh read so the header and the Alerts screen show them."""
        if not alerts:
            return
        for alert in alerts:
            log.info(
                "alert shown: %s %s #%d: %s",
                alert.severity.upper(),
                alert.rule,
                alert.id,
                toast_text(alert),
            )
        worst = min(
            alerts, key=lambda a: SEVERITIES.index(a.severity) if a.severity in SEVERITIES else 9
        ).severity
        if len(alerts) <= TOASTS_AT_MOST:
            for alert in alerts:
                self.app.notify(
                    toast_text(alert),
                    title=toast_title(alert),
                    severity=TOAST_SEVERITY.get(alert.severity, "warning"),
                    timeout=TOAST_TIMEOUT_S.get(alert.severity),
                    markup=False,
                )
        else:
            counts = Counter(str(a.severity) for a in alerts)
            parts = [f"{counts[s]} {s}" for s in SEVERITIES if counts[s]]
            hosts = sorted({a.labels.get("host", "") for a in alerts} - {""})
            where = f" on {len(hosts)} host(s)" if hosts else ""
            self.app.notify(
                f"{', '.join(parts)}{where}. {self._where_alerts_are()}",
                title=f"{len(alerts)} new alerts",
                severity=TOAST_SEVERITY.get(worst, "warning"),
                timeout=TOAST_TIMEOUT_S.get(worst),
                markup=False,
            )
        self.refresh()

    def _where_alerts_are(self) -> str:
        """The toast's pointer to the Alerts screen, true for the screen in view."""
        screen = self.app.screen
        if isinstance(screen, AlertsScreen):
            return "They are listed below."
        if screen.id == "fleet":
            return "Press a for the Alerts screen."
        return "Type :alerts (or Esc, then a) for the Alerts screen."

    # --- navigation and changes -------------------------------------------------------
    def action(self) -> None:
        """`a`: a key pressed on a dialog is the dialog's."""
        if not isinstance(self.app.screen, ModalScreen):
            self.go()

    def go(self) -> None:
        app = self.app
        if self.desk is None:
            app.notify("This console has no alert store.", title="Alerts", severity="error")
            return
        if isinstance(app.screen, AlertsScreen):
            self.refresh()
            return
        app.go_fleet()
        app.push_screen(AlertsScreen())

    def written(self, text: str) -> None:
        """A change committed: say so and read the alerts again."""
        self.app.notify(text, title="Alerts", markup=False)
        self.refresh()
