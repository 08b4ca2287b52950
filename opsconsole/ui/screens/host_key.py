"""Trust the key a host now offers, from the host view (`K`): the console's side of
`opsconsole hosts trust-key`.

The dialog shows the known and offered fingerprints (SHA256, as OpenSSH prints them) and
will not write without a comment. The decision goes through the leases layer, asked
through the store gateway on a worker: the audit row and the known_hosts edit are one
transaction. The poller then re-reads known_hosts and reconnects the host.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from opsconsole.collect.host_keys import KeyChange, KeyLedger
from opsconsole.leases.times import format_ts
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten
from opsconsole.ui.screens.alert_dialog import AlertDialog


class HostKeyScreen(AlertDialog):
    """Dismissed with one line saying what was trusted, or None when cancelled."""

    ERROR_LABEL = "host-key-error"

    def __init__(self, ledger: KeyLedger, change: KeyChange) -> None:
        super().__init__()
        self.ledger = ledger
        self.change = change

    def compose(self) -> ComposeResult:
        change = self.change
        known = ", ".join(change.old_fingerprints) or "(none)"
        dim = "#8a8a8a"
        with Vertical(id="host-key-box", classes="dialog"):
            yield Label(
                Text(f"Host key changed on {change.host} ({change.address} port {change.port})"),
                classes="dialog-title",
            )
            yield Label(Text(f"known    {known}"), id="host-key-known")
            yield Label(Text(f"offered  {change.new_fingerprint}"), id="host-key-offered")
            seen = f"{format_ts(change.first_seen_ts)} to {format_ts(change.last_seen_ts)}"
            yield Label(Text(f"seen     {seen}", dim))
            yield Label(
                Text("Trust it only after checking the offered fingerprint on the host.", dim),
                classes="dialog-keys",
            )
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input(placeholder="who checked the key, and how", id="host-key-comment")
                yield Label("required", classes="form-hint")
            yield Label(
                Text(f"recorded as {self.app.leases.need_desk().operator}", dim),
                classes="dialog-keys",
            )
            yield Label(id="host-key-error", classes="dialog-error")
            yield Label(
                "[b]Enter[/b] trust the offered key    [b]Esc[/b] cancel", classes="dialog-keys"
            )

    def on_mount(self) -> None:
        self.query_one("#host-key-comment", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#host-key-error", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        comment = self.query_one("#host-key-comment", Input).value.strip()
        if not comment:
            self._error("a comment is required: who checked the key, and how")
            return
        self.trust(comment)

    @changes_state("trust a changed host key")
    def trust(self, comment: str) -> None:
        self.busy = True
        self.query_one("#host-key-error", Label).update("[#8a8a8a]writing…[/]")
        self._trust_in_thread(comment)

    def _trust_in_thread(self, comment: str) -> None:
        desk, host, ledger = self.app.leases.need_desk(), self.change.host, self.ledger
        desk.gateway.ask(
            self,
            lambda: desk.trust_host_key(ledger, host, comment),
            lambda change: AlertWritten(f"{host}: key {change.new_fingerprint} trusted"),
            lambda text: AlertRefused(text, "trust-key"),
            group="host-key",
            answer_when_cancelled=True,
        )
