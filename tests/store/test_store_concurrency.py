"""Real processes on one file: a flush blocked by another writer loses nothing, and two
ingesting processes coexist in WAL without "database is locked" failures."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from opsconsole.errors import StoreError
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.store.queries import gpu_rollups
from tests.store import workers
from tests.store.messages import HOST, T0, busy_sample, gpu, sample, xid

spawn = multiprocessing.get_context("spawn")


@pytest.mark.slow
def test_flush_blocked_by_another_process_keeps_pending_and_loses_nothing(store_path: Path):
    db = open_store(store_path, busy_timeout_s=0.2)
    ingest = TelemetryIngest(db)
    ingest.add_sample(HOST, sample(T0, gpu(0, util_gpu_pct=10.0)))
    ingest.flush(force=True)  # a row already stored before the failure
    ingest.add_sample(HOST, sample(T0 + 60, gpu(0, util_gpu_pct=20.0), gpu(1, util_gpu_pct=30.0)))
    ingest.add_sample(HOST, sample(T0 + 62, gpu(0, util_gpu_pct=40.0)))

    locked, release = spawn.Event(), spawn.Event()
    holder = spawn.Process(target=workers.hold_write_lock, args=(str(store_path), locked, release))
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(StoreError) as info:
            ingest.flush(now_ts=T0 + 600)
        message = str(info.value)
        assert "locked" in message and str(store_path) in message and "\n" not in message
        assert ingest.pending_rows == 2
        with pytest.raises(StoreError):  # events too are kept for the next flush
            ingest.record_events(HOST, [xid(T0 + 61)])
        assert ingest.pending_events == 1
        # Readers are not blocked by the writer in WAL, and see the earlier row.
        assert [r["minute_ts"] for r in gpu_rollups(db, HOST, 0, 0, 2**40)] == [T0]
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0

    assert ingest.flush(now_ts=T0 + 600) == 2
    assert ingest.pending_rows == 0 and ingest.pending_events == 0
    gpu0 = gpu_rollups(db, HOST, 0, 0, 2**40)
    assert [(r["minute_ts"], r["n"], r["util_pct_avg"]) for r in gpu0] == [
        (T0, 1, 10.0),
        (T0 + 60, 2, 30.0),
    ]
    assert gpu_rollups(db, HOST, 1, 0, 2**40)[0]["util_pct_max"] == 30.0
    assert db["events"].count == 1
    assert db["sites"].get("held-by-other-process")  # the other writer's row survived too
    db.close()


@pytest.mark.slow
def test_pending_rows_are_bounded_while_the_store_stays_locked(store_path: Path):
    db = open_store(store_path, busy_timeout_s=0.05)
    ingest = TelemetryIngest(db, max_pending_rows=3)
    for minute in range(5):
        ingest.add_sample(HOST, sample(T0 + 60 * minute, gpu(0, util_gpu_pct=float(minute))))
    locked, release = spawn.Event(), spawn.Event()
    holder = spawn.Process(target=workers.hold_write_lock, args=(str(store_path), locked, release))
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(StoreError, match="2 oldest minute rows dropped"):
            ingest.flush(force=True)
    finally:
        release.set()
        holder.join(30)
    assert ingest.dropped_rows == 2
    ingest.flush(force=True)
    kept = [r["util_pct_avg"] for r in gpu_rollups(db, HOST, 0, 0, 2**40)]
    assert kept == [2.0, 3.0, 4.0]
    db.close()


@pytest.mark.slow
def test_two_processes_ingest_into_one_file_without_lock_errors(store_path: Path):
    start = spawn.Event()
    hosts_a = [f"a-{i:03d}" for i in range(20)]
    hosts_b = [f"b-{i:03d}" for i in range(20)]
    minutes = 3
    procs = [
        spawn.Process(target=workers.ingest_hosts, args=(str(store_path), hosts, minutes, start))
        for hosts in (hosts_a, hosts_b)
    ]
    for proc in procs:
        proc.start()
    start.set()  # both open the fresh file, and migrate it, at once
    for proc in procs:
        proc.join(90)
    assert [proc.exitcode for proc in procs] == [0, 0]

    db = open_store(store_path)
    try:
        assert db["gpu_minute"].count == 40 * 8 * minutes
        per_row = {r["n"] for r in db.query("SELECT n FROM gpu_minute")}
        assert per_row == {30}
        expected = busy_sample(T0)  # spot-check one aggregate against the generator
        row = gpu_rollups(db, "b-007", 5, T0, T0 + 60)[0]
        assert row["mem_used_mib_max"] == expected.gpus[5].mem_used_mib
        events = db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall()
        # XID 13 at 9 distinct times, reported by both processes, stored once each;
        # host_up 9 times per host.
        assert dict(events) == {"xid": 9, "host_up": 40 * 9}
        names = [r["name"] for r in db.query("SELECT name FROM migrations")]
        assert len(names) == len(set(names))
    finally:
        db.close()
