"""The app's alert side, kept out of app.py: a worker that reads the alert store into an
`AlertBoard` every two seconds and after every change, the handlers that spread a new
board to every screen (header counts, fleet markers), the toasts for new firings, and the
navigation to the Alerts screen.

Why the console only reads: the alert engine evaluates rules and writes alerts on the
poller's side (and in `opsconsole poll` without a console); the console shows what the
store says, so two consoles and the CLI agree. Reads never overlap: a read asked for
while one runs is done once it finishes, so a slow store delays the board, never piles
up workers.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from textual import work
from textual.screen import ModalScreen

from opsconsole.errors import AlertError, StoreError
from opsconsole.ui.controllers.broadcast import tell_screens
from opsconsole.ui.controllers.messages import AlertsLoaded, AlertStoreTrouble
from opsconsole.ui.screens.alerts import AlertsScreen
from opsconsole.ui.view.alert_board import SEVERITIES, AlertFilter, HostMark
from opsconsole.ui.view.alert_text import TOAST_SEVERITY, TOAST_TIMEOUT_S, toast_text, toast_title

if TYPE_CHECKING:
    from opsconsole.alerts import Alert
    from opsconsole.ui.gateway.alert_desk import AlertDesk
    from opsconsole.ui.view.alert_board import AlertBoard
    from opsconsole.ui.view.model import FleetModel

log = logging.getLogger("opsconsole.ui")

ALERT_REFRESH_S = 2.0
"""The engine records every poll interval; the console follows at about that pace."""
TOASTS_AT_MOST = 3
"""More new firings than this at once get one summarising toast, not a wall of them."""


class AlertsMixin:
    """Mixed into OpsConsoleApp; expects `model`, `notify`, `screen_stack` and friends."""

    alert_desk: AlertDesk | None
    model: FleetModel

    def init_alerts(self, desk: AlertDesk | None) -> None:
        self.alert_desk = desk
        self.alert_board: AlertBoard | None = None
        self.alert_filter = AlertFilter()
        self.alert_trouble = ""
        """One line on why the alerts cannot be read now ("" when they can)."""
        self.alert_marks: dict[str, HostMark] = {}
        """host → the fleet grid's marker, from the newest board."""
        self._alert_read_running = False
        self._alert_read_again = False

    def start_alerts(self) -> None:
        if self.alert_desk is not None:
            self.refresh_alerts()
            self.set_interval(ALERT_REFRESH_S, self.refresh_alerts)

    # --- reading ----------------------------------------------------------------------
    def refresh_alerts(self) -> None:
        """Read the alerts again, off the UI thread; the board arrives as a message."""
        if self.alert_desk is None:
            return
        if self._alert_read_running:
            self._alert_read_again = True  # read once more when this one is done
            return
        self._alert_read_running = True
        self._load_alerts()

    @work(thread=True, group="alert-board", exit_on_error=False)
    def _load_alerts(self) -> None:
        try:
            board = self.alert_desk.load_board()
        except (AlertError, StoreError) as exc:
            self.post_message(AlertStoreTrouble(str(exc)))
            return
        except Exception as exc:  # a bug here must not stop every later read
            log.exception("reading alerts failed")
            self.post_message(AlertStoreTrouble(f"reading alerts failed: {exc}"))
            return
        self.post_message(AlertsLoaded(board))

    def _alert_read_done(self) -> None:
        self._alert_read_running = False
        if self._alert_read_again:
            self._alert_read_again = False
            self.refresh_alerts()

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        self._alert_read_done()
        board = message.board
        self.alert_board = board
        self.alert_trouble = ""
        marks = board.host_marks()
        old = self.alert_marks
        changed = {h for h in old.keys() | marks.keys() if old.get(h) != marks.get(h)}
        changed &= self.model.host_versions.keys()  # an alert may name a host not configured
        self.alert_marks = marks
        for name in changed:  # cached grid lines of these hosts repaint with their marker
            self.model.host_versions[name] += 1
        self._alerts_changed(changed)

    def on_alert_store_trouble(self, message: AlertStoreTrouble) -> None:
        self._alert_read_done()
        self.alert_trouble = f"alerts: {message.text}"
        self._alerts_changed(set())

    def _alerts_changed(self, changed_hosts: set[str]) -> None:
        tell_screens(self, "alerts_changed", changed_hosts)

    # --- new firings ------------------------------------------------------------------
    def alerts_notified(self, alerts: list[Alert]) -> None:
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
                self.notify(
                    toast_text(alert),
                    title=toast_title(alert),
                    severity=TOAST_SEVERITY.get(alert.severity, "warning"),
                    timeout=TOAST_TIMEOUT_S.get(alert.severity),
                    markup=False,
                )
        else:
            counts = Counter(a.severity for a in alerts)
            parts = [f"{counts[s]} {s}" for s in SEVERITIES if counts[s]]
            hosts = sorted({a.labels.get("host", "") for a in alerts} - {""})
            where = f" on {len(hosts)} host(s)" if hosts else ""
            self.notify(
                f"{', '.join(parts)}{where}. {self._where_alerts_are()}",
                title=f"{len(alerts)} new alerts",
                severity=TOAST_SEVERITY.get(worst, "warning"),
                timeout=TOAST_TIMEOUT_S.get(worst),
                markup=False,
            )
        self.refresh_alerts()

    def _where_alerts_are(self) -> str:
        """The toast's pointer to the Alerts screen, true for the screen in view."""
        screen = self.screen
        if isinstance(screen, AlertsScreen):
            return "They are listed below."
        if getattr(screen, "id", None) == "fleet":
            return "Press a for the Alerts screen."
        return "Type :alerts (or Esc, then a) for the Alerts screen."

    # --- navigation and changes -------------------------------------------------------
    def action_alerts(self) -> None:
        if not isinstance(self.screen, ModalScreen):  # a key on a dialog is the dialog's
            self.go_alerts()

    def go_alerts(self) -> None:
        if self.alert_desk is None:
            self.notify("This console has no alert store.", title="Alerts", severity="error")
            return
        if isinstance(self.screen, AlertsScreen):
            self.refresh_alerts()
            return
        self.go_fleet()
        self.push_screen(AlertsScreen())

    def alert_written(self, text: str) -> None:
        """A change committed: say so and read the alerts again."""
        self.notify(text, title="Alerts", markup=False)
        self.refresh_alerts()
