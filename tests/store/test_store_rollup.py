"""Minute rollups: exact aggregates, clock-event shares, minutes written in pieces."""

from __future__ import annotations

import math

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole.store import TelemetryIngest, open_store
from opsconsole.store.queries import gpu_rollups
from opsconsole.store.rollup import (
    HW_POWER_BRAKE,
    HW_SLOWDOWN,
    HW_THERMAL,
    SW_POWER_CAP,
    SW_THERMAL,
    SYNC_BOOST,
    is_power_capped,
    is_thermal_slowdown,
)
from tests.store.messages import HOST, T0, gpu, sample
from tests.support.profiles import examples


def rows(db: sqlite_utils.Database, gpu_index: int = 0) -> list[dict]:
    return gpu_rollups(db, HOST, gpu_index, 0, 2**40)


def test_known_sequence_gives_exact_min_avg_max(db, ingest: TelemetryIngest):
    readings = [
        dict(util_gpu_pct=10.0, temp_c=40.0, power_w=300.0, mem_used_mib=1000.0),
        dict(util_gpu_pct=90.0, temp_c=60.0, power_w=700.0, mem_used_mib=3000.0),
        dict(util_gpu_pct=50.0, temp_c=50.0, power_w=None, mem_used_mib=2000.0),
        dict(util_gpu_pct=None, temp_c=None, power_w=500.0, mem_used_mib=None),
    ]
    for i, values in enumerate(readings):
        ingest.add_sample(HOST, sample(T0 + 2 * i, gpu(0, **values)))
    assert rows(db) == []  # nothing written per sample
    assert ingest.flush(now_ts=T0 + 30) == 0  # minute not over yet
    assert ingest.flush(now_ts=T0 + 60 + ingest.late_grace_s) == 1
    [row] = rows(db)
    assert row["minute_ts"] == T0
    assert row["n"] == 4
    assert (row["util_pct_min"], row["util_pct_avg"], row["util_pct_max"]) == (10.0, 50.0, 90.0)
    assert (row["temp_c_min"], row["temp_c_avg"], row["temp_c_max"]) == (40.0, 50.0, 60.0)
    assert (row["power_w_min"], row["power_w_avg"], row["power_w_max"]) == (300.0, 500.0, 700.0)
    assert (row["mem_used_mib_avg"], row["mem_used_mib_max"]) == (2000.0, 3000.0)
    assert (row["util_pct_n"], row["power_w_n"], row["mem_used_mib_n"]) == (3, 3, 3)
    assert row["clock_event_n"] == 0
    assert row["clock_event_share_power"] is None and row["clock_event_share_thermal"] is None


def test_samples_split_into_minutes_by_their_own_timestamp(db, ingest: TelemetryIngest):
    for ts, util in [(T0 + 58, 10.0), (T0 + 60, 20.0), (T0 + 119.9, 30.0), (T0 + 120, 40.0)]:
        ingest.add_sample(HOST, sample(ts, gpu(0, util_gpu_pct=util)))
    ingest.flush(now_ts=T0 + 500)
    got = [(r["minute_ts"], r["n"], r["util_pct_avg"]) for r in rows(db)]
    assert got == [(T0, 1, 10.0), (T0 + 60, 2, 25.0), (T0 + 120, 1, 40.0)]


def test_clock_event_shares(db, ingest: TelemetryIngest):
    reasons = [
        0,
        SW_POWER_CAP,  # power
        HW_POWER_BRAKE | HW_SLOWDOWN,  # power
        HW_SLOWDOWN,  # power: HW slowdown without the thermal bit
        SW_THERMAL,  # thermal
        HW_THERMAL | HW_SLOWDOWN,  # thermal only
        SYNC_BOOST,  # neither
        SW_POWER_CAP | SW_THERMAL,  # both
        None,  # unknown: not counted in the denominator
    ]
    for i, r in enumerate(reasons):
        ingest.add_sample(HOST, sample(T0 + i, gpu(0, clock_event_reasons=r)))
    ingest.flush(force=True)
    [row] = rows(db)
    assert row["n"] == 9
    assert row["clock_event_n"] == 8
    assert row["clock_event_share_power"] == pytest.approx(4 / 8)
    assert row["clock_event_share_thermal"] == pytest.approx(3 / 8)


