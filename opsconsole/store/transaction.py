"""Write transactions and the one-line StoreError messages for sqlite3 failures.

Every sqlite3 error that can reach an operator becomes a StoreError naming the file, so a
locked, corrupt or read-only database is reported as one line, not a traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import sqlite_utils

from opsconsole.errors import StoreError

BUSY_TIMEOUT_S = 5.0
"""How long a write waits for another writer (a second console, retention) before failing."""

# Primary result codes (https://sqlite.org/rescode.html) and what they mean to an operator.
_REASONS = {
    5: "database is locked by another process",  # SQLITE_BUSY
    6: "database table is locked",  # SQLITE_LOCKED
    8: "database is read-only (file or directory permissions, or a read-only mount)",
    10: "disk I/O error",  # SQLITE_IOERR
    11: "database file is corrupt",  # SQLITE_CORRUPT
    13: "disk is full",  # SQLITE_FULL
    14: "cannot open the file (missing directory or no permission)",  # SQLITE_CANTOPEN
    23: "access denied",  # SQLITE_AUTH
    26: "file is not an SQLite database (corrupt, or some other kind of file)",  # NOTADB
}


def describe_error(path: object, exc: BaseException, doing: str = "") -> str:
    """One line for the operator: which file, what we were doing, what went wrong."""
    code = getattr(exc, "sqlite_errorcode", None)
    reason = _REASONS.get(code & 0xFF) if isinstance(code, int) else None
    if reason is None:
        reason = str(exc) or type(exc).__name__
    where = f"{path}: {doing}: " if doing else f"{path}: "
    return " ".join(f"store {where}{reason}".split())


def database_path(db: sqlite_utils.Database) -> str:
    """The file behind a connection (":memory:" for an in-memory one), for error messages."""
    try:
        for _seq, name, file in db.conn.execute("PRAGMA database_list"):
            if name == "main":
                return file or ":memory:"
    except sqlite3.Error:
        pass
    return "?"


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database, doing: str) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: the write lock is taken up front (waiting busy_timeout),
    so a second writer waits instead of failing on a read-to-write upgrade in WAL.

    Rolls back and raises StoreError naming the file on any sqlite3 error.
    """
    conn = db.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(describe_error(database_path(db), exc, doing)) from None
    try:
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise StoreError(describe_error(database_path(db), exc, doing)) from None
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
