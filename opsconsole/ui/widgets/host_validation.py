"""The host view's validation lines: the node's handover state (validating, cleaning,
failed validation) and its newest run per level with age, verdict and figures. Shown
only when the console has a store."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from opsconsole.ui.view.formatting import age_text
from opsconsole.ui.view.lease_board import LeaseBoard
from opsconsole.ui.view.lease_text import DIM
from opsconsole.ui.widgets.in_place import update_in_place

LEVELS = ("quick", "standard", "long", "clean")
FIGURES_CHARS = 100
"""A line per level; the whole story is in `opsconsole validate show RUN`."""
VERDICT_STYLES = {"passed": "#5fd75f", "failed": "bold #ff5f5f", "error": "#ffd75f"}
HANDOVER_STYLES = {
    "validating": "bold #5fafff",
    "cleaning": "bold #d7af5f",
    "failed-validation": "bold #ff5f5f",
}


class HostValidation(Static):
    def show(self, host_name: str, board: LeaseBoard | None, now_ts: float) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("VALIDATION ", "bold #87afd7")
        if board is None:
            text.append("loading…", DIM)
            update_in_place(self, text)
            return
        state = board.handover.get(host_name)
        if state is not None:
            text.append(str(state.state), HANDOVER_STYLES.get(str(state.state), "bold"))
            text.append(f" {state.detail}", DIM)
        runs = board.validations.get(host_name, {})
        if not runs:
            text.append("" if state else "no run yet", DIM)
        for level in LEVELS:
            run = runs.get(level)
            if run is None:
                continue
            text.append(f"\n       {level:<8} ")
            text.append(run.verdict, VERDICT_STYLES.get(run.verdict, ""))
            text.append(f" {age_text(now_ts - run.finished_ts)} ago · run {run.run_id}", DIM)
            if run.figures:
                figures = run.figures
                if len(figures) > FIGURES_CHARS:
                    figures = figures[: FIGURES_CHARS - 1] + "…"
                text.append(f" · {figures}", "#ff8787" if run.verdict == "failed" else "")
        update_in_place(self, text)