def test_a_minute_written_in_two_pieces_merges_exactly(db, ingest: TelemetryIngest):
    """A console restarted mid-minute (or a host clock running behind) writes one minute twice."""
    ingest.add_sample(HOST, sample(T0 + 1, gpu(0, util_gpu_pct=10.0, power_w=100.0)))
    ingest.add_sample(HOST, sample(T0 + 2, gpu(0, util_gpu_pct=20.0, clock_event_reasons=4)))
    ingest.flush(force=True)
    second = TelemetryIngest(db)
    second.add_sample(HOST, sample(T0 + 3, gpu(0, util_gpu_pct=60.0, power_w=300.0)))
    second.add_sample(HOST, sample(T0 + 4, gpu(0, temp_c=70.0, clock_event_reasons=0)))
    second.flush(force=True)
    [row] = rows(db)
    assert row["n"] == 4
    assert (row["util_pct_min"], row["util_pct_avg"], row["util_pct_max"]) == (10.0, 30.0, 60.0)
    assert (row["power_w_min"], row["power_w_avg"], row["power_w_max"]) == (100.0, 200.0, 300.0)
    assert (row["temp_c_n"], row["temp_c_min"], row["temp_c_avg"]) == (1, 70.0, 70.0)
    assert row["clock_event_share_power"] == 0.5


def test_silent_host_has_its_last_minute_closed_and_last_seen_updated(db, ingest):
    ingest.add_sample(HOST, sample(T0 + 5, gpu(0, util_gpu_pct=1.0), gpu(1, util_gpu_pct=2.0)))
    assert ingest.pending_rows == 2
    assert ingest.flush(now_ts=T0 + 600) == 2
    assert ingest.pending_rows == 0
    host = db["hosts"].get(HOST)
    assert host["first_seen_ts"] == host["last_seen_ts"] == T0 + 5


reading = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
reasons = st.one_of(st.none(), st.integers(min_value=0, max_value=0xFFFF))
gpu_reading = st.fixed_dictionaries(
    {
        "util_gpu_pct": reading,
        "temp_c": reading,
        "power_w": reading,
        "mem_used_mib": reading,
        "clock_event_reasons": reasons,
    }
)


def naive(values: list[float | None]) -> tuple:
    present = [v for v in values if v is not None]
    if not present:
        return (0, None, None, None)
    return (len(present), min(present), math.fsum(present) / len(present), max(present))


def share(values: list[int | None], rule) -> float | None:
    known = [v for v in values if v is not None]
    return sum(map(rule, known)) / len(known) if known else None


@settings(max_examples=examples(60), deadline=None)
@given(readings=st.lists(gpu_reading, min_size=1, max_size=40), split=st.integers(0, 40))
def test_rollup_equals_naive_aggregates(readings, split):
    """Whatever the readings, and wherever the minute is cut into two flushed pieces."""
    db = open_store(":memory:")
    try:
        first, second = TelemetryIngest(db), TelemetryIngest(db)
        for i, values in enumerate(readings):
            target = first if i < split else second
            target.add_sample(HOST, sample(T0 + i, gpu(3, **values)))
        first.flush(force=True)
        second.flush(force=True)
        [row] = rows(db, 3)
    finally:
        db.close()

    def column(name):
        return [r[name] for r in readings]

    assert row["n"] == len(readings)
    for metric, field in [
        ("util_pct", "util_gpu_pct"),
        ("temp_c", "temp_c"),
        ("power_w", "power_w"),
    ]:
        expected = naive(column(field))
        got = tuple(row[f"{metric}_{s}"] for s in ("n", "min", "avg", "max"))
        assert got[0] == expected[0] and got[1] == expected[1] and got[3] == expected[3]
        assert got[2] == pytest.approx(expected[2], rel=1e-9, abs=1e-9)
    mem = naive(column("mem_used_mib"))
    assert row["mem_used_mib_max"] == mem[3]
    assert row["mem_used_mib_avg"] == pytest.approx(mem[2], rel=1e-9, abs=1e-9)
    clocks = column("clock_event_reasons")
    assert row["clock_event_share_power"] == pytest.approx(share(clocks, is_power_capped))
    assert row["clock_event_share_thermal"] == pytest.approx(share(clocks, is_thermal_slowdown))


def test_absurd_time_or_index_from_a_broken_agent_cannot_block_flushes(db, ingest):
    ingest.add_sample(HOST, sample(1e30, gpu(0, util_gpu_pct=1.0)))
    ingest.add_sample(HOST, sample(T0, gpu(2**70, util_gpu_pct=1.0), gpu(1, util_gpu_pct=5.0)))
    assert ingest.flush(force=True) == 1
    assert ingest.rejected_rows == 2
    assert rows(db, 1)[0]["util_pct_avg"] == 5.0
