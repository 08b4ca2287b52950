"""The audit log: every change to tenants, leases and drains, with who, when, before and
after, written in the same transaction as the change itself.

Append-only twice over: triggers refuse UPDATE and DELETE, and each row's hash is
sha256(previous hash + canonical row), so a row edited or removed by someone who dropped
the triggers breaks the chain at that row. `audit_head` (same transaction) remembers the
last id and hash, so removing the newest rows is caught too. A writer who recomputes the
whole chain and the head cannot be caught from inside the file; `verify_audit` returns
the head hash so it can be recorded elsewhere and checked later with `expect_head`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from opsconsole.config import Config
from opsconsole.errors import LeaseError

GENESIS_HASH = "0" * 64


def operator_name(config: Config | None = None) -> str:
    """Who this console acts as: `operator` from the config, else the login name."""
    if config is not None and config.operator:
        return config.operator
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def canonical_json(value: object) -> str | None:
    """Sorted keys, no spaces: the same record always gives the same text (and hash)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chain link: sha256 of the previous hash and this row's canonical form."""
    body = canonical_json(
        {
            "id": row["id"],
            "ts": float(row["ts"]),
            "operator": row["operator"],
            "action": row["action"],
            "subject": row["subject"],
            "before": row["before"],
            "after": row["after"],
        }
    )
    return hashlib.sha256((prev_hash + str(body)).encode()).hexdigest()


def append_audit(
    conn: sqlite3.Connection,
    *,
    ts: float,
    operator: str,
    action: str,
    subject: str,
    before: object = None,
    after: object = None,
) -> int:
    """Append one row; call inside the write transaction of the change it records.

    The previous hash comes from `audit_head`, not from the last row: if rows were removed,
    the next row still chains to what was there and the gap stays visible.
    """
    head_id, prev_hash = conn.execute("SELECT id, hash FROM audit_head WHERE one = 1").fetchone()
    row = {
        "id": head_id + 1,
        "ts": float(ts),
        "operator": operator,
        "action": action,
        "subject": subject,
        "before": canonical_json(before),
        "after": canonical_json(after),
    }
    digest = row_hash(prev_hash, row)
    conn.execute(
        "INSERT INTO audit_log (id, ts, operator, action, subject, before, after, prev_hash,"
        " hash) VALUES (:id, :ts, :operator, :action, :subject, :before, :after, :prev, :hash)",
        {**row, "prev": prev_hash, "hash": digest},
    )
    conn.execute("UPDATE audit_head SET id = ?, hash = ? WHERE one = 1", (row["id"], digest))
    return int(row["id"])


@dataclass(frozen=True, slots=True)
class AuditReport:
    ok: bool
    rows: int
    head_id: int
    head_hash: str
    bad_row_id: int | None = None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "bad_row_id": self.bad_row_id,
            "problem": self.problem,
        }


def verify_audit(
    db: sqlite_utils.Database, expect_head: tuple[int, str] | None = None
) -> AuditReport:
    """Walk the chain from the first row; report the first row that was edited, removed
    or re-hashed. `expect_head` (id, hash), recorded earlier outside this file, also
    catches a chain rewritten from that row on."""
    conn = db.conn
    head_id, head_hash = conn.execute("SELECT id, hash FROM audit_head WHERE one = 1").fetchone()
    cursor = conn.execute(
        "SELECT id, ts, operator, action, subject, before, after, prev_hash, hash"
        " FROM audit_log ORDER BY id"
    )
    names = [d[0] for d in cursor.description]
    prev_hash, expected_id, count = GENESIS_HASH, 1, 0
    seen: dict[int, str] = {}

    def bad(row_id: int, problem: str) -> AuditReport:
        return AuditReport(False, count, head_id, head_hash, row_id, problem)

    for values in cursor:
        row = dict(zip(names, values, strict=True))
        if row["id"] != expected_id:
            return bad(expected_id, f"audit row {expected_id} was removed")
        if row_hash(row["prev_hash"], row) != row["hash"]:
            return bad(row["id"], f"audit row {row['id']} was edited (its hash does not match)")
        if row["prev_hash"] != prev_hash:
            return bad(
                row["id"] - 1, f"audit row {row['id'] - 1} was rewritten (the chain breaks there)"
            )
        prev_hash, expected_id, count = row["hash"], expected_id + 1, count + 1
        if expect_head is not None and row["id"] == expect_head[0]:
            seen[row["id"]] = row["hash"]
    last_id = expected_id - 1
    if head_id > last_id:
        return bad(last_id + 1, f"audit row {last_id + 1} was removed (the log ends early)")
    if head_id != last_id or head_hash != prev_hash:
        return bad(last_id, f"audit row {last_id} does not match the recorded head")
    if expect_head is not None:
        anchor_id, anchor_hash = expect_head
        if seen.get(anchor_id) != anchor_hash:
            return bad(anchor_id, f"audit row {anchor_id} does not match the recorded anchor")
    return AuditReport(True, count, head_id, head_hash)


def audit_entries(
    db: sqlite_utils.Database, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first; `subject` such as "lease:12", "tenant:acme" or "drain:3"."""
    where, params = ("WHERE subject = ?", [subject]) if subject else ("", [])
    rows = db.conn.execute(
        "SELECT id, ts, operator, action, subject, before, after, hash FROM audit_log"
        f" {where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in rows.description]
    out = []
    for values in rows:
        entry = dict(zip(names, values, strict=True))
        entry["before"] = json.loads(entry["before"]) if entry["before"] else None
        entry["after"] = json.loads(entry["after"]) if entry["after"] else None
        out.append(entry)
    return out


def parse_head(text: str) -> tuple[int, str]:
    """ "ID:HASH" as printed by `audit verify`."""
    row_id, _, digest = text.partition(":")
    if not row_id.isdigit() or len(digest) != 64:
        raise LeaseError(f'"{text}" is not an audit head: expected ID:HASH from audit verify')
    return int(row_id), digest.lower()
