"""Usage per tenant and period: GPU-hours clipped to the period and to now, utilisation
weighted by readings, unhealthy hours from events, unreported hours from rollup gaps,
hours under a critical alert from the alert history."""

from __future__ import annotations

import csv
import io
import json

import pytest

from opsconsole.alerts import Condition, acknowledge, apply_conditions, resolve
from opsconsole.alerts.store import unack
from opsconsole.cli import main
from opsconsole.cli.common import Context
from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, release_lease
from opsconsole.report.usage import tenant_usage, usage_csv, usage_json
from opsconsole.store import TelemetryIngest
from tests.leases.fleet import HOUR, NOW
from tests.support.leases import OPERATOR

pytestmark = pytest.mark.usefixtures("tenants")
SLOTS = (GpuSlot("sg1-r01-n01", 0), GpuSlot("sg1-r01-n01", 1))


def minute(db, host, gpu, minute_ts, util_avg, util_n):
    db.conn.execute(
        "INSERT INTO gpu_minute (host, gpu_index, minute_ts, n, util_pct_n, util_pct_avg,"
        " temp_c_n, power_w_n, mem_used_mib_n, clock_event_n)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0)",
        (host, gpu, minute_ts, max(util_n, 1), util_n, util_avg if util_n else None),
    )
    db.conn.commit()


def test_hours_utilisation_and_health(db, fleet):
    request = LeaseRequest("acme", NOW, NOW + 4 * HOUR, slots=SLOTS)
    lease = allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)
    # GPU 0: 60 minutes of readings, 30 at 90 % (30 readings each), 30 at 30 % (10 each);
    # GPU 1: none at all. The weighting is by readings: (90*30*30 + 30*10*30) / (1200) = 75.
    for m in range(60):
        busy = m < 30
        minute(db, "sg1-r01-n01", 0, int(NOW) + 60 * m, 90.0 if busy else 30.0, 30 if busy else 10)
    minute(db, "sg1-r01-n01", 0, int(NOW) + 60 * 70, None, 0)  # present but no reading
    ingest = TelemetryIngest(db)
    ingest.record_host_event("sg1-r01-n01", "host_down", "timeout", NOW + HOUR)
    ingest.record_host_event("sg1-r01-n01", "host_up", "back", NOW + HOUR + 1800)
    ingest.record_host_event("sg1-r01-n01", "gpu_lost", "GPU 1 lost", NOW + 2 * HOUR, gpu_index=1)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 3 * HOUR)

    (acme, globex) = tenant_usage(db, NOW - HOUR, NOW + 10 * HOUR, now_ts=NOW + 5 * HOUR)
    assert acme.tenant == "acme" and acme.leases == 1
    assert acme.gpu_hours == 6.0  # 2 GPUs x 3 h (released at 3 h)
    assert acme.util_pct_avg == 75.0
    # host down 0.5 h x 2 GPUs, plus GPU 1 lost from 2 h to the release at 3 h
    assert acme.unhealthy_gpu_hours == 2.0
    # GPU 0: 180 - 60 minutes with readings; GPU 1: all 180
    assert acme.unreported_gpu_hours == 5.0
    assert (globex.gpu_hours, globex.util_pct_avg, globex.leases) == (0.0, None, 0)

    clipped = tenant_usage(db, NOW + HOUR, NOW + 2 * HOUR, tenant="acme", now_ts=NOW + 5 * HOUR)
    assert [(u.tenant, u.gpu_hours, u.unhealthy_gpu_hours) for u in clipped] == [("acme", 2.0, 1.0)]
    not_yet = tenant_usage(db, NOW, NOW + 10 * HOUR, tenant="acme", now_ts=NOW + HOUR)
    assert not_yet[0].gpu_hours == 2.0  # hours not yet lived are not counted


def test_exports(db, fleet):
    allocate_lease(
        db, fleet, LeaseRequest("acme", NOW, NOW + HOUR, slots=SLOTS), operator=OPERATOR, now_ts=NOW
    )
    rows = tenant_usage(db, NOW, NOW + HOUR, now_ts=NOW + HOUR)
    parsed = list(csv.DictReader(io.StringIO(usage_csv(rows))))
    assert parsed[0]["tenant"] == "acme" and float(parsed[0]["gpu_hours"]) == 2.0
    assert parsed[0]["util_pct_avg"] == ""
    assert float(parsed[0]["alert_affected_gpu_hours"]) == 0.0
    data = json.loads(usage_json(rows))
    assert data["tenants"][0]["gpu_hours"] == 2.0 and "gpu_minute" in data["method"]
    assert data["tenants"][0]["alert_affected_gpu_hours"] == 0.0
    assert "alert_history" in data["method"]


