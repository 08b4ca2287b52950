"""The one-line prompt of command mode (`:`) and filter mode (`/`), k9s style: it opens
over the current screen, Enter submits, Esc cancels."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        prefix: str,
        *,
        value: str = "",
        placeholder: str = "",
        suggestions: list[str] | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.initial = value
        self.placeholder = placeholder
        self.suggestions = suggestions
        self.on_change = on_change

    def compose(self) -> ComposeResult:
        suggester = (
            SuggestFromList(self.suggestions, case_sensitive=False) if self.suggestions else None
        )
        with Horizontal(id="prompt-bar"):
            yield Label(self.prefix, id="prompt-prefix")
            yield Input(
                self.initial, placeholder=self.placeholder, suggester=suggester, id="prompt-input"
            )

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.on_change is not None:
            self.on_change(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
