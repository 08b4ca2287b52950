"""`?`: every key of the screen it was opened from, every command, and the filter syntax.

The key list is read from the live bindings, so a key added to any screen appears here
without anyone remembering to document it.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from opsconsole.ui.controllers.guard import STATE_CHANGING_ACTIONS
from opsconsole.ui.view.command_line import VERBS
from opsconsole.ui.view.fleet_rows import __doc__ as FILTER_HELP

KEY_NAMES = {
    "colon": ":",
    "slash": "/",
    "question_mark": "?",
    "escape": "Esc",
    "enter": "Enter",
    "ctrl+p": "Ctrl+P",
}


def key_label(key: str) -> str:
    return KEY_NAMES.get(key, key)


def _table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=True)
    table.add_column(style="bold #87afd7", no_wrap=True)
    table.add_column(ratio=1)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "close", "Close"),
        Binding("q", "app.quit_console", "Quit"),  # q quits everywhere; Esc closes this
    ]

    def __init__(self, keys: list[tuple[str, str, bool]], read_only: bool) -> None:
        """`keys`: (key, description, changes state) of the screen underneath."""
        super().__init__()
        self.keys = keys
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"), Horizontal(id="help-columns"):
            yield Static(self._keys_table(), id="help-keys")
            yield Static(self._commands_table(), id="help-commands")

    def _keys_table(self) -> Table:
        table = _table()
        table.add_row(Text("Keys", style="bold underline"), "")
        for key, description, changes in self.keys:
            note = " (refused: read-only)" if changes and self.read_only else ""
            table.add_row(key, description + note)
        return table

    def _commands_table(self) -> Table:
        table = _table()
        table.add_row(Text("Commands", style="bold underline"), "type : then")
        for verb, description in VERBS.items():
            table.add_row(f":{verb}", description)
        table.add_row("", "")
        help_text = (FILTER_HELP or "").split("Filter syntax", 1)[-1].strip().splitlines()
        table.add_row(Text("Filter /", style="bold underline"), help_text[0].strip(" ():"))
        for line in help_text[1:]:
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            table.add_row(*(parts if len(parts) == 2 else ["", parts[0]]))
        if STATE_CHANGING_ACTIONS:
            table.add_row("", "")
            refused = ", ".join(sorted(set(STATE_CHANGING_ACTIONS.values())))
            table.add_row(Text("Read-only", style="bold underline"), f"refuses: {refused}")
        return table

    def action_close(self) -> None:
        self.dismiss(None)
