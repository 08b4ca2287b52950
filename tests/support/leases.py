"""Lease test helpers: the operator name tests act as, and counts that show an invariant
held or that a refusal wrote nothing."""

from __future__ import annotations

import sqlite_utils

OPERATOR = "test-operator"


def overlapping_bookings(db: sqlite_utils.Database) -> int:
    """Pairs of bookings of one slot whose windows overlap: must always be 0."""
    return db.conn.execute(
        "SELECT count(*) FROM lease_slots a JOIN lease_slots b ON a.host = b.host"
        " AND a.gpu_index = b.gpu_index AND a.lease_id < b.lease_id"
        " WHERE a.end_ts > a.start_ts AND b.end_ts > b.start_ts"
        " AND a.start_ts < b.end_ts AND b.start_ts < a.end_ts"
    ).fetchone()[0]


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {
        t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("tenants", "leases", "lease_slots", "drains", "audit_log")
    }
