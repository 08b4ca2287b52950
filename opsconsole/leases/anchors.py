"""Anchors of the audit chain's head kept outside the store file.

`audit_head` lives in the same file as the rows, so someone who deletes the newest rows
and rewinds the head to match leaves a chain that checks out from inside. Each anchor is
one JSON line `{"id", "hash", "ts"}` appended to a file beside the store (and can be
copied anywhere else: a ticket, another machine); `check_anchors` then says which anchored
row is gone or changed. Anchors are written by `audit verify`, `audit anchor`,
`audit export` and `report tenant`, so the head each of them saw can always be
re-checked. Rows written after the newest anchor are covered only once the next anchor
is written: run `opsconsole audit anchor` from cron to bound that stretch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from opsconsole.errors import LeaseError


def anchor_path(store_path: Path) -> Path:
    """Where the anchors of a store live by default: `<store>.anchors` beside it."""
    return store_path.with_name(store_path.name + ".anchors")


def record_anchor(path: Path, head_id: int, head_hash: str, ts: float) -> None:
    """Append one anchor (flushed and fsynced: an anchor that can vanish proves nothing).
    The genesis head (id 0) is not worth anchoring."""
    if head_id <= 0:
        return
    line = json.dumps({"id": head_id, "hash": head_hash, "ts": ts}, sort_keys=True) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise LeaseError(f"audit anchors {path}: cannot write: {exc.strerror}") from exc


def read_anchors(path: Path) -> Iterator[dict[str, Any]]:
    """Anchors in the order written; a line that is not an anchor is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LeaseError(f"audit anchors {path}: cannot read: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            anchor = json.loads(line)
            int(anchor["id"]), str(anchor["hash"]), float(anchor["ts"])
        except (ValueError, KeyError, TypeError):
            raise LeaseError(f"audit anchors {path}, line {number}: not an anchor") from None
        yield anchor


def check_anchors(db: sqlite_utils.Database, path: Path) -> str | None:
    """The first anchor the store no longer honours, as one line; None when all hold."""
    head_id = db.conn.execute("SELECT id FROM audit_head WHERE one = 1").fetchone()[0]
    for anchor in read_anchors(path):
        row = db.conn.execute("SELECT hash FROM audit_log WHERE id = ?", (anchor["id"],)).fetchone()
        if row is None or anchor["id"] > head_id:
            return (
                f"audit row {anchor['id']} was removed together with the head: anchor"
                f" {anchor['id']}:{anchor['hash']} (in {path}) was the head once, the store's"
                f" head is now {head_id}"
            )
        if row[0] != anchor["hash"]:
            return (
                f"audit row {anchor['id']} was rewritten: its hash differs from anchor"
                f" {anchor['id']}:{anchor['hash']} (in {path})"
            )
    return None


def try_anchor(path: Path, head_id: int, head_hash: str, ts: float) -> str:
    """`record_anchor` for commands whose own work does not depend on it (a verify run on
    a read-only copy must still verify): returns the reason it failed, "" on success."""
    try:
        record_anchor(path, head_id, head_hash, ts)
    except LeaseError as exc:
        return f"head not anchored: {exc}"
    return ""
