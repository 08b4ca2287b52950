"""Alerts in the SQLite store: firing → acknowledged → resolved, with every transition in
`alert_history`, and the decision of who must be told.

Why all of it lives in the database and nothing in memory: a console restarted at 3 a.m.
must know which alerts were already acknowledged and already notified, and two consoles
on one file must agree. Each call is one BEGIN IMMEDIATE transaction, so two operators
acknowledging at once are serialised: the first wins, the second is told who did.
Notification is at most once per firing: `notified_ts` is written in the transaction that
hands the alert out.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlite_utils

from opsconsole.alerts.conditions import Condition, Kind
from opsconsole.alerts.silences import active_silences, silenced_by
from opsconsole.config.alerts import Severity
from opsconsole.errors import AlertError
from opsconsole.store.transaction import write_transaction


class AlertState(StrEnum):
    """An alert's place in its life: firing → acknowledged → resolved (and back to firing
    when an acknowledged condition fires again after an unack, or a resolved one recurs)."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


HistoryRow = tuple[float, str | None, str, str | None, str | None]
"""(ts, from_state, to_state, operator, comment) of one `alert_history` row."""
FIRING, ACKNOWLEDGED, RESOLVED = AlertState.FIRING, AlertState.ACKNOWLEDGED, AlertState.RESOLVED
_COLUMNS = (
    "id, fingerprint, rule, kind, severity, labels, summary, state, first_fired_ts, fired_ts,"
    " last_seen_ts, fire_count, notified_ts, silenced_by, acked_ts, acked_by, ack_comment,"
    " ack_expires_ts, resolved_ts, resolved_by, resolve_comment, from_readings,"
    " keep_firing_for_s"
)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    fingerprint: str
    rule: str
    kind: Kind
    severity: Severity
    labels: dict[str, str]
    summary: str
    state: AlertState
    first_fired_ts: float
    fired_ts: float  # start of the current firing
    last_seen_ts: float
    fire_count: int
    notified_ts: float | None
    silenced_by: int | None  # the silence that held back this firing's notification
    acked_ts: float | None
    acked_by: str | None
    ack_comment: str | None
    ack_expires_ts: float | None
    resolved_ts: float | None
    resolved_by: str | None  # None when the condition cleared by itself
    resolve_comment: str | None
    from_readings: bool
    keep_firing_for_s: float

    def as_condition(self) -> Condition:
        return Condition(
            rule=self.rule,
            severity=self.severity,
            kind=self.kind,
            labels=self.labels,
            summary=self.summary,
            keep_firing_for_s=self.keep_firing_for_s,
            from_readings=self.from_readings,
            fingerprint=self.fingerprint,
        )


def _alert(row: tuple[Any, ...]) -> Alert:
    values = list(row)
    values[3] = Kind(values[3])
    values[4] = Severity(values[4])
    values[5] = json.loads(values[5])
    values[7] = AlertState(values[7])
    values[21] = bool(values[21])
    return Alert(*values)


def get_alert(db: sqlite_utils.Database, alert_id: int) -> Alert:
    row = db.conn.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise AlertError(f"no alert {alert_id}", code="not_found")
    return _alert(row)


def list_alerts(
    db: sqlite_utils.Database,
    *,
    include_resolved: bool = False,
    resolved_since_ts: float | None = None,
) -> list[Alert]:
    """Alerts newest firing first; resolved ones only when asked, and with
    `resolved_since_ts` only those resolved since then (a screen showing the last day
    need not read half a year of kept history every two seconds)."""
    params: tuple[float, ...]
    if resolved_since_ts is not None:
        where, params = f"WHERE state != '{RESOLVED}' OR resolved_ts >= ?", (resolved_since_ts,)
    else:
        where, params = ("", ()) if include_resolved else (f"WHERE state != '{RESOLVED}'", ())
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM alerts {where} ORDER BY fired_ts DESC, id", params
    )
    return [_alert(row) for row in rows]


def active_conditions(db: sqlite_utils.Database) -> list[Condition]:
    """Open condition alerts as Conditions, for `PendingTracker.resume` after a restart."""
    return [a.as_condition() for a in list_alerts(db) if a.kind == Kind.CONDITION]


def alert_history(db: sqlite_utils.Database, alert_id: int) -> list[HistoryRow]:
    """(ts, from_state, to_state, operator, comment) oldest first."""
    return db.conn.execute(
        "SELECT ts, from_state, to_state, operator, comment FROM alert_history"
        " WHERE alert_id = ? ORDER BY id",
        (alert_id,),
    ).fetchall()


def last_history_id(db: sqlite_utils.Database) -> int:
    """The newest `alert_history` id (0 when empty): where a notifier starts reading."""
    (value,) = db.conn.execute("SELECT coalesce(max(id), 0) FROM alert_history").fetchone()
    return int(value)


