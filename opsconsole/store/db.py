"""Opening the SQLite store: one connection we create ourselves, tuned for a console that
writes telemetry from a worker thread while screens read it, and migrated before use.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from opsconsole.errors import StoreError
from opsconsole.store.migrations import migrate
from opsconsole.store.transaction import BUSY_TIMEOUT_S, describe_error


def open_store(
    path: str | Path,
    *,
    check_same_thread: bool = False,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the store at `path`.

    WAL lets screens read while ingest writes; synchronous=NORMAL is durable to the last
    checkpoint and loses at most the last commits on power loss, never corrupts. The
    connection is ours (not sqlite-utils' default) so it can be handed to a worker thread.
    """
    shown = str(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(shown, timeout=busy_timeout_s, check_same_thread=check_same_thread)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        # The first access to the file header: a file that is not a database fails here
        # rather than half-way through a migration.
        _enable_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # No sqlite-utils plugins: what runs on the console's connection is decided here.
        db = sqlite_utils.Database(conn, execute_plugins=False)
        migrate(db, shown)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        read_only = _read_only_place(Path(shown))
        if read_only:
            raise StoreError(f"store {shown}: database is read-only ({read_only})") from None
        raise StoreError(describe_error(shown, exc)) from None
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    return db


def _read_only_place(path: Path) -> str:
    """Why an existing store cannot be written, if that is why it would not open: SQLite
    reports a WAL file it cannot create as "cannot open", which sends people looking
    for a missing file."""
    if not path.exists():
        return ""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only mount"
    except OSError:
        return ""
    if not os.access(path, os.W_OK):
        return "no write permission on the file"
    if not os.access(path.parent, os.W_OK):
        return "no write permission on its directory, where the -wal and -shm files go"
    return ""


def _enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch to WAL, retrying while another process does the same to a fresh file:
    SQLite answers "database is locked" there without consulting the busy timeout."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != 5 or time.monotonic() > deadline:  # SQLITE_BUSY
                raise
        time.sleep(0.02)
