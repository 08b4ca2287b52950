"""Usage per tenant and period: GPU-hours clipped to the period and to now, utilisation
weighted by readings, unhealthy hours from events, unreported hours from rollup gaps."""

from __future__ import annotations

import csv
import io
import json

import pytest

from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    release_lease,
    tenant_usage,
    usage_csv,
    usage_json,
)
from opsconsole.store import TelemetryIngest
from tests.leases.conftest import OPERATOR
from tests.leases.fleet import HOUR, NOW

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
    data = json.loads(usage_json(rows))
    assert data["tenants"][0]["gpu_hours"] == 2.0 and "gpu_minute" in data["method"]