def history_since(
    db: sqlite_utils.Database, after_id: int, limit: int = 10_000
) -> list[tuple[int, int, float, str | None, str, str | None, str | None]]:
    """(id, alert_id, ts, from_state, to_state, operator, comment) after `after_id`,
    oldest first: the transitions any process wrote since the engine last looked."""
    return db.conn.execute(
        "SELECT id, alert_id, ts, from_state, to_state, operator, comment FROM alert_history"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()


def _transition(
    tx: sqlite3.Connection, alert_id: int, ts: float, old: str | None, new: str,
    operator: str | None = None, comment: str = "",
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO alert_history (alert_id, ts, from_state, to_state, operator, comment)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (alert_id, ts, old, new, operator, comment),
    )


def apply_conditions(
    db: sqlite_utils.Database, conditions: list[Condition], now_ts: float
) -> list[Alert]:
    """Bring the alerts table in line with the conditions firing now; return the alerts
    to notify: new or re-opened firings not silenced, acknowledgements that timed out,
    and firings whose silence has ended. Open condition alerts absent from `conditions`
    resolve; event alerts (XID) stay until an operator resolves them."""
    notify: list[int] = []
    seen: set[str] = set()
    with write_transaction(db, "recording alerts") as tx:
        silences = active_silences(tx, now_ts)
        for cond in conditions:
            if cond.fingerprint in seen:
                continue  # the same XID twice in one batch is one alert, notified once
            seen.add(cond.fingerprint)
            row = tx.execute(
                "SELECT id, state, notified_ts FROM alerts WHERE fingerprint = ?",
                (cond.fingerprint,),
            ).fetchone()
            silence = silenced_by(silences, cond.rule, cond.labels)
            if row is None:
                alert_id = _insert(tx, cond, now_ts, silence)
                _transition(tx, alert_id, now_ts, None, FIRING, comment=cond.summary)
            else:
                alert_id, state, notified_ts = row
                if state == RESOLVED and cond.kind == Kind.EVENT:
                    continue  # resolved by hand; a replayed XID does not re-open it
                _refresh(tx, alert_id, cond, now_ts)
                if state == RESOLVED:
                    _reopen(tx, alert_id, now_ts, silence, "condition returned")
                elif state == FIRING and notified_ts is None and silence is None:
                    pass  # its silence ended while it still fires: tell someone now
                else:
                    continue
            if silence is None:
                notify.append(alert_id)
        _resolve_cleared(tx, seen, now_ts)
        for (alert_id,) in tx.execute(
            "SELECT id FROM alerts WHERE state = ? AND ack_expires_ts <= ?",
            (ACKNOWLEDGED, now_ts),
        ).fetchall():
            a = _alert(
                tx.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            )
            silence = silenced_by(silences, a.rule, a.labels)
            _reopen(tx, alert_id, now_ts, silence, f"acknowledgement by {a.acked_by} timed out")
            if silence is None:
                notify.append(alert_id)
        for alert_id in notify:
            tx.execute("UPDATE alerts SET notified_ts = ? WHERE id = ?", (now_ts, alert_id))
    return [get_alert(db, alert_id) for alert_id in notify]


def _insert(tx: sqlite3.Connection, cond: Condition, now_ts: float, silence: int | None) -> int:
    cursor = tx.execute(
        "INSERT INTO alerts (fingerprint, rule, kind, severity, labels, summary, from_readings,"
        " keep_firing_for_s, state, first_fired_ts, fired_ts, last_seen_ts, silenced_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            cond.fingerprint, cond.rule, cond.kind, cond.severity,
            json.dumps(cond.labels, sort_keys=True), cond.summary, int(cond.from_readings),
            cond.keep_firing_for_s, FIRING, now_ts, now_ts, now_ts, silence,
        ),
    )  # fmt: skip
    return int(cursor.lastrowid or 0)


def _refresh(tx: sqlite3.Connection, alert_id: int, cond: Condition, now_ts: float) -> None:
    """The latest words for a still-firing alert (a temperature, a down reason)."""
    tx.execute(
        "UPDATE alerts SET severity = ?, labels = ?, summary = ?, last_seen_ts = ?,"
        " keep_firing_for_s = ? WHERE id = ?",
        (cond.severity, json.dumps(cond.labels, sort_keys=True), cond.summary, now_ts,
         cond.keep_firing_for_s, alert_id),
    )  # fmt: skip


