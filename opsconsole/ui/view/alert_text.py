"""Alerts in few characters: the table's cells, the detail pane, the header's counts and
the toasts. Pure functions of an AlertBoard, so the screen, the header and the fleet grid
say the same thing about an alert."""

from __future__ import annotations

from typing import Literal

from rich.text import Text

from opsconsole.alerts import Alert, Silence, xid_info
from opsconsole.ui.view.alert_board import (
    AlertBoard,
    AlertCounts,
    History,
    tenants_of,
    where_text,
)
from opsconsole.ui.view.formatting import age_text
from opsconsole.ui.view.lease_text import short_ts

SEVERITY_STYLES = {"critical": "bold #ff5f5f", "warning": "bold #ffd75f", "info": "#87afd7"}
STATE_STYLES = {
    "firing": "bold #ff5f5f",
    "silenced": "#af87d7",
    "acknowledged": "#87afd7",
    "resolved": "#5fd75f",
}
STATE_MARKS = {"firing": "●", "silenced": "◌", "acknowledged": "✓", "resolved": "✔"}
ToastSeverity = Literal["information", "warning", "error"]
"""Textual's notification severities (this module imports no Textual)."""
TOAST_SEVERITY: dict[str, ToastSeverity] = {
    "critical": "error",
    "warning": "warning",
    "info": "information",
}
TOAST_TIMEOUT_S = {"critical": 30.0, "warning": 12.0, "info": 6.0}
DIM = "#8a8a8a"
SUMMARY_MAX = 120

Cell = tuple[str, str]
"""(text, style): compared between refreshes, so an unchanged table is not redrawn."""


def state_text(alert: Alert, board: AlertBoard) -> str:
    """ "firing", "acked by alice 5m", "silenced", "resolved 3m ago"."""
    state = board.shown_state(alert)
    mark = STATE_MARKS.get(state, "?")
    now = board.now_ts
    if state == "acknowledged":
        return f"{mark} acked by {alert.acked_by} {age_text(now - (alert.acked_ts or now))}"
    if state == "resolved":
        return f"{mark} resolved {age_text(now - (alert.resolved_ts or now))} ago"
    return f"{mark} {state}"


def alert_cells(alert: Alert, board: AlertBoard) -> tuple[Cell, ...]:
    state = board.shown_state(alert)
    resolved = state == "resolved"
    summary = alert.summary.removeprefix(where_text(alert) + ": ")  # WHERE says it already
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1] + "…"
    return (
        (state_text(alert, board), STATE_STYLES.get(state, "")),
        (alert.rule, DIM if resolved else ""),
        (where_text(alert), DIM if resolved else "bold"),
        (", ".join(tenants_of(alert)) or "—", DIM if resolved else "#d787ff"),
        (age_text(board.now_ts - alert.fired_ts), DIM),
        (summary, DIM if resolved else ""),
    )


def group_cells(severity: str, count: int, columns: int) -> tuple[Cell, ...]:
    title = f"■ {severity.upper()} · {count}"
    return ((title, SEVERITY_STYLES.get(severity, "bold")), *(("", ""),) * (columns - 1))


def counts_text(counts: AlertCounts) -> Text:
    """The header's alert figures: open alerts, how many nobody is on (critical ones on
    red), silenced; nothing at all when no alert is open."""
    text = Text()
    if not counts.open:
        return text
    text.append(" alerts ", DIM)
    text.append(f"{counts.open} firing", "bold #ffd75f")
    text.append(" · ")
    text.append(f"{counts.unacked} unacked", "bold #ff5f5f" if counts.unacked else DIM)
    if counts.unacked_critical:
        text.append(" ")
        text.append(f" {counts.unacked_critical} critical ", "bold #ffffff on #af0000")
    if counts.silenced:
        text.append(f" · {counts.silenced} silenced", DIM)
    return text


def xid_lines(alert: Alert) -> list[str]:
    """What the catalogue says about an XID alert; nothing for other rules."""
    code = alert.labels.get("code")
    if not alert.rule.startswith("xid_") or code is None or not code.isdigit():
        return []
    info = xid_info(int(code))
    return [
        f"XID {info.code}: {info.meaning}",
        f"likely cause: {info.cause} · recommended action: {info.action}",
    ]


def detail_text(
    alert: Alert, board: AlertBoard, history: History | None, silence: Silence | None
) -> Text:
    """The history pane: what, where, who is on it, the catalogue's advice, every
    transition."""
    now = board.now_ts
    state = board.shown_state(alert)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f" #{alert.id} {alert.rule}", "bold")
    text.append(f" · {alert.severity}", SEVERITY_STYLES.get(alert.severity, ""))
    text.append(f" · {state_text(alert, board)}", STATE_STYLES.get(state, ""))
    text.append(f" · first fired {short_ts(alert.first_fired_ts)}", DIM)
    if alert.fire_count > 1:
        text.append(f", fired {alert.fire_count} times", DIM)
    labels = alert.labels
    place = [where_text(alert)]
    place += [f"{k} {labels[k]}" for k in ("rack", "site") if k in labels]
    tenants = tenants_of(alert)
    if tenants:
        place.append("tenant " + ", ".join(tenants))
    if labels.get("leases"):
        place.append(f"leases {labels['leases']}")
    text.append("\n " + " · ".join(place), DIM)
    text.append("\n " + alert.summary)
    for line in xid_lines(alert):
        text.append("\n " + line, "#ffd75f")
    if state == "acknowledged":
        text.append(f"\n acknowledged by {alert.acked_by} {short_ts(alert.acked_ts)}", "#87afd7")
        if alert.ack_comment:
            text.append(f": {alert.ack_comment}", "#87afd7")
        if alert.ack_expires_ts is not None:
            left = age_text(alert.ack_expires_ts - now)
            text.append(f" · fires again in {left} if still open", DIM)
    if state == "resolved":
        by = f"by {alert.resolved_by}" if alert.resolved_by else "(condition cleared)"
        text.append(f"\n resolved {short_ts(alert.resolved_ts)} {by}", "#5fd75f")
        if alert.resolve_comment:
            text.append(f": {alert.resolve_comment}", "#5fd75f")
    if silence is not None:
        text.append(
            f"\n silenced by #{silence.id} {matcher_text(silence.matchers)} until"
            f" {short_ts(silence.end_ts)} ({silence.created_by}"
            + (f": {silence.comment})" if silence.comment else ")"),
            STATE_STYLES["silenced"],
        )
    text.append("\n history", "bold")
    if history is None:
        text.append(" loading…", DIM)
    for ts, old, new, operator, comment in history or ():
        move = f"{old} → {new}" if old else f"→ {new}"
        text.append(f"\n   {short_ts(ts)}  {move:<28}", "")
        note = " ".join(p for p in (operator and f"{operator}:", comment) if p)
        text.append(note, DIM)
    return text


def matcher_text(matchers: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in matchers.items())


def toast_text(alert: Alert) -> str:
    tenants = tenants_of(alert)
    line = alert.summary
    if tenants and not any(t in line for t in tenants):
        line += f" · tenant {', '.join(tenants)}"
    return line


def toast_title(alert: Alert) -> str:
    return f"{alert.severity.upper()} · {alert.rule} #{alert.id}"
