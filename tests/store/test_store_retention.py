"""Retention deletes only what is old, in batches, and keeps inventory history."""

from __future__ import annotations

from opsconsole.store import TelemetryIngest, apply_retention
from tests.store.messages import HOST, T0, gpu, hello, sample, xid

DAY = 86_400


def test_retention_deletes_old_rollups_and_events_in_batches(db, ingest: TelemetryIngest):
    now = T0 + 40 * DAY
    for day in range(40):  # one minute of two GPUs per day, day 0 the oldest
        ingest.add_sample(HOST, sample(T0 + day * DAY, gpu(0, util_gpu_pct=1.0), gpu(1)))
        ingest.record_events(HOST, [xid(T0 + day * DAY)])
    ingest.record_host_event(HOST, "host_down", "gone", T0)
    ingest.record_hello(HOST, hello(T0, ["GPU-a"]))
    ingest.record_hello(HOST, hello(T0 + DAY, ["GPU-b"]))
    ingest.flush(force=True)

    deleted = apply_retention(db, now, rollup_days=30, event_days=35, batch_rows=7)
    assert deleted == {"gpu_minute": 2 * 10, "events": 5 + 1}
    minutes = [r["minute_ts"] for r in db.query("SELECT DISTINCT minute_ts FROM gpu_minute")]
    assert min(minutes) == T0 + 10 * DAY
    assert min(r["ts"] for r in db["events"].rows) == T0 + 5 * DAY
    assert db["gpu_swaps"].count == 1 and db["gpu_slots"].count == 1

    assert apply_retention(db, now, 30, 35) == {"gpu_minute": 0, "events": 0}