def _reopen(
    tx: sqlite3.Connection, alert_id: int, now_ts: float, silence: int | None, why: str
) -> None:
    """Back to firing as a new firing: the acknowledgement and resolution are cleared
    (they stay in the history) and it will be notified again."""
    (old,) = tx.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    tx.execute(
        "UPDATE alerts SET state = ?, fired_ts = ?, last_seen_ts = ?, fire_count = fire_count"
        " + (state = ?), notified_ts = NULL, silenced_by = ?, acked_ts = NULL, acked_by = NULL,"
        " ack_comment = NULL, ack_expires_ts = NULL, resolved_ts = NULL, resolved_by = NULL,"
        " resolve_comment = NULL WHERE id = ?",
        (FIRING, now_ts, now_ts, RESOLVED, silence, alert_id),
    )
    _transition(tx, alert_id, now_ts, old, FIRING, comment=why)


def _resolve_cleared(tx: sqlite3.Connection, seen: set[str], now_ts: float) -> None:
    open_rows = tx.execute(
        "SELECT id, fingerprint, state FROM alerts WHERE kind = 'condition' AND state != ?",
        (RESOLVED,),
    ).fetchall()
    for alert_id, fp, state in open_rows:
        if fp in seen:
            continue
        tx.execute(
            "UPDATE alerts SET state = ?, resolved_ts = ? WHERE id = ?",
            (RESOLVED, now_ts, alert_id),
        )
        _transition(tx, alert_id, now_ts, state, RESOLVED, comment="condition cleared")


def acknowledge(
    db: sqlite_utils.Database, alert_id: int, operator: str, comment: str,
    *, timeout_s: float | None = None, now_ts: float,
) -> Alert:  # fmt: skip
    """Acknowledge a firing alert. With `timeout_s` it fires (and notifies) again if still
    open that long after. A second operator gets AlertError naming who acknowledged first."""
    if timeout_s is not None and timeout_s <= 0:
        raise AlertError("an acknowledgement timeout must be positive")
    with write_transaction(db, f"acknowledging alert {alert_id}") as tx:
        alert = _locked(tx, alert_id)
        if alert.state == ACKNOWLEDGED:
            raise AlertError(
                f"alert {alert_id} was already acknowledged by {alert.acked_by}"
                + (f": {alert.ack_comment}" if alert.ack_comment else "")
            )
        if alert.state == RESOLVED:
            raise AlertError(f"alert {alert_id} is already resolved")
        expires = None if timeout_s is None else now_ts + timeout_s
        tx.execute(
            "UPDATE alerts SET state = ?, acked_ts = ?, acked_by = ?, ack_comment = ?,"
            " ack_expires_ts = ? WHERE id = ?",
            (ACKNOWLEDGED, now_ts, operator, comment, expires, alert_id),
        )
        _transition(tx, alert_id, now_ts, alert.state, ACKNOWLEDGED, operator, comment)
    return get_alert(db, alert_id)


def resolve(
    db: sqlite_utils.Database, alert_id: int, operator: str, comment: str, *, now_ts: float
) -> Alert:
    """Resolve by hand, with a comment saying what was done (the only way an XID alert
    ends). A condition alert resolved while its condition holds re-opens at the next poll."""
    if not comment.strip():
        raise AlertError("resolving an alert by hand needs a comment saying what was done")
    with write_transaction(db, f"resolving alert {alert_id}") as tx:
        alert = _locked(tx, alert_id)
        if alert.state == RESOLVED:
            raise AlertError(f"alert {alert_id} is already resolved")
        tx.execute(
            "UPDATE alerts SET state = ?, resolved_ts = ?, resolved_by = ?, resolve_comment = ?"
            " WHERE id = ?",
            (RESOLVED, now_ts, operator, comment, alert_id),
        )
        _transition(tx, alert_id, now_ts, alert.state, RESOLVED, operator, comment)
    return get_alert(db, alert_id)


def unack(
    db: sqlite_utils.Database, alert_id: int, operator: str, comment: str, *, now_ts: float
) -> Alert:
    """Withdraw an acknowledgement (the owner is off shift, it was the wrong alert): the
    alert is firing and unowned again, and the history says who withdrew it and why.

    `notified_ts` and `silenced_by` are left as they are: this firing was already handed
    out, so `apply_conditions` does not notify it again. (A firing never notified because
    a silence held it back is notified once that silence ends, as any silenced firing is.)
    """
    with write_transaction(db, f"withdrawing the acknowledgement of alert {alert_id}") as tx:
        alert = _locked(tx, alert_id)
        if alert.state != ACKNOWLEDGED:
            raise AlertError(f"alert {alert_id} is not acknowledged (it is {alert.state})")
        tx.execute(
            "UPDATE alerts SET state = ?, acked_ts = NULL, acked_by = NULL, ack_comment = NULL,"
            " ack_expires_ts = NULL WHERE id = ?",
            (FIRING, alert_id),
        )
        _transition(tx, alert_id, now_ts, ACKNOWLEDGED, FIRING, operator, comment)
    return get_alert(db, alert_id)


def _locked(tx: sqlite3.Connection, alert_id: int) -> Alert:
    row = tx.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise AlertError(f"no alert {alert_id}", code="not_found")
    return _alert(row)
