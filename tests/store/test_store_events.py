"""Events: XID replays stored once, console events, time-range queries."""

from __future__ import annotations

import pytest

from opsconsole.store import TelemetryIngest
from opsconsole.store.queries import recent_events
from tests.store.messages import HOST, T0, xid


def test_replayed_kernel_log_xid_is_stored_once(db, ingest: TelemetryIngest):
    events = [xid(T0 + 1.25, 79), xid(T0 + 5, 48, bus="0000:18:00")]
    assert ingest.record_events(HOST, events) == events
    # The agent reconnects and reads the kernel log back to boot: same events again,
    # with the source time reconstructed a few milliseconds off.
    replay = [xid(T0 + 1.251, 79), xid(T0 + 5.002, 48, bus="0000:18:00"), xid(T0 + 9, 94)]
    assert ingest.record_events(HOST, replay) == [replay[2]]
    stored = recent_events(db, since_ts=0)
    assert [(e["code"], e["ts"]) for e in stored] == [(94, T0 + 9), (48, T0 + 5), (79, T0 + 1.25)]
    assert stored[2]["kind"] == "xid" and stored[2]["source"] == "kmsg"
    assert "Xid" in stored[2]["message"]


def test_same_xid_on_another_host_or_gpu_is_a_different_event(db, ingest: TelemetryIngest):
    ingest.record_events(HOST, [xid(T0, 79)])
    assert ingest.record_events("sg1-r01-n02", [xid(T0, 79)])
    assert ingest.record_events(HOST, [xid(T0, 79, bus="0000:18:00")])
    assert len(recent_events(db, 0)) == 3


def test_host_events_and_filters(db, ingest: TelemetryIngest):
    assert ingest.record_host_event(HOST, "host_down", "no sample for 30 s", T0 + 10)
    assert not ingest.record_host_event(HOST, "host_down", "no sample for 30 s", T0 + 10)
    assert ingest.record_host_event(HOST, "host_up", "connected", T0 + 70)
    assert ingest.record_host_event("sg1-r01-n02", "gpu_lost", "GPU 3 lost", T0 + 80, gpu_index=3)
    ingest.record_events(HOST, [xid(T0 + 20)])

    assert [e["kind"] for e in recent_events(db, 0, host=HOST)] == ["host_up", "xid", "host_down"]
    assert [e["kind"] for e in recent_events(db, T0 + 15, kinds=["host_up", "gpu_lost"])] == [
        "gpu_lost",
        "host_up",
    ]
    assert len(recent_events(db, 0, limit=2)) == 2
    lost = recent_events(db, 0, kinds=["gpu_lost"])[0]
    assert (lost["host"], lost["gpu_index"], lost["source"]) == ("sg1-r01-n02", 3, "console")


def test_unknown_host_event_kind_is_a_programming_error(ingest: TelemetryIngest):
    with pytest.raises(ValueError, match="unknown host event kind"):
        ingest.record_host_event(HOST, "host_exploded", "", T0)


def test_time_range_queries_use_indexes(db):
    plan = " ".join(
        str(r)
        for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE ts >= 1 ORDER BY ts")
    )
    assert "events_ts" in plan
    plan = " ".join(
        str(r)
        for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM gpu_minute WHERE minute_ts < 5")
    )
    assert "gpu_minute_minute_ts" in plan


def test_two_links_down_in_the_same_poll_are_two_events(db, ingest: TelemetryIngest):
    assert ingest.record_host_event(HOST, "link_down", "IB mlx5_0/1 DOWN (Polling)", T0)
    assert ingest.record_host_event(HOST, "link_down", "IB mlx5_1/1 DOWN (Polling)", T0)
    assert len(recent_events(db, 0, kinds=["link_down"])) == 2
