"""A process killed (SIGKILL, by PID) in the middle of allocating leaves each lease whole
or absent: the file passes integrity_check, every lease has all its slots and its audit
row, and the audit chain verifies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from opsconsole.leases import create_tenant, verify_audit
from opsconsole.store import open_store
from tests.leases import workers
from tests.leases.fleet import NOW
from tests.support.leases import OPERATOR, overlapping_bookings

spawn = multiprocessing.get_context("spawn")


@pytest.mark.slow
@pytest.mark.parametrize("extra_wait_s", [0.0, 0.013, 0.057])
def test_kill_9_mid_allocation_leaves_whole_leases_or_none(tmp_path: Path, extra_wait_s: float):
    path = tmp_path / "opsconsole.db"
    db = open_store(path)
    for name in workers.TENANTS:
        create_tenant(db, name, gpu_quota=10_000, operator=OPERATOR, now_ts=NOW)
    ready = spawn.Event()
    child = spawn.Process(target=workers.allocate_forever, args=(str(path), ready))
    child.start()
    try:
        assert ready.wait(60), "the child never committed 20 leases"
        time.sleep(extra_wait_s)  # vary where in its loop the kill lands
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    db.close()
    db = open_store(path)  # recovery from the WAL happens here
    conn = db.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    leases = conn.execute("SELECT count(*) FROM leases").fetchone()[0]
    assert leases >= 20
    incomplete = conn.execute(
        "SELECT count(*) FROM leases l WHERE gpu_count !="
        " (SELECT count(*) FROM lease_slots s WHERE s.lease_id = l.id)"
    ).fetchone()[0]
    assert incomplete == 0
    orphans = conn.execute(
        "SELECT count(*) FROM lease_slots WHERE lease_id NOT IN (SELECT id FROM leases)"
    ).fetchone()[0]
    assert orphans == 0
    audited = conn.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'lease.allocate'"
    ).fetchone()[0]
    assert audited == leases
    assert overlapping_bookings(db) == 0
    report = verify_audit(db)
    assert report.ok, report.problem
    db.close()


@pytest.mark.slow
def test_kill_9_inside_the_transaction_leaves_no_trace_of_that_lease(tmp_path: Path):
    path = tmp_path / "opsconsole.db"
    db = open_store(path)
    create_tenant(db, "globex", gpu_quota=10_000, operator=OPERATOR, now_ts=NOW)
    inside = spawn.Event()
    child = spawn.Process(
        target=workers.allocate_then_hang_before_commit, args=(str(path), inside, 5)
    )
    child.start()
    try:
        assert inside.wait(60), "the child never reached the end of its transaction"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL
    db.close()

    db = open_store(path)
    conn = db.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*), sum(gpu_count) FROM leases").fetchone() == (5, 80)
    assert conn.execute("SELECT count(*) FROM lease_slots").fetchone()[0] == 80
    assert conn.execute("SELECT max(id) FROM audit_log").fetchone()[0] == 6  # tenant + 5
    assert verify_audit(db).ok
    db.close()
