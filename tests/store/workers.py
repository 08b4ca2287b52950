"""Code run in separate processes by the concurrency tests (spawned, so importable)."""

from __future__ import annotations

import sqlite3
from multiprocessing.synchronize import Event

from opsconsole.store import TelemetryIngest, open_store
from tests.store.messages import T0, busy_sample, xid


def hold_write_lock(path: str, locked: Event, release: Event) -> None:
    """Take the write lock like another writer would and sit on it until told."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO sites (name) VALUES ('held-by-other-process')")
    locked.set()
    release.wait(60)
    conn.execute("COMMIT")
    conn.close()


def ingest_hosts(path: str, hosts: list[str], minutes: int, start: Event) -> None:
    """Open the store (racing the other process through migrations) and ingest a few
    minutes of samples and events, flushing often. Any exception fails the exit code."""
    start.wait(60)
    db = open_store(path)
    ingest = TelemetryIngest(db)
    for seq in range(minutes * 30):
        ts = T0 + 2 * seq
        for host in hosts:
            ingest.add_sample(host, busy_sample(ts, seq=seq))
        if seq % 10 == 0:
            # The same XID of one host, reported by both processes: stored once.
            ingest.record_events("shared-host", [xid(T0 + seq, 13)])
            for host in hosts:
                ingest.record_host_event(host, "host_up", "connected", ts)
        if seq % 15 == 0:
            ingest.flush(now_ts=ts)
    ingest.flush(force=True)
    db.close()
