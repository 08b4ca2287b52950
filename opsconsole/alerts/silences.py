"""Silences: an operator's "I know, stop telling me" for a site, rack, host, GPU, rule or
tenant over a window of time.

Why silences only hold back notification: the alert is still recorded, shown and kept in
history, so a silenced fault is never an invisible one. Matchers are exact label values
(no regexes): a console operator types a host name, and an exact match cannot silence
more than was meant. The one list-valued label is `tenant` (a GPU shared by two tenants'
leases carries `acme,globex`): a tenant matcher matches any one of its names.

Ended silences stay in the table (what was silenced when stays answerable) until
`opsconsole.alerts.retention.prune_alerts` removes those ended long enough ago.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from opsconsole.errors import AlertError
from opsconsole.store.transaction import write_transaction

MATCHERS = ("site", "rack", "host", "gpu", "rule", "tenant")


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: dict[str, str]
    start_ts: float
    end_ts: float
    created_by: str
    comment: str
    created_ts: float

    def matches(self, rule: str, labels: dict[str, str]) -> bool:
        """Every matcher equals its label; `tenant` equals any one of the label's names."""
        values = labels | {"rule": rule}
        return all(
            want in label_names(values.get(key)) if key == "tenant" else values.get(key) == want
            for key, want in self.matchers.items()
        )

    def active_at(self, ts: float) -> bool:
        return self.start_ts <= ts < self.end_ts

    def state_at(self, ts: float) -> str:
        """The operator's word for it at `ts`: in force, scheduled or ended."""
        if ts >= self.end_ts:
            return "ended"
        return "in force" if ts >= self.start_ts else "scheduled"


def label_names(value: str | None) -> list[str]:
    """The names in a list-valued label (`tenant="acme,globex"`); [] when absent."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def create_silence(
    db: sqlite_utils.Database,
    matchers: dict[str, str | int],
    *,
    start_ts: float,
    end_ts: float,
    created_by: str,
    comment: str,
    now_ts: float,
) -> int:
    """Record a silence and return its id. Refused (AlertError) without a matcher, with an
    unknown matcher, with an end not after the start, or when a silence with the very same
    matchers is in force or scheduled over part of the window."""
    unknown = sorted(set(matchers) - set(MATCHERS))
    if unknown:
        raise AlertError(
            f"unknown silence matcher {', '.join(unknown)} (use {', '.join(MATCHERS)})"
        )
    given = {k: str(v) for k, v in matchers.items() if v is not None and str(v) != ""}
    if not given:
        raise AlertError(
            "a silence needs at least one matcher (site, rack, host, gpu, rule, tenant)"
        )
    if end_ts <= start_ts:
        raise AlertError("a silence must end after it starts")
    columns = ", ".join(given)
    marks = ", ".join("?" for _ in given)
    with write_transaction(db, "creating a silence") as tx:
        same = " AND ".join(f"{key} IS ?" for key in MATCHERS)
        twin = tx.execute(
            f"SELECT id, end_ts FROM silences WHERE {same} AND end_ts > ? AND start_ts < ?"
            " AND end_ts > ? ORDER BY id LIMIT 1",
            (*(given.get(key) for key in MATCHERS), start_ts, end_ts, now_ts),
        ).fetchone()
        if twin is not None:  # a double Enter, or a command run twice
            shown = " ".join(f"{k}={v}" for k, v in given.items())
            raise AlertError(
                f"silence {twin[0]} already covers {shown} in that window; end it first"
                f" (opsconsole alerts unsilence {twin[0]}) to replace it"
            )
        cursor = tx.execute(
            f"INSERT INTO silences ({columns}, start_ts, end_ts, created_ts, created_by, comment)"
            f" VALUES ({marks}, ?, ?, ?, ?, ?)",
            (*given.values(), start_ts, end_ts, now_ts, created_by, comment),
        )
        return int(cursor.lastrowid or 0)


def expire_silence(db: sqlite_utils.Database, silence_id: int, *, now_ts: float) -> None:
    """End a silence now (its row stays, so what was silenced when is still answerable)."""
    with write_transaction(db, "expiring a silence") as tx:
        row = tx.execute("SELECT start_ts, end_ts FROM silences WHERE id = ?", (silence_id,))
        found = row.fetchone()
        if found is None:
            raise AlertError(f"no silence {silence_id}", code="not_found")
        if found[1] <= now_ts:
            raise AlertError(f"silence {silence_id} has already ended")
        end_ts = max(now_ts, found[0] + 1e-6)  # keeps CHECK (end > start) for a future one
        tx.execute("UPDATE silences SET end_ts = ? WHERE id = ?", (end_ts, silence_id))


_SELECT = (
    f"SELECT id, {', '.join(MATCHERS)}, start_ts, end_ts, created_by, comment, created_ts"
    " FROM silences"
)


def _silence(row: tuple[Any, ...]) -> Silence:
    matchers = {k: v for k, v in zip(MATCHERS, row[1:7], strict=True) if v is not None}
    return Silence(row[0], matchers, row[7], row[8], row[9], row[10], row[11])


def active_silences(
    conn: sqlite3.Connection | sqlite_utils.Database, now_ts: float
) -> list[Silence]:
    """Silences in force at `now_ts` (readable inside an open transaction)."""
    conn = conn.conn if isinstance(conn, sqlite_utils.Database) else conn
    rows = conn.execute(
        f"{_SELECT} WHERE end_ts > ? AND start_ts <= ? ORDER BY id", (now_ts, now_ts)
    )
    return [_silence(row) for row in rows]


def list_silences(
    db: sqlite_utils.Database, *, now_ts: float, include_expired: bool = False
) -> list[Silence]:
    """Silences in force or scheduled at `now_ts`, earliest start first; with
    `include_expired` also the ended ones retention has not removed yet, so an operator
    can answer "why was nobody paged last night"."""
    where = "" if include_expired else "WHERE end_ts > ?"
    params = () if include_expired else (now_ts,)
    rows = db.conn.execute(f"{_SELECT} {where} ORDER BY start_ts, id", params)
    return [_silence(row) for row in rows]


def silenced_by(silences: list[Silence], rule: str, labels: dict[str, str]) -> int | None:
    """The id of the first silence that covers this alert, or None."""
    return next((s.id for s in silences if s.matches(rule, labels)), None)
