"""Lease fixtures: a real SQLite file per test, the test fleet, two tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.leases import create_tenant
from tests.leases.fleet import NOW, make_fleet

OPERATOR = "test-operator"


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return make_fleet(tmp_path / "opsconsole.toml")


@pytest.fixture
def tenants(db: sqlite_utils.Database) -> None:
    """acme: SG1 only, 64 GPUs; globex: anywhere, 1,000 GPUs."""
    create_tenant(db, "acme", gpu_quota=64, allowed_sites=["SG1"], operator=OPERATOR, now_ts=NOW)
    create_tenant(db, "globex", gpu_quota=1000, operator=OPERATOR, now_ts=NOW)


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
