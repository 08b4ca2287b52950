"""Alerts over a past period: which were open when, for reports that ask "what touched
these GPUs between then and then" rather than "what is open now"."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import sqlite_utils

from opsconsole.alerts.store import _COLUMNS, Alert, AlertState, HistoryRow, _alert


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """An alert and the spans [start, end) it was open (firing or acknowledged); an end
    of `math.inf` means still open."""

    alert: Alert
    spans: tuple[tuple[float, float], ...]
    history: tuple[HistoryRow, ...]
    """(ts, from_state, to_state, operator, comment) oldest first."""


def alerts_open_during(
    db: sqlite_utils.Database, since_ts: float, until_ts: float, *, hosts: set[str]
) -> list[AlertSpan]:
    """Alerts on `hosts` (by their host label) open at some moment of [since, until),
    oldest first. Alerts pruned by retention are gone and cannot be reported."""
    if not hosts:
        return []
    marks = ", ".join("?" for _ in hosts)
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE json_extract(labels, '$.host') IN ({marks})"
        " AND first_fired_ts < ? AND (state != 'resolved' OR resolved_ts >= ?)"
        " ORDER BY first_fired_ts, id",
        [*sorted(hosts), until_ts, since_ts],
    ).fetchall()
    out = []
    for row in rows:
        alert = _alert(row)
        history = tuple(
            db.conn.execute(
                "SELECT ts, from_state, to_state, operator, comment FROM alert_history"
                " WHERE alert_id = ? ORDER BY id",
                (alert.id,),
            ).fetchall()
        )
        spans: list[list[float]] = []
        for ts, _from, to_state, _who, _comment in history:
            is_open = bool(spans) and spans[-1][1] == math.inf
            if to_state in (AlertState.FIRING, AlertState.ACKNOWLEDGED) and not is_open:
                spans.append([ts, math.inf])
            elif to_state == AlertState.RESOLVED and is_open:
                spans[-1][1] = ts
        kept = tuple((a, b) for a, b in spans if a < until_ts and b > since_ts)
        if kept:
            out.append(AlertSpan(alert, kept, history))
    return out


def critical_firings(
    db: sqlite_utils.Database, since_ts: float, until_ts: float
) -> list[tuple[int, str, float]]:
    """(alert id, host, ts) of every transition into firing of a critical alert with a
    host label in [since, until): the moments the flight recorder keeps samples around."""
    return db.conn.execute(
        "SELECT a.id, json_extract(a.labels, '$.host'), h.ts FROM alert_history h"
        " JOIN alerts a ON a.id = h.alert_id WHERE h.to_state = 'firing'"
        " AND a.severity = 'critical' AND json_extract(a.labels, '$.host') IS NOT NULL"
        " AND h.ts >= ? AND h.ts < ? ORDER BY h.ts",
        (since_ts, until_ts),
    ).fetchall()


def kept_alert_ids(db: sqlite_utils.Database) -> set[int]:
    """Ids of every alert still kept (retention has not removed it)."""
    return {i for (i,) in db.conn.execute("SELECT id FROM alerts")}


def alerts_as_of(db: sqlite_utils.Database, ts: float, *, resolved_shown_s: float) -> list[Alert]:
    """The alerts as the store would have listed them at `ts` (replay): each alert's state
    from its last transition at or before `ts`, those resolved within `resolved_shown_s`
    before it included; newest firing first. Alerts pruned since are gone."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE first_fired_ts <= ?"
        " AND (resolved_ts IS NULL OR resolved_ts >= ?)",
        (ts, ts - resolved_shown_s),
    ).fetchall()
    out = []
    for row in rows:
        alert = _alert(row)
        last = db.conn.execute(
            "SELECT ts, to_state, operator, comment FROM alert_history WHERE alert_id = ?"
            " AND ts <= ? ORDER BY id DESC LIMIT 1",
            (alert.id, ts),
        ).fetchone()
        if last is None:
            continue
        at, to_state, who, comment = last
        state = AlertState(to_state)
        if state == AlertState.RESOLVED and at < ts - resolved_shown_s:
            continue
        fired = db.conn.execute(
            "SELECT max(ts) FROM alert_history WHERE alert_id = ? AND ts <= ? AND to_state = ?",
            (alert.id, ts, AlertState.FIRING.value),
        ).fetchone()[0]
        out.append(
            replace(
                alert,
                state=state,
                fired_ts=fired if fired is not None else alert.first_fired_ts,
                last_seen_ts=min(alert.last_seen_ts, ts),
                acked_ts=at if state == AlertState.ACKNOWLEDGED else None,
                acked_by=who if state == AlertState.ACKNOWLEDGED else None,
                ack_comment=comment if state == AlertState.ACKNOWLEDGED else None,
                ack_expires_ts=None,
                resolved_ts=at if state == AlertState.RESOLVED else None,
                resolved_by=who if state == AlertState.RESOLVED else None,
                resolve_comment=comment if state == AlertState.RESOLVED else None,
            )
        )
    out.sort(key=lambda a: (-a.fired_ts, a.id))
    return out


