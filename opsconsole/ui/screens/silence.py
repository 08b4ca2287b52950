"""Silence alerts like the selected one: pick matchers offered from its labels (site, rack,
host, GPU, rule, each tenant), a duration (default one hour) and a comment.

Why offer the alert's own labels instead of a free matcher line: a silence is exact
label matching, so a typo silences nothing while looking done. The dialog shows what the
silence would match among the alerts listed now before Enter writes it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, SelectionList

from opsconsole.alerts import Alert, Silence
from opsconsole.errors import AlertError, LeaseError
from opsconsole.leases.times import format_ts, parse_duration
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten
from opsconsole.ui.screens.alert_dialog import AlertDialog
from opsconsole.ui.view.alert_board import tenants_of, where_text
from opsconsole.ui.view.alert_text import matcher_text
from opsconsole.ui.widgets.matcher_list import MatcherList

DEFAULT_DURATION = "1h"
MATCHER_ORDER = ("site", "rack", "host", "gpu", "rule")


def matcher_choices(alert: Alert) -> list[tuple[str, str, bool]]:
    """(key, value, selected at first): host and rule when the alert names a host, else
    the narrowest place it names and the rule."""
    labels = alert.labels | {"rule": alert.rule}
    place = next((k for k in ("host", "rack", "site") if labels.get(k)), None)
    choices = [(k, labels[k], k in (place, "rule")) for k in MATCHER_ORDER if labels.get(k)]
    choices += [("tenant", name, False) for name in tenants_of(alert)]
    return choices


class SilenceScreen(AlertDialog):
    """Dismissed with one line saying what was written, or None when cancelled."""

    ERROR_LABEL = "silence-error"

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        choices = [
            (f"{key} = {value}", f"{key}={value}", selected)
            for key, value, selected in matcher_choices(alert)
        ]
        with Vertical(id="silence-box", classes="dialog"):
            yield Label(
                Text(f"Silence alerts like {alert.id}: {alert.rule} on {where_text(alert)}"),
                classes="dialog-title",
            )
            yield Label("Match all of (Space toggles):", classes="form-hint-line")
            yield MatcherList(*choices, id="silence-matchers")
            with Horizontal(classes="form-row"):
                yield Label("For", classes="form-label")
                yield Input(DEFAULT_DURATION, placeholder="1h, 30m, 2d", id="silence-duration")
                yield Label("from now", classes="form-hint")
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input(placeholder="why (required)", id="silence-comment")
                yield Label("required", classes="form-hint")
            yield Label(id="silence-preview")
            yield Label(id="silence-error", classes="dialog-error")
            yield Label(
                "[b]Space[/b] toggle    [b]Tab[/b] next field    [b]Enter[/b] in a field:"
                " silence    [b]Esc[/b] cancel",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        matchers = self.query_one(SelectionList)
        matchers.highlighted = 0
        matchers.focus()
        self._show_preview()

    # --- what the silence would be ----------------------------------------------------
    def _matchers(self) -> dict[str, str]:
        """The ticked matchers; AlertError when two tenants are ticked (one matcher each)."""
        out: dict[str, str] = {}
        order = (*MATCHER_ORDER, "tenant")
        ticked = self.query_one(SelectionList).selected
        for item in sorted(ticked, key=lambda item: order.index(item.partition("=")[0])):
            key, _, value = item.partition("=")
            if key in out:
                raise AlertError(f"tick one {key} only: a silence matches one value per label")
            out[key] = value
        if not out:
            raise AlertError("tick at least one matcher")
        return out

    def _duration_s(self) -> float:
        try:
            duration_s = parse_duration(self.query_one("#silence-duration", Input).value)
        except LeaseError as exc:
            raise AlertError(str(exc)) from None
        if duration_s <= 0:
            raise AlertError("a silence must last a while: give a duration such as 1h")
        return duration_s

    def _show_preview(self) -> None:
        label = self.query_one("#silence-preview", Label)
        try:
            matchers = self._matchers()
            duration_s = self._duration_s()
        except AlertError as exc:
            label.update(Text(str(exc), "#8a8a8a"))
            return
        now_ts = self.app.clock()
        text = Text()
        text.append("silences ")
        text.append(matcher_text(matchers), "bold")
        text.append(f" until {format_ts(now_ts + duration_s)}")
        board = self.app.alerts.board
        if board is not None:
            probe = Silence(
                id=0,
                matchers=matchers,
                start_ts=now_ts,
                end_ts=now_ts + duration_s,
                created_by="",
                comment="",
                created_ts=now_ts,
            )
            hits = sum(
                1 for a in board.alerts if a.state != "resolved" and probe.matches(a.rule, a.labels)
            )
            text.append(f" · matches {hits} open alert(s) now", "#8a8a8a")
        label.update(text)

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self.query_one("#silence-error", Label).update("")
        self._show_preview()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#silence-error", Label).update("")
        self._show_preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.confirm()

    # --- writing ----------------------------------------------------------------------
    def confirm(self) -> None:
        if self.busy:
            return
        try:
            matchers = self._matchers()
            duration_s = self._duration_s()
        except AlertError as exc:
            self._error(str(exc))
            return
        comment = self.query_one("#silence-comment", Input).value.strip()
        if not comment:
            self._error("a silence needs a comment saying why")
            return
        self.silence(matchers, duration_s, comment)

    @changes_state("silence alerts")
    def silence(self, matchers: dict[str, str], duration_s: float, comment: str) -> None:
        self.busy = True
        self.query_one("#silence-error", Label).update("[#8a8a8a]writing…[/]")
        self._silence_in_thread(matchers, duration_s, comment)

    def _silence_in_thread(self, matchers: dict[str, str], duration_s: float, comment: str) -> None:
        desk = self.app.alerts.need_desk()

        def written(made: tuple[int, float]) -> AlertWritten:
            silence_id, end_ts = made
            return AlertWritten(
                f"Silence {silence_id}: {matcher_text(matchers)} until {format_ts(end_ts)}"
            )

        desk.gateway.ask(
            self,
            lambda: desk.silence(matchers, duration_s, comment),
            written,
            lambda text: AlertRefused(text, "silence"),
            group="silence",
            answer_when_cancelled=True,
        )
