"""What the alert dialogs (acknowledge / unacknowledge / resolve, silence) share: Esc
cancels; a write in a worker ends in `AlertWritten` (the dialog closes with its one-line
result) or `AlertRefused` (the line stays in the dialog so the operator can fix it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Label

from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp


class AlertDialog(ModalScreen[str | None]):
    """Dismissed with one line saying what was written, or None when cancelled."""

    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]
    ERROR_LABEL = ""
    """The id of the Label a refusal is written into."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def _error(self, text: str) -> None:
        self.query_one(f"#{self.ERROR_LABEL}", Label).update(Text(text))

    def on_alert_refused(self, message: AlertRefused) -> None:
        message.stop()
        self.busy = False
        self._error(message.text)

    def on_alert_written(self, message: AlertWritten) -> None:
        message.stop()
        self.dismiss(message.text)

    def action_close(self) -> None:
        self.dismiss(None)