_CRITICAL_TRANSITIONS = (
    "SELECT a.id, json_extract(a.labels, '$.host'), json_extract(a.labels, '$.gpu'), h.ts,"
    " h.to_state FROM alerts a JOIN alert_history h ON h.alert_id = a.id"
    " WHERE a.severity = 'critical' AND json_extract(a.labels, '$.host') IN ({marks})"
    " AND (a.state != 'resolved' OR a.resolved_ts > ?) AND h.ts < ? ORDER BY a.id, h.id"
)


def critical_alert_spans(
    conn: sqlite3.Connection, slots: set[tuple[str, int]], since_ts: float, until_ts: float
) -> dict[tuple[str, int], list[list[float]]]:
    """(host, gpu) → the [start, end) spans a critical alert was open on each slot
    (unmerged; `math.inf` for one still open), for usage accounting
    (`leases.usage.CriticalAlertSpans`): an alert labelled host and gpu covers that GPU,
    one with a host but no gpu every leased GPU of the host. An alert last resolved before
    `since_ts` cannot overlap the period and is not read."""
    by_host: dict[str, list[int]] = defaultdict(list)
    for host, index in slots:
        by_host[host].append(index)
    if not by_host:
        return {}
    marks = ", ".join("?" for _ in by_host)
    rows = conn.execute(_CRITICAL_TRANSITIONS.format(marks=marks), [*by_host, since_ts, until_ts])
    spans: dict[tuple[str, int], list[list[float]]] = defaultdict(list)
    for (host, gpu), opened in _open_spans(rows).items():
        for index in _covered(by_host[host], gpu):
            spans[(host, index)] += opened
    return dict(spans)


def _open_spans(
    rows: Iterable[tuple[int, str, object, float, str]],
) -> dict[tuple[str, object], list[list[float]]]:
    """(host, gpu label) → the spans each alert was open, from its transitions in order:
    into firing/acknowledged opens (a firing after an ack stays open), into resolved
    closes; still open at the end of the rows means open until now (inf, clipped later)."""
    out: dict[tuple[str, object], list[list[float]]] = defaultdict(list)
    current: dict[int, list[float]] = {}
    for alert_id, host, gpu, ts, to_state in rows:
        if to_state == AlertState.RESOLVED and alert_id in current:
            current.pop(alert_id)[1] = ts
        elif to_state in (AlertState.FIRING, AlertState.ACKNOWLEDGED) and alert_id not in current:
            current[alert_id] = [ts, math.inf]
            out[(host, gpu)].append(current[alert_id])
    return out


def _covered(leased_gpus: list[int], gpu: object) -> list[int]:
    """The leased GPU indexes an alert covers: its own GPU, or all of them for a host-wide
    alert. A gpu label that is not an index (none today) covers nothing rather than all."""
    if gpu is None:
        return leased_gpus
    text = str(gpu)
    return [int(text)] if text.isdigit() and int(text) in leased_gpus else []
