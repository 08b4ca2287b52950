"""Real processes allocating at once on one database file never double-book: 4 processes
× 500 allocations (plus extensions) over a small fleet, so most requests collide."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from pathlib import Path

import pytest

from opsconsole.leases import create_tenant, verify_audit
from opsconsole.leases.booking import tenant_peak_gpus
from opsconsole.store import open_store
from tests.leases import workers
from tests.leases.fleet import NOW
from tests.support.leases import OPERATOR, overlapping_bookings

spawn = multiprocessing.get_context("spawn")
PROCESSES = 4
ATTEMPTS = 500
QUOTAS = {"acme": 48, "globex": 120, "initech": 32}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_four_processes_allocating_at_once_never_double_book(tmp_path: Path):
    path = tmp_path / "opsconsole.db"
    db = open_store(path)
    for name, quota in QUOTAS.items():
        create_tenant(db, name, gpu_quota=quota, operator=OPERATOR, now_ts=NOW)
    start = spawn.Event()
    outs = [tmp_path / f"tally-{i}.json" for i in range(PROCESSES)]
    procs = [
        spawn.Process(
            target=workers.allocate_storm, args=(str(path), seed, ATTEMPTS, start, str(out))
        )
        for seed, out in enumerate(outs)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(240)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES

    tallies = [json.loads(out.read_text()) for out in outs]
    assert [t["store_errors"] for t in tallies] == [[]] * PROCESSES
    assert all(t["allocated"] + t["refused"] == ATTEMPTS for t in tallies)
    allocated = sum(t["allocated"] for t in tallies)
    assert allocated > 100  # the storm really booked, and really collided:
    assert sum(t["refused"] for t in tallies) > 100

    conn = db.conn
    rows = conn.execute(
        "SELECT operator FROM audit_log WHERE action = 'lease.allocate' ORDER BY id"
    )
    owners = [op for (op,) in rows]
    # The processes really interleaved (each process writes as its own operator).
    assert sum(a != b for a, b in itertools.pairwise(owners)) > 20

    assert overlapping_bookings(db) == 0
    assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == allocated
    short = conn.execute(
        "SELECT count(*) FROM leases l WHERE gpu_count !="
        " (SELECT count(*) FROM lease_slots s WHERE s.lease_id = l.id)"
    ).fetchone()[0]
    assert short == 0
    for name, quota in QUOTAS.items():
        assert tenant_peak_gpus(conn, name, NOW, NOW + 30 * 86_400) <= quota
    extended = sum(t["extended"] for t in tallies)
    audit_rows = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert audit_rows == len(QUOTAS) + allocated + extended
    assert verify_audit(db).ok
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
