"""A bounded, durable work queue for plugins, in the store's `plugin_queue` table.

Why SQLite: a notifier that was down when an alert fired must still deliver it after the
console (or `opsconsole poll`) is killed and restarted; a list in memory would be gone.
Each call is one short transaction on the queue's own connection. Bounded: past
`max_items` the oldest entries of that plugin are dropped and counted, so a receiver that
is down for a week cannot fill the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from opsconsole.store import open_store
from opsconsole.store.transaction import write_transaction


@dataclass(frozen=True)
class QueuedItem:
    id: int
    payload: dict[str, Any]
    attempts: int
    created_ts: float


class DurableQueue:
    """One plugin's queue. Thread-safe (one lock around one connection)."""

    def __init__(self, path: Path, plugin: str, *, max_items: int = 1000):
        self.plugin = plugin
        self.max_items = max_items
        self.dropped = 0
        self._lock = threading.Lock()
        self._db: sqlite_utils.Database = open_store(path, check_same_thread=False)

    def put(self, payloads: list[dict[str, Any]], now_ts: float) -> None:
        with self._lock, write_transaction(self._db, f"queueing for plugin {self.plugin}") as tx:
            tx.executemany(
                "INSERT INTO plugin_queue (plugin, created_ts, due_ts, payload)"
                " VALUES (?, ?, ?, ?)",
                [(self.plugin, now_ts, now_ts, json.dumps(p, sort_keys=True)) for p in payloads],
            )
            (count,) = tx.execute(
                "SELECT count(*) FROM plugin_queue WHERE plugin = ?", (self.plugin,)
            ).fetchone()
            excess = count - self.max_items
            if excess > 0:
                tx.execute(
                    "DELETE FROM plugin_queue WHERE id IN (SELECT id FROM plugin_queue"
                    " WHERE plugin = ? ORDER BY id LIMIT ?)",
                    (self.plugin, excess),
                )
                self.dropped += excess

    def due(self, now_ts: float, limit: int = 50) -> list[QueuedItem]:
        """Entries whose next attempt is due, oldest first."""
        with self._lock:
            rows = self._db.conn.execute(
                "SELECT id, payload, attempts, created_ts FROM plugin_queue"
                " WHERE plugin = ? AND due_ts <= ? ORDER BY id LIMIT ?",
                (self.plugin, now_ts, limit),
            ).fetchall()
        return [QueuedItem(i, json.loads(p), a, c) for i, p, a, c in rows]

    def next_due_ts(self) -> float | None:
        with self._lock:
            (ts,) = self._db.conn.execute(
                "SELECT min(due_ts) FROM plugin_queue WHERE plugin = ?", (self.plugin,)
            ).fetchone()
        return None if ts is None else float(ts)

    def done(self, item_id: int) -> None:
        with self._lock, write_transaction(self._db, f"plugin {self.plugin} queue") as tx:
            tx.execute("DELETE FROM plugin_queue WHERE id = ?", (item_id,))

    def retry(self, item_id: int, due_ts: float, error: str) -> None:
        with self._lock, write_transaction(self._db, f"plugin {self.plugin} queue") as tx:
            tx.execute(
                "UPDATE plugin_queue SET attempts = attempts + 1, due_ts = ?, last_error = ?"
                " WHERE id = ?",
                (due_ts, error[:500], item_id),
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.conn.execute(
                "SELECT count(*) FROM plugin_queue WHERE plugin = ?", (self.plugin,)
            ).fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