N1, N2 = "sg1-r01-n01", "sg1-r01-n02"


def alert(name: str, host: str, gpu: int | None, severity: str = "critical", kind: str = "event"):
    labels = {"host": host, "event": name} | ({} if gpu is None else {"gpu": str(gpu)})
    return Condition(rule=name, severity=severity, kind=kind, labels=labels, summary=name)  # type: ignore[arg-type]


A1 = alert("a1", N1, 0)  # GPU 0: fires 1 h, acked 1.5 h, unacked 2 h, resolved 2.5 h
A2 = alert("a2", N1, 0, kind="condition")  # GPU 0: 2 h to 3 h, overlapping A1 for 0.5 h
A3 = alert("a3", N1, None)  # the whole host from 3.5 h, never resolved
A4 = alert("a4", N1, 1, severity="warning")  # not critical: not counted
A5 = alert("a5", N2, None)  # a host acme does not lease: not counted
A6 = alert("a6", N1, 1)  # GPU 1: from 2 h before the lease to 0.5 h into it


@pytest.fixture
def alerted(db, fleet):
    """acme leases n01 GPUs 0 and 1 from NOW to NOW + 4 h; the alerts above, in order."""
    allocate_lease(db, fleet, LeaseRequest("acme", NOW, NOW + 4 * HOUR, slots=SLOTS),
                   operator=OPERATOR, now_ts=NOW)  # fmt: skip
    apply_conditions(db, [A6], NOW - 2 * HOUR)
    resolve(db, 1, "ana", "reset", now_ts=NOW + 0.5 * HOUR)
    apply_conditions(db, [A1, A4, A5], NOW + HOUR)
    acknowledge(db, 2, "ana", "mine", now_ts=NOW + 1.5 * HOUR)
    unack(db, 2, "ana", "handing over", now_ts=NOW + 2 * HOUR)
    apply_conditions(db, [A2], NOW + 2 * HOUR)
    resolve(db, 2, "bo", "reseated", now_ts=NOW + 2.5 * HOUR)
    apply_conditions(db, [], NOW + 3 * HOUR)  # A2's condition clears
    apply_conditions(db, [A3], NOW + 3.5 * HOUR)
    return db


@pytest.mark.parametrize(
    ("since_h", "until_h", "now_h", "hours"),
    [
        # GPU 0: A1 ∪ A2 = 1 h..3 h = 2.0; GPU 1: A6 0..0.5 h = 0.5; A3 3.5..4 h x 2 GPUs = 1.0
        (-1, 10, 5, 3.5),
        # the period 2 h..3.75 h: GPU 0 2..3 h = 1.0, A3 3.5..3.75 h x 2 = 0.5
        (2, 3.75, 5, 1.5),
        # now = 3.75 h: A3 is still open and counts up to now only
        (-1, 10, 3.75, 3.0),
        # before any alert opened inside the lease: only A6
        (-1, 0.25, 5, 0.25),
    ],
)
def test_alert_affected_hours(alerted, since_h, until_h, now_h, hours):
    (acme, globex) = tenant_usage(
        alerted, NOW + since_h * HOUR, NOW + until_h * HOUR, now_ts=NOW + now_h * HOUR
    )
    assert (acme.tenant, acme.alert_affected_gpu_hours) == ("acme", hours)
    assert globex.alert_affected_gpu_hours == 0.0


def test_usage_command_shows_alert_hours(alerted, fleet, monkeypatch, capsys):
    context = Context(fleet, alerted, OPERATOR, NOW + 5 * HOUR)
    monkeypatch.setattr("opsconsole.cli.usage.open_context", lambda args: context)

    def usage(*flags: str) -> str:
        assert main(["usage", "--since=-6h", "--tenant", "acme", *flags]) == 0
        return capsys.readouterr().out

    assert json.loads(usage("--json"))["tenants"][0]["alert_affected_gpu_hours"] == 3.5
    (row,) = csv.DictReader(io.StringIO(usage("--csv")))
    assert float(row["alert_affected_gpu_hours"]) == 3.5
    header, acme = usage().splitlines()[1:]
    cells = dict(zip(header.split(), acme.split(), strict=True))
    assert cells["TENANT"] == "acme"
    assert cells["ALERT_AFFECTED_GPU_HOURS"] == "3.5"  # the JSON field's name
