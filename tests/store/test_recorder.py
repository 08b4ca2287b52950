"""The flight recorder: raw samples in a bounded ring, read back as the same samples;
minutes around a critical alert kept after the ring has moved on, until the alert goes."""

from __future__ import annotations

import pytest

from opsconsole.alerts import Condition, apply_conditions, resolve
from opsconsole.alerts.incident_capture import IncidentCapture
from opsconsole.alerts.retention import prune_alerts
from opsconsole.store import TelemetryIngest
from opsconsole.store.recorder import (
    FlightRecorder,
    capture_samples,
    hellos_before,
    ring_samples,
    ring_span,
)
from tests.store.messages import HOST, T0, busy_sample, hello

OTHER = "sg1-r01-n02"


def record(ingest: TelemetryIngest, start_ts: float, seconds: int, hosts=(HOST, OTHER)) -> None:
    for step in range(0, seconds, 2):
        for host in hosts:
            ingest.add_sample(host, busy_sample(start_ts + step, seq=step // 2))
        if step % 60 == 58:
            ingest.flush(start_ts + step)


def test_ring_is_bounded_and_gives_back_the_samples(db):
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=600))  # a 10-minute ring
    ingest.record_hello(HOST, hello(T0, [f"GPU-{i:04d}" for i in range(8)]))
    record(ingest, T0, 1800)  # 30 minutes
    ingest.flush(T0 + 1800, force=True)
    (rows,) = db.conn.execute("SELECT count(*) FROM recorder_ring").fetchone()
    assert rows == 10 * 2  # ten minute slots per host, however long it ran
    low, high = ring_span(db)
    assert (low, high) == (T0 + 1200, T0 + 1800)
    got = ring_samples(db, T0 + 1500, T0 + 1510, hosts=[HOST])
    assert [s.ts for _h, s in got] == [T0 + 1500 + i for i in range(0, 10, 2)]
    assert got[0][1] == busy_sample(T0 + 1500, seq=750)  # the very sample, every field
    assert ring_samples(db, T0, T0 + 600) == []  # overwritten a lap ago
    assert set(hellos_before(db, T0 + 10)) == {HOST}


def test_a_minute_written_in_two_pieces_is_merged(db):
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=3600))
    for step in range(0, 20, 2):
        ingest.add_sample(HOST, busy_sample(T0 + step, seq=step))
    ingest.flush(T0 + 20, force=True)  # a shutdown mid-minute
    for step in range(20, 60, 2):
        ingest.add_sample(HOST, busy_sample(T0 + step, seq=step))
    ingest.flush(T0 + 80)
    assert [s.ts for _h, s in ring_samples(db, T0, T0 + 60)] == [T0 + i for i in range(0, 60, 2)]


@pytest.mark.slow
def test_minutes_around_a_critical_alert_outlive_the_ring(db):
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=1800))
    record(ingest, T0, 1200)
    fired = T0 + 600
    xid = Condition(
        rule="xid_hardware",
        severity="critical",
        kind="event",
        labels={"host": HOST, "event": "1"},
        summary="XID 79",
    )  # type: ignore[arg-type]
    warn = Condition(
        rule="temp", severity="warning", kind="condition", labels={"host": OTHER}, summary="warm"
    )  # type: ignore[arg-type]
    apply_conditions(db, [xid, warn], fired)
    capture = IncidentCapture(margin_s=120, lookback_s=1800)
    assert capture.run(db, fired + 60) == 0  # the margin after the firing has not passed
    capture.every_s = 0
    assert capture.run(db, T0 + 1200) == 5  # minutes 8..12 of the host, whole
    record(ingest, T0 + 1200, 3600)  # the ring laps twice
    ingest.flush(T0 + 4800, force=True)
    assert ring_samples(db, fired - 120, fired + 120) == []
    kept = capture_samples(db, fired - 120, fired + 120)
    assert {h for h, _s in kept} == {HOST}  # the warning's host is not kept
    assert len(kept) == 120 and kept[0][1].ts == fired - 120
    resolve(db, 1, "ana", "RMA", now_ts=T0 + 4800)
    prune_alerts(db, T0 + 4800 + 10, silence_keep_s=0, resolved_keep_s=1)
    capture.run(db, T0 + 4900)
    assert capture_samples(db, fired - 120, fired + 120) == []


def energy_sample(ts: float, power_w: float, start_ts: float, gpus: int = 2):
    """Samples whose NVML energy counter rose at exactly power_w since start_ts."""
    from opsconsole.wire import GpuSample, Sample

    mj = int(power_w * (ts - start_ts) * 1000) + 5_000_000_000  # counts since driver load
    return Sample(seq=0, ts=ts, gpus=[GpuSample(index=i, energy_mj=mj) for i in range(gpus)])


def test_energy_counter_is_kept_per_hour_and_measured_across_hours(db):
    from opsconsole.store.recorder import measured_energy

    start = T0 - T0 % 3600 + 3000  # ten minutes before an hour boundary
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=3600))
    for step in range(0, 1800, 2):  # 30 minutes at 400 W
        ingest.add_sample(HOST, energy_sample(start + step, 400.0, start))
    ingest.flush(start + 1800, force=True)
    (hours,) = db.conn.execute(
        "SELECT count(*) FROM gpu_energy_hour WHERE gpu_index = 0"
    ).fetchone()
    assert hours == 2
    whole = measured_energy(db, HOST, 0, start, start + 1798)
    assert whole["joules"] == pytest.approx(400.0 * 1798, rel=1e-6)
    assert whole["covered_s"] == pytest.approx(1798)
    part = measured_energy(db, HOST, 1, start + 300, start + 900)  # across the boundary
    assert part["joules"] == pytest.approx(400.0 * 600, rel=1e-6)
    assert measured_energy(db, OTHER, 0, start, start + 1800) == {"joules": 0.0, "covered_s": 0.0}


def test_energy_stretch_across_an_hour_boundary_counts_at_the_window_edges(db):
    from opsconsole.store.recorder import measured_energy

    boundary = T0 - T0 % 3600 + 3600
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=3600))
    for ts in (boundary - 15, boundary - 5, boundary + 5, boundary + 15):  # 10 s apart
        ingest.add_sample(HOST, energy_sample(ts, 300.0, boundary - 15, gpus=1))
    ingest.flush(boundary + 120, force=True)
    # the readings either side of the window sit in the hours before and after it
    inside = measured_energy(db, HOST, 0, boundary - 3, boundary + 3)
    assert inside["covered_s"] == pytest.approx(6.0)
    assert inside["joules"] == pytest.approx(300.0 * 6, rel=1e-6)
    ending = measured_energy(db, HOST, 0, boundary - 15, boundary)  # to the hour, exclusive
    assert ending["joules"] == pytest.approx(300.0 * 15, rel=1e-6)
