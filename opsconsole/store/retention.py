"""Retention: old rollups and events deleted in bounded batches, each its own transaction,
so a first run over months of backlog never holds the write lock for long and ingest can
flush between batches.

GPU slots and swaps are inventory history and are kept.
"""

from __future__ import annotations

import sqlite_utils

from opsconsole.store.transaction import write_transaction

DAY_S = 86_400

_DELETE_ROLLUPS = (
    "DELETE FROM gpu_minute WHERE (host, gpu_index, minute_ts) IN"
    " (SELECT host, gpu_index, minute_ts FROM gpu_minute WHERE minute_ts < ? LIMIT ?)"
)
_DELETE_EVENTS = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)"


def apply_retention(
    db: sqlite_utils.Database,
    now_ts: float,
    rollup_days: float,
    event_days: float,
    *,
    batch_rows: int = 5_000,
) -> dict[str, int]:
    """Delete rollups older than `rollup_days` and events older than `event_days`;
    return the rows deleted per table. Raises StoreError if the store cannot be written
    (rows deleted by batches already committed stay deleted)."""
    return {
        "gpu_minute": _delete_batches(
            db, _DELETE_ROLLUPS, now_ts - rollup_days * DAY_S, batch_rows
        ),
        "events": _delete_batches(db, _DELETE_EVENTS, now_ts - event_days * DAY_S, batch_rows),
    }


def _delete_batches(db: sqlite_utils.Database, sql: str, cutoff_ts: float, batch_rows: int) -> int:
    deleted = 0
    while True:
        with write_transaction(db, "applying retention") as tx:
            count = tx.execute(sql, (cutoff_ts, batch_rows)).rowcount
        deleted += count
        if count < batch_rows:
            return deleted
