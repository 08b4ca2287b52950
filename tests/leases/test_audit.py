"""The audit log is append-only (triggers) and hash-chained: a row edited or removed by
someone who dropped the triggers is named by `verify_audit`, as is a row re-hashed to
hide an edit, or the newest rows cut off."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from opsconsole.leases import LeaseRequest, allocate_lease, operator_name, verify_audit
from opsconsole.leases.audit import row_hash
from opsconsole.store import open_store
from tests.leases.fleet import DAY, NOW
from tests.support.leases import OPERATOR

pytestmark = pytest.mark.usefixtures("tenants")


@pytest.fixture
def logged(db, fleet):
    """tenants (rows 1-2) and five leases (rows 3-7)."""
    for i in range(5):
        request = LeaseRequest("globex", NOW, NOW + DAY, gpus=i + 1)
        allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)
    assert verify_audit(db).ok
    return db


def raw(store_path: Path) -> sqlite3.Connection:
    """What a tamperer would use: a plain connection, triggers dropped."""
    conn = sqlite3.connect(store_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return conn


def test_triggers_refuse_update_and_delete(logged):
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        logged.conn.execute("UPDATE audit_log SET operator = 'mallory' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        logged.conn.execute("DELETE FROM audit_log WHERE id = 3")
    logged.conn.rollback()


def test_an_edited_row_is_named(logged, store_path):
    raw(store_path).execute("UPDATE audit_log SET operator = 'mallory' WHERE id = 4")
    report = verify_audit(open_store(store_path))
    assert (report.ok, report.bad_row_id) == (False, 4)
    assert "row 4 was edited" in report.problem


def test_an_edited_and_rehashed_row_is_named(logged, store_path):
    conn = raw(store_path)
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM audit_log WHERE id = 5").fetchone())
    row["after"] = row["after"].replace('"globex"', '"acme"')
    conn.execute(
        "UPDATE audit_log SET after = ?, hash = ? WHERE id = 5",
        (row["after"], row_hash(row["prev_hash"], row)),
    )
    report = verify_audit(open_store(store_path))
    assert (report.ok, report.bad_row_id) == (False, 5)
    assert "row 5 was rewritten" in report.problem


def test_a_removed_row_is_named(logged, store_path):
    raw(store_path).execute("DELETE FROM audit_log WHERE id = 3")
    report = verify_audit(open_store(store_path))
    assert (report.ok, report.bad_row_id) == (False, 3)
    assert "row 3 was removed" in report.problem


def test_removing_the_newest_rows_is_noticed(logged, store_path):
    raw(store_path).execute("DELETE FROM audit_log WHERE id >= 6")
    report = verify_audit(open_store(store_path))
    assert (report.ok, report.bad_row_id) == (False, 6)


def test_a_row_appended_after_removal_keeps_the_gap_visible(logged, store_path, fleet):
    raw(store_path).execute("DELETE FROM audit_log WHERE id = 7")
    db = open_store(store_path)
    request = LeaseRequest("globex", NOW, NOW + DAY, gpus=1)
    allocate_lease(db, fleet, request, operator="x", now_ts=NOW)
    assert verify_audit(db).bad_row_id == 7


def test_a_recorded_head_catches_a_rewritten_chain(logged, store_path):
    head = verify_audit(logged)
    assert verify_audit(logged, expect_head=(head.head_id, head.head_hash)).ok
    report = verify_audit(logged, expect_head=(head.head_id, "0" * 64))
    assert (report.ok, report.bad_row_id) == (False, head.head_id)


def test_operator_comes_from_the_config_else_the_login(fleet):
    assert operator_name(None)  # the login name, whatever it is here
    fleet.config.operator = "noc-sg1"
    assert operator_name(fleet.config) == "noc-sg1"
