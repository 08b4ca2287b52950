"""Silences: an operator's "I know, stop telling me" for a site, rack, host, GPU, rule or
tenant over a window of time.

Why silences only hold back notification: the alert is still recorded, shown and kept in
history, so a silenced fault is never an invisible one. Matchers are exact label values
(no regexes): a console operator types a host name, and an exact match cannot silence
more than was meant.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

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

    def matches(self, rule: str, labels: dict[str, str]) -> bool:
        values = labels | {"rule": rule}
        return all(values.get(key) == want for key, want in self.matchers.items())

    def active_at(self, ts: float) -> bool:
        return self.start_ts <= ts < self.end_ts


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
    unknown matcher, or with an end not after the start."""
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
            raise AlertError(f"no silence {silence_id}")
        if found[1] <= now_ts:
            raise AlertError(f"silence {silence_id} has already ended")
        end_ts = max(now_ts, found[0] + 1e-6)  # keeps CHECK (end > start) for a future one
        tx.execute("UPDATE silences SET end_ts = ? WHERE id = ?", (end_ts, silence_id))


def active_silences(
    conn: sqlite3.Connection | sqlite_utils.Database, now_ts: float
) -> list[Silence]:
    """Silences in force at `now_ts` (readable inside an open transaction)."""
    conn = conn.conn if isinstance(conn, sqlite_utils.Database) else conn
    rows = conn.execute(
        f"SELECT id, {', '.join(MATCHERS)}, start_ts, end_ts, created_by, comment FROM silences"
        " WHERE end_ts > ? AND start_ts <= ? ORDER BY id",
        (now_ts, now_ts),
    )
    out = []
    for row in rows:
        matchers = {k: v for k, v in zip(MATCHERS, row[1:7], strict=True) if v is not None}
        out.append(Silence(row[0], matchers, row[7], row[8], row[9], row[10]))
    return out


def silenced_by(silences: list[Silence], rule: str, labels: dict[str, str]) -> int | None:
    """The id of the first silence that covers this alert, or None."""
    return next((s.id for s in silences if s.matches(rule, labels)), None)
