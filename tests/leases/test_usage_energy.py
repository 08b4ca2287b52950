"""Energy in `usage`: NVML's counter where the host reported it, else minute mean power
x 60 s, marked so; both fed through the real ingest (rollups and flight recorder) into a
real SQLite file."""

from __future__ import annotations

import csv
import io
import json

import pytest

from opsconsole.cli import main
from opsconsole.cli.common import Context
from opsconsole.cli.usage import HEADERS
from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease
from opsconsole.report.usage import tenant_usage
from opsconsole.store import TelemetryIngest
from opsconsole.store.recorder import FlightRecorder
from opsconsole.wire import GpuSample, Sample
from tests.leases.fleet import HOUR, NOW
from tests.support.leases import OPERATOR

pytestmark = pytest.mark.usefixtures("tenants")
HOST = "sg1-r01-n01"
LEASE_S = 2 * HOUR


def feed(db, gpus: dict[int, tuple[float | None, float]]) -> None:
    """Samples every 10 s over the lease, both ends included: per GPU index, (the wattage
    its energy counter rises at, or None when the host reports no counter; power_w)."""
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=HOUR))
    for step in range(0, int(LEASE_S) + 1, 10):
        ts = NOW + step
        readings = [
            GpuSample(index=index, power_w=power_w, energy_mj=counter(counter_w, step))
            for index, (counter_w, power_w) in gpus.items()
        ]
        ingest.add_sample(HOST, Sample(seq=step // 10, ts=ts, gpus=readings))
        if step % 60 == 50:
            ingest.flush(ts)
    ingest.flush(NOW + LEASE_S + 60, force=True)


def counter(counter_w: float | None, step: int) -> int | None:
    """The counter's reading `step` seconds in: millijoules since the driver loaded."""
    return None if counter_w is None else 7_000_000_000 + int(counter_w * step * 1000)


@pytest.fixture
def leased(db, fleet):
    """acme leases GPUs 0 and 1 of one host for two hours from NOW."""
    slots = (GpuSlot(HOST, 0), GpuSlot(HOST, 1))
    request = LeaseRequest("acme", NOW, NOW + LEASE_S, slots=slots)
    allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)
    return db


def acme_usage(db):
    rows = tenant_usage(db, NOW - HOUR, NOW + 3 * HOUR, now_ts=NOW + 3 * HOUR)
    (acme,) = [r for r in rows if r.tenant == "acme"]
    (globex,) = [r for r in rows if r.tenant == "globex"]
    assert (globex.energy_kwh, globex.energy_source, globex.energy_coverage) == (0.0, "none", None)
    return acme


def test_measured_from_the_counter_not_the_power_readings(leased):
    feed(leased, {0: (400.0, 250.0), 1: (400.0, 250.0)})
    acme = acme_usage(leased)
    assert acme.energy_source == "measured"
    assert acme.energy_kwh == pytest.approx(2 * 400 * LEASE_S / 3.6e6, abs=1e-3)  # 1.6, not 1.0
    assert acme.energy_coverage == pytest.approx(1.0)


def test_estimated_from_minute_power_without_a_counter(leased):
    feed(leased, {0: (None, 300.0), 1: (None, 300.0)})
    acme = acme_usage(leased)
    assert acme.energy_source == "estimated"
    assert acme.energy_kwh == pytest.approx(2 * 300 * LEASE_S / 3.6e6, abs=1e-3)  # 1.2
    assert acme.energy_coverage == pytest.approx(1.0)


def test_estimate_counts_only_minutes_with_power(leased):
    feed(leased, {0: (None, 300.0)})  # GPU 1 sent nothing: 0 J, half the time uncovered
    acme = acme_usage(leased)
    assert acme.energy_source == "estimated"
    assert acme.energy_kwh == pytest.approx(300 * LEASE_S / 3.6e6, abs=1e-3)
    assert acme.energy_coverage == pytest.approx(0.5)


def test_mixed_in_text_csv_and_json(leased, fleet, monkeypatch, capsys):
    feed(leased, {0: (400.0, 250.0), 1: (None, 300.0)})
    context = Context(fleet, leased, OPERATOR, NOW + 3 * HOUR)
    monkeypatch.setattr("opsconsole.cli.usage.open_context", lambda args: context)

    def usage(*flags: str) -> str:
        assert main(["usage", "--since=-4h", "--tenant", "acme", *flags]) == 0
        return capsys.readouterr().out

    want_kwh = (400 + 300) * LEASE_S / 3.6e6  # 0.8 measured + 0.6 estimated
    (row,) = json.loads(usage("--json"))["tenants"]
    assert row["energy_kwh"] == pytest.approx(want_kwh, abs=1e-3)
    assert row["energy_source"] == "mixed"
    (row,) = csv.DictReader(io.StringIO(usage("--csv")))
    assert float(row["energy_kwh"]) == pytest.approx(want_kwh, abs=1e-3)
    assert row["energy_source"] == "mixed"
    header, acme = usage().splitlines()[1:]
    cells = dict(zip(header.split(), acme.split(), strict=True))
    assert header.split() == list(HEADERS)
    assert cells["ENERGY_KWH"] == f"{want_kwh:.2f}" and cells["ENERGY_SOURCE"] == "mixed"
