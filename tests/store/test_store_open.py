"""Opening the store: pragmas, migrations recorded once, refusal of newer or foreign files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from opsconsole.errors import StoreError
from opsconsole.store import open_store
from opsconsole.store.migrations import MIGRATIONS


def test_fresh_store_is_wal_with_foreign_keys_and_all_migrations(store_path: Path):
    db = open_store(store_path)
    try:
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert db.execute("PRAGMA busy_timeout").fetchone() == (5000,)
        names = [r["name"] for r in db.query("SELECT name FROM migrations ORDER BY rowid")]
        assert names == [fn.__name__ for fn in MIGRATIONS]
        assert all(r["applied_ts"] > 0 for r in db["migrations"].rows)
        assert {"sites", "racks", "hosts", "gpu_slots", "gpu_swaps", "gpu_minute", "events"} <= set(
            db.table_names()
        )
    finally:
        db.close()


def test_reopen_applies_nothing_twice(store_path: Path):
    open_store(store_path).close()
    first = (
        sqlite3.connect(store_path).execute("SELECT name, applied_ts FROM migrations").fetchall()
    )
    db = open_store(store_path)
    try:
        again = db.execute("SELECT name, applied_ts FROM migrations").fetchall()
    finally:
        db.close()
    assert again == first


def test_connection_can_move_to_a_worker_thread(store_path: Path):
    import threading

    db = open_store(store_path)
    result = []
    thread = threading.Thread(target=lambda: result.append(db.execute("SELECT 1").fetchone()))
    thread.start()
    thread.join()
    db.close()
    assert result == [(1,)]


def test_store_written_by_a_newer_opsconsole_is_refused(store_path: Path):
    open_store(store_path).close()
    with sqlite3.connect(store_path) as conn:
        conn.execute("INSERT INTO migrations VALUES ('m0099_from_the_future', 0)")
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(store_path)
    message = str(info.value)
    assert "written by a newer opsconsole" in message
    assert str(store_path) in message
    assert "m0099_from_the_future" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "content",
    [b"this is a config file, not a database\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4080],
    ids=["text-file", "corrupt-header"],
)
def test_non_sqlite_or_corrupt_file_is_one_line_naming_the_path(store_path: Path, content):
    store_path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        open_store(store_path)
    message = str(info.value)
    assert str(store_path) in message
    assert "\n" not in message
    assert "not an SQLite database" in message or "corrupt" in message


def test_damaged_schema_page_is_one_line_naming_the_path(store_path: Path):
    open_store(store_path).close()
    data = bytearray(store_path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # page 1 after the header: sqlite_schema
    store_path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        open_store(store_path)
    message = str(info.value)
    assert str(store_path) in message and "\n" not in message
    assert "corrupt" in message


def test_missing_directory_is_one_line_naming_the_path(tmp_path: Path):
    path = tmp_path / "no" / "such" / "dir" / "ops.db"
    with pytest.raises(StoreError, match="cannot open the file") as info:
        open_store(path)
    assert str(path) in str(info.value)


def test_store_locked_during_migration_is_reported(store_path: Path):
    holder = sqlite3.connect(store_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked") as info:
            open_store(store_path, busy_timeout_s=0.1)
        assert str(store_path) in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
