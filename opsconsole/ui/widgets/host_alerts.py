"""The host view's alert lines: the open alerts on this host, worst first, with who is on
them, so an operator who drilled in from the fleet sees what is wrong and whether someone
already owns it. `a` on the host view opens the Alerts screen filtered to the host."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from opsconsole.ui.view.alert_board import AlertBoard, AlertFilter, parse_alert_filter
from opsconsole.ui.view.alert_text import SEVERITY_STYLES, state_text
from opsconsole.ui.view.lease_text import DIM
from opsconsole.ui.widgets.in_place import update_in_place

SHOWN = 3
"""Alerts listed before "+N more" (the Alerts screen has them all)."""


def host_filter(host: str) -> AlertFilter:
    return parse_alert_filter(f"host={host} state=open")


class HostAlerts(Static):
    def show(self, host: str, board: AlertBoard | None, trouble: str = "") -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("ALERTS ", "bold #87afd7")
        if board is None:
            text.append(trouble or "loading…", DIM)
            update_in_place(self, text)
            return
        alerts = [a for _, group in board.grouped(host_filter(host)) for a in group]
        if not alerts:
            text.append("none open", "#5fd75f")
        for i, alert in enumerate(alerts[:SHOWN]):
            if i:
                text.append("\n       ")
            text.append(f"{alert.severity} ", SEVERITY_STYLES.get(alert.severity, ""))
            text.append(f"#{alert.id} {alert.rule} · {state_text(alert, board)} · ")
            text.append(alert.summary.removeprefix(f"{host}").lstrip(": "), DIM)
        if len(alerts) > SHOWN:
            text.append(f"\n       +{len(alerts) - SHOWN} more (a)", DIM)
        update_in_place(self, text)
