"""Extend one lease: how much longer (or until when), the new end shown before Enter, so
the dialog is its own confirmation. A refusal (slots taken after the old end, quota)
stays in the dialog as one line; nothing is written."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from opsconsole.errors import LeaseError
from opsconsole.leases import Lease
from opsconsole.leases.times import format_ts
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import LeaseRefused, LeaseWritten
from opsconsole.ui.gateway.lease_desk import Health
from opsconsole.ui.view.lease_form import parse_new_end, placement_health

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

DEFAULT_BY = "1d"


class ExtendScreen(ModalScreen[Lease | None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, lease: Lease) -> None:
        super().__init__()
        self.lease = lease
        self.busy = False

    def compose(self) -> ComposeResult:
        lease = self.lease
        with Vertical(id="extend-box", classes="dialog"):
            yield Label(
                f"Extend lease {lease.id} ({lease.tenant}, {lease.gpu_count} GPUs),"
                f" ending {format_ts(lease.end_ts)}",
                classes="dialog-title",
            )
            with Horizontal(classes="form-row"):
                yield Label("by / to", classes="form-label")
                yield Input(DEFAULT_BY, placeholder="2d, 12h, or ISO 8601", id="extend-by")
            yield Label(id="extend-new-end")
            yield Label(id="extend-error", classes="dialog-error")
            yield Label("[b]Enter[/b] extend    [b]Esc[/b] cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._show_new_end(DEFAULT_BY)

    def _new_end(self, text: str) -> float:
        return parse_new_end(text, self.lease.end_ts, self.app.clock())

    def _show_new_end(self, text: str) -> None:
        label = self.query_one("#extend-new-end", Label)
        try:
            label.update(f"new end: [b]{format_ts(self._new_end(text))}[/b]")
        except LeaseError as exc:
            label.update(Text(str(exc), "#8a8a8a"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_new_end(event.value)
        self.query_one("#extend-error", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.extend(event.value)

    @changes_state("extend lease")
    def extend(self, text: str) -> None:
        if self.busy:
            return
        try:
            end_ts = self._new_end(text)
        except LeaseError as exc:
            self.query_one("#extend-error", Label).update(Text(str(exc)))
            return
        self.busy = True
        self.query_one("#extend-error", Label).update("[#8a8a8a]extending…[/]")
        self._extend_in_thread(end_ts, placement_health(self.app.model))

    def _extend_in_thread(self, end_ts: float, health: Health) -> None:
        desk, lease_id = self.app.leases.need_desk(), self.lease.id
        desk.gateway.ask(
            self,
            lambda: desk.extend(lease_id, end_ts, health),
            lambda lease: LeaseWritten(lease, "extend"),
            lambda text: LeaseRefused(text, "extend"),
            group="extend",
            answer_when_cancelled=True,
        )

    def on_lease_refused(self, message: LeaseRefused) -> None:
        message.stop()
        self.busy = False
        self.query_one("#extend-error", Label).update(Text(message.text))

    def on_lease_written(self, message: LeaseWritten) -> None:
        message.stop()
        self.dismiss(message.lease)

    def action_close(self) -> None:
        self.dismiss(None)
