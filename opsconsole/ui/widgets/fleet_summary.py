"""The header line on every screen: fleet totals, leased and free GPUs, data age, and
console conditions (read-only, store trouble, a lost SSH agent) that concern the whole
console; open and unacknowledged alerts, when there are any, lead its second line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import getters
from textual.widgets import Static

from opsconsole.ui.view.alert_text import counts_text
from opsconsole.ui.view.formatting import age_text
from opsconsole.ui.widgets.in_place import update_in_place

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp


class FleetSummary(Static):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    DEFAULT_CSS = "FleetSummary { height: auto; max-height: 2; }"

    def on_mount(self) -> None:
        self.update_summary()
        self.set_interval(1.0, self.update_summary)

    def update_summary(self) -> None:
        app = self.app
        model = app.model
        totals = model.totals()
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" opsconsole ", "bold #000000 on #87afd7")
        if app.replay_banner is not None:
            text.append(f" {app.replay_banner()} ", "bold #ffffff on #af005f")
        elif app.read_only:
            text.append(" READ-ONLY ", "bold #000000 on #ffd75f")
        text.append("  hosts ", "#8a8a8a")
        hosts = totals.hosts
        text.append(f"{hosts['fresh']} fresh", "#5fd75f")
        for status, style in (("stale", "bold #ffd75f"), ("down", "bold #ff5f5f")):
            text.append(" · ")
            text.append(f"{hosts[status]} {status}", style if hosts[status] else "#8a8a8a")
        if hosts["pending"]:
            text.append(f" · {hosts['pending']} pending", "#8a8a8a")
        text.append("   GPUs ", "#8a8a8a")
        text.append(f"{totals.gpus_ok} healthy", "#5fd75f")
        text.append(" · ")
        text.append(
            f"{totals.gpus_fault} faulty", "bold #ff5f5f" if totals.gpus_fault else "#8a8a8a"
        )
        if totals.gpus_warn:
            text.append(f" · {totals.gpus_warn} warn", "#ffd75f")
        if totals.gpus_unknown:
            text.append(f" · {totals.gpus_unknown} unknown", "#8a8a8a")
        lease_board = app.leases.board
        if model.leases_shown and lease_board is not None:
            text.append(" · ")
            text.append(f"{lease_board.leased_gpus} leased", "#87afd7")
            text.append(f" · {lease_board.free_gpus} free", "#d0d0d0")
        text.append("   data ", "#8a8a8a")
        if totals.newest_sample_ts is None:
            text.append("none yet", "#8a8a8a")
        else:
            age_s = app.clock() - totals.newest_sample_ts
            style = (
                "#d0d0d0" if age_s < model.fleet.config.polling.stale_after_s else "bold #ff5f5f"
            )
            text.append(f"{age_text(age_s)} old", style)
        notes = [model.notes.collection, model.notes.store, model.notes.ssh_agent]
        notes.append(model.notes.console)
        notes = [n for n in (*notes, app.leases.trouble, app.alerts.trouble) if n]
        board = app.alerts.board  # open alerts take the second line, before any notes
        alerts = counts_text(board.counts()) if board is not None else Text()
        if alerts:
            text.append("\n")
            text.append_text(alerts)
        if notes:
            text.append(("   ⚠ " if alerts else "\n ⚠ ") + " · ".join(notes), "bold #ffd75f")
        update_in_place(self, text)
