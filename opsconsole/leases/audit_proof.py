"""Proof from the audit chain that can leave the building: the rows of a period with their
hashes, the links from them to a head, and the check a third party runs on them with no
access to the store.

Why links and not whole rows: a hash chain proves row N belongs before head M only
through every row in between. The rows a tenant's report cites are given whole (their hash
is recomputed); the rows in between, which belong to other tenants, are given as
`(id, prev_hash, hash)` only, so the chain can be followed without disclosing them. The
signature over the whole document (see `opsconsole.report.signing`) binds those links to
the site; a head recorded earlier (a previous report, a ticket) binds them to history.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from opsconsole.leases.audit import GENESIS_HASH, row_hash

ROW_FIELDS = ("id", "ts", "operator", "action", "subject", "before", "after", "prev_hash", "hash")


def audit_rows(
    db: sqlite_utils.Database,
    *,
    since_ts: float | None = None,
    until_ts: float | None = None,
    subjects: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Whole rows (before/after as stored canonical text), oldest first, with
    since_ts <= ts < until_ts and, when given, one of `subjects`."""
    where: list[str] = ["1"]
    params: list[float | str] = []
    if since_ts is not None:
        where.append("ts >= ?")
        params.append(since_ts)
    if until_ts is not None:
        where.append("ts < ?")
        params.append(until_ts)
    if subjects is not None:
        wanted = sorted(set(subjects))
        if not wanted:
            return []
        where.append("subject IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(wanted))
    cursor = db.conn.execute(
        f"SELECT {', '.join(ROW_FIELDS)} FROM audit_log WHERE {' AND '.join(where)} ORDER BY id",
        params,
    )
    return [dict(zip(ROW_FIELDS, values, strict=True)) for values in cursor]


def head_at(db: sqlite_utils.Database, until_ts: float) -> tuple[int, str]:
    """(id, hash) of the newest row written before `until_ts`; (0, genesis) if none."""
    row = db.conn.execute(
        "SELECT id, hash FROM audit_log WHERE ts < ? ORDER BY id DESC LIMIT 1", (until_ts,)
    ).fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def current_head(db: sqlite_utils.Database) -> tuple[int, str]:
    """What `audit_head` says: the id and hash of the newest row."""
    head_id, digest = db.conn.execute("SELECT id, hash FROM audit_head WHERE one = 1").fetchone()
    return head_id, digest


def chain_links(db: sqlite_utils.Database, first_id: int, last_id: int) -> list[dict[str, Any]]:
    """`{id, prev_hash, hash}` of rows first_id..last_id, oldest first."""
    cursor = db.conn.execute(
        "SELECT id, prev_hash, hash FROM audit_log WHERE id BETWEEN ? AND ? ORDER BY id",
        (first_id, last_id),
    )
    return [{"id": i, "prev_hash": p, "hash": h} for i, p, h in cursor]


def proof_for(
    db: sqlite_utils.Database, rows: Sequence[dict[str, Any]], head: tuple[int, str]
) -> list[dict[str, Any]]:
    """The links a verifier needs to follow `rows` (whole, oldest first) to `head`: every
    row from the first cited one to the head that is not itself cited."""
    if not rows:
        return []
    cited = {row["id"] for row in rows}
    return [link for link in chain_links(db, rows[0]["id"], head[0]) if link["id"] not in cited]


def check_chain(
    rows: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]], head: dict[str, Any]
) -> str | None:
    """Offline check: each whole row's hash recomputed, then rows and links (merged by id)
    must run without a gap from the first row to `head` (`{id, hash}`), each prev_hash
    the hash before it. Returns the first problem as one line, or None."""
    for row in rows:
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            return f"audit row {row.get('id', '?')} lacks {', '.join(missing)}"
        if row_hash(row["prev_hash"], row) != row["hash"]:
            return f"audit row {row['id']} was edited (its hash does not match its contents)"
    chain = sorted([*rows, *links], key=lambda r: r["id"])
    if not chain:
        return None  # nothing cited, nothing to follow
    for before, after in itertools.pairwise(chain):
        if after["id"] == before["id"]:
            return f"audit row {after['id']} appears twice"
        if after["id"] != before["id"] + 1:
            return f"audit rows {before['id'] + 1}..{after['id'] - 1} are missing from the proof"
        if after["prev_hash"] != before["hash"]:
            return f"audit row {after['id']} does not chain to row {before['id']}"
    last = chain[-1]
    if last["id"] != head.get("id") or last["hash"] != head.get("hash"):
        return (
            f"the chain ends at row {last['id']}:{last['hash'][:12]}…, not at the stated head"
            f" {head.get('id')}:{str(head.get('hash'))[:12]}…"
        )
    return None
