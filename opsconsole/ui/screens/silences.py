"""The silences in force and scheduled (and, with `e`, recently ended ones), and `x` to end
one now. Read and written in thread workers; ending one asks first and passes the
read-only guard."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from opsconsole.alerts import Silence
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten, SilencesLoaded
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.view.alert_text import DIM, STATE_STYLES, matcher_text
from opsconsole.ui.view.lease_text import short_ts

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

COLUMNS = (
    ("id", "ID", 4),
    ("match", "MATCH", 34),
    ("state", "STATE", 9),
    ("until", "UNTIL", 12),
    ("by", "BY", 12),
    ("comment", "COMMENT", None),
)
SILENCE_STYLES = {"in force": STATE_STYLES["silenced"], "scheduled": "#87afd7", "ended": DIM}


class SilencesScreen(ModalScreen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("x", "expire", "End silence"),
        Binding("e", "toggle_ended", "Show ended"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_expired = False
        self.silences: list[Silence] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="silences-box", classes="dialog"):
            yield Label("Silences", classes="dialog-title", id="silences-title")
            yield DataTable(cursor_type="row", id="silences-table")
            yield Label(id="silences-error", classes="dialog-error")
            yield Label(
                "[b]x[/b] end the selected silence now    [b]e[/b] show / hide ended"
                "    [b]Esc[/b] close",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            if key == "until":  # room for a zone name longer than "Z" ("+08", "CEST")
                width = len(short_ts(0.0))
            table.add_column(label, key=key, width=width)
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load(self.include_expired)

    def _load(self, include_expired: bool) -> None:
        desk = self.app.alerts.need_desk()
        desk.gateway.ask(
            self,
            lambda: desk.silences(include_expired=include_expired),
            SilencesLoaded,
            lambda text: AlertRefused(text, "read"),
            group="silences",
            answer_when_cancelled=True,
        )

    def on_silences_loaded(self, message: SilencesLoaded) -> None:
        message.stop()
        self.silences = message.silences
        now_ts = self.app.clock()
        table = self.query_one(DataTable)
        table.clear()
        for s in message.silences:
            state = s.state_at(now_ts)
            table.add_row(
                Text(str(s.id), justify="right"),
                Text(matcher_text(s.matchers), "bold"),
                Text(state, SILENCE_STYLES.get(state, "")),
                Text(short_ts(s.end_ts)),
                Text(s.created_by),
                Text(s.comment, DIM),
                key=str(s.id),
            )
        shown = (
            "in force, scheduled and ended" if self.include_expired else "in force and scheduled"
        )
        self.query_one("#silences-title", Label).update(
            f"Silences {shown}: {len(message.silences)}"
        )

    @property
    def current_silence(self) -> Silence | None:
        table = self.query_one(DataTable)
        if not table.row_count or self.silences is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((s for s in self.silences if str(s.id) == key), None)

    def action_toggle_ended(self) -> None:
        self.include_expired = not self.include_expired
        self.reload()

    @changes_state("end silence")
    def action_expire(self) -> None:
        silence = self.current_silence
        if silence is None:
            self.notify("Move the cursor to a silence to end it.", severity="warning")
            return
        if silence.state_at(self.app.clock()) == "ended":
            self.notify(f"Silence {silence.id} has already ended.", severity="warning")
            return
        question = (
            f"End silence {silence.id} ({matcher_text(silence.matchers)}) now?"
            " Alerts it holds back will notify again."
        )
        self.app.push_screen(
            ConfirmScreen(question), lambda yes: self.expire_now(silence.id) if yes else None
        )

    @changes_state("end silence")
    def expire_now(self, silence_id: int) -> None:
        self._expire_in_thread(silence_id)

    def _expire_in_thread(self, silence_id: int) -> None:
        desk = self.app.alerts.need_desk()
        desk.gateway.ask(
            self,
            lambda: desk.expire(silence_id),
            lambda _: AlertWritten(f"Ended silence {silence_id}"),
            lambda text: AlertRefused(text, "end"),
            group="silence-end",
            exclusive=False,
        )

    def on_alert_written(self, message: AlertWritten) -> None:
        message.stop()
        self.query_one("#silences-error", Label).update("")
        self.app.alerts.written(message.text)
        self.reload()

    def on_alert_refused(self, message: AlertRefused) -> None:
        message.stop()
        self.query_one("#silences-error", Label).update(Text(message.text))

    def action_close(self) -> None:
        self.dismiss(None)
