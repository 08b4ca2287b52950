"""One recording alert engine per store: a row with an owner and a heartbeat.

Why: a headless poller and several consoles may share a store, each with an engine. If
all recorded, two engines that see a host a second apart would resolve and re-open each
other's alerts and notify twice. The first engine to write the row records; the others
keep evaluating (so they are warm) and take over once its heartbeat is older than
`stale_s` — a crashed or stopped leader is replaced within seconds.
"""

from __future__ import annotations

import os
import socket
import uuid

import sqlite_utils

from opsconsole.store.transaction import write_transaction


def engine_identity(role: str) -> str:
    """Who this engine is, as an operator would want it named: role, host, pid."""
    return f"{role} on {socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:6]})"


def hold_lead(db: sqlite_utils.Database, owner: str, now_ts: float, stale_s: float) -> str | None:
    """Take or keep the lead; None when this engine holds it, else the holder's name."""
    with write_transaction(db, "taking the alert engine lead") as tx:
        row = tx.execute("SELECT owner, heartbeat_ts FROM alert_engine WHERE one = 1").fetchone()
        if row is not None and row[0] != owner and now_ts - row[1] < stale_s:
            return str(row[0])
        tx.execute(
            "INSERT INTO alert_engine (one, owner, heartbeat_ts) VALUES (1, ?, ?)"
            " ON CONFLICT (one) DO UPDATE SET owner = excluded.owner,"
            " heartbeat_ts = excluded.heartbeat_ts",
            (owner, now_ts),
        )
    return None


def release_lead(db: sqlite_utils.Database, owner: str) -> None:
    """Give the lead up (on a clean stop) so a stand-by engine takes over at once."""
    with write_transaction(db, "releasing the alert engine lead") as tx:
        tx.execute("DELETE FROM alert_engine WHERE one = 1 AND owner = ?", (owner,))
