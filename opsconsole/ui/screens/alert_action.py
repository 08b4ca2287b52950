"""Acknowledge, unacknowledge or resolve one alert, with a comment (and, for an
acknowledgement, an optional timeout after which it fires again).

Why the dialog is its own confirmation: it names the alert and who will be recorded, and
nothing is written until Enter. The write runs in a thread worker through the read-only
guard; a refusal from the store ("already acknowledged by alice") stays in the dialog as
one line and nothing is written.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from opsconsole.alerts import Alert
from opsconsole.errors import LeaseError
from opsconsole.leases.times import format_ts, parse_duration
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten
from opsconsole.ui.screens.alert_dialog import AlertDialog
from opsconsole.ui.view.alert_board import where_text

ACTIONS = {
    # action: (title verb, what the required comment says, done verb)
    "ack": ("Acknowledge", "who is on it (ticket, name)", "Acknowledged"),
    "unack": ("Withdraw the acknowledgement of", "why (handed over, wrong)", "Unacknowledged"),
    "resolve": ("Resolve by hand", "what was done", "Resolved"),
}
"""A comment is required for all three, here as in `opsconsole alerts ack|unack|resolve
--comment`: one rule wherever an operator acts, and the history always says why."""


def default_ack_timeout(seconds: float | None) -> str:
    """The config's `alerts.ack_timeout_default_s` as the timeout field's text ("4h",
    "90m", "45s"), or "" when it has none."""
    if not seconds:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


class AlertActionScreen(AlertDialog):
    """Dismissed with one line saying what was written, or None when cancelled."""

    ERROR_LABEL = "alert-action-error"

    def __init__(self, action: str, alert: Alert) -> None:
        super().__init__()
        assert action in ACTIONS
        self.action = action
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        verb, required, _ = ACTIONS[self.action]
        operator = self.app.alerts.need_desk().operator
        with Vertical(id="alert-action-box", classes="dialog"):
            yield Label(
                Text(f"{verb} alert {alert.id}: {alert.rule} on {where_text(alert)}"),
                classes="dialog-title",
            )
            yield Label(Text(alert.summary, "#8a8a8a"), id="alert-action-summary")
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input(placeholder=required, id="alert-comment")
                yield Label("required", classes="form-hint")
            if self.action == "ack":
                timeout = default_ack_timeout(self.app.fleet.config.alerts.ack_timeout_default_s)
                with Horizontal(classes="form-row"):
                    yield Label("Timeout", classes="form-label")
                    yield Input(timeout, placeholder="none, or 30m / 2h",
                                id="alert-timeout")  # fmt: skip
                    yield Label("fires again if still open after this", classes="form-hint")
            yield Label(Text(f"recorded as {operator}", "#8a8a8a"), classes="dialog-keys")
            yield Label(id="alert-action-error", classes="dialog-error")
            yield Label(
                "[b]Enter[/b] confirm    [b]Tab[/b] next field    [b]Esc[/b] cancel",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#alert-comment", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#alert-action-error", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.confirm()

    def confirm(self) -> None:
        if self.busy:
            return
        comment = self.query_one("#alert-comment", Input).value.strip()
        if not comment:
            self._error(f"a comment saying {ACTIONS[self.action][1]} is required")
            return
        timeout_s = None
        for field in self.query("#alert-timeout").results(Input):
            text = field.value.strip()
            if text and text.lower() != "none":
                try:
                    timeout_s = parse_duration(text)
                except LeaseError as exc:
                    self._error(str(exc))
                    return
        self.write(comment, timeout_s)

    def write(self, comment: str, timeout_s: float | None) -> None:
        if self.action == "ack":
            self.acknowledge(comment, timeout_s)
        elif self.action == "unack":
            self.unacknowledge(comment)
        else:
            self.resolve(comment)

    @changes_state("acknowledge alert")
    def acknowledge(self, comment: str, timeout_s: float | None) -> None:
        self._start(comment, timeout_s)

    @changes_state("unacknowledge alert")
    def unacknowledge(self, comment: str) -> None:
        self._start(comment, None)

    @changes_state("resolve alert")
    def resolve(self, comment: str) -> None:
        self._start(comment, None)

    def _start(self, comment: str, timeout_s: float | None) -> None:
        self.busy = True
        self.query_one("#alert-action-error", Label).update("[#8a8a8a]writing…[/]")
        self._write_in_thread(comment, timeout_s)

    def _write_in_thread(self, comment: str, timeout_s: float | None) -> None:
        desk, alert_id, action = self.app.alerts.need_desk(), self.alert.id, self.action

        def write() -> Alert:
            if action == "ack":
                return desk.acknowledge(alert_id, comment, timeout_s)
            if action == "unack":
                return desk.unacknowledge(alert_id, comment)
            return desk.resolve(alert_id, comment)

        desk.gateway.ask(
            self,
            write,
            lambda alert: AlertWritten(_done_text(action, alert)),
            lambda text: AlertRefused(text, action),
            group="alert-action",
            answer_when_cancelled=True,
        )


def _done_text(action: str, alert: Alert) -> str:
    done = ACTIONS[action][2]
    text = f"{done} alert {alert.id} ({alert.rule} on {where_text(alert)})"
    if action == "ack":
        text += f" as {alert.acked_by}"
        if alert.ack_expires_ts is not None:
            text += f" until {format_ts(alert.ack_expires_ts)}"
    elif action == "resolve":
        text += f" as {alert.resolved_by}"
    return text
