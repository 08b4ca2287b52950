"""The tenant report: what was leased where, on which chips, how much was used, whether
placements kept to the allowed sites, and what drains and alerts cost the tenant."""

from __future__ import annotations

import json

import pytest

from opsconsole.errors import LeaseError, ReportError
from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, extend_lease, update_tenant
from opsconsole.report import Period, build_tenant_report
from opsconsole.report.tables import markdown
from tests.leases.fleet import HOUR
from tests.support.report import N1, NOW, OPERATOR


def report_for(db, fleet, tenant="acme", since=-1, until=10, now=5):
    """The report for hours since..until after NOW, made at NOW + now hours."""
    period = Period(NOW + since * HOUR, NOW + until * HOUR)
    return build_tenant_report(db, fleet, tenant, period, now_ts=NOW + now * HOUR, operator="r")


def test_report_lists_leases_chips_usage_and_losses(history, fleet):
    report = report_for(history, fleet)
    (lease,) = report["leases"]
    assert lease["hosts"] == [N1] and lease["sites"] == [{"site": "SG1", "country": "SG"}]
    assert [(g["gpu_index"], g["serial"], g["uuid"], g["model"]) for g in lease["gpus"]] == [
        (0, "SN0", "GPU-ACME-0", "NVIDIA H200"),
        (1, "SN1", "GPU-ACME-1", "NVIDIA H200"),
    ]
    assert lease["gpu_hours"] == 8.0 and lease["util_pct_avg"] == 80.0
    # 60 minutes x 2 GPUs at 600 W = 1.2 kWh, estimated and marked so; coverage 120 of 480
    assert lease["energy_kwh"] == 1.2 and "estimated" in lease["energy_source"]
    assert lease["energy_coverage"] == 0.25
    assert lease["allowed_sites_at_allocation"] == ["SG1"] and lease["within_allowed_sites"]
    (override,) = report["overrides"]
    assert (override["lease"], override["operator"], override["reason"]) == (
        1,
        "ana",
        "INC-7: tenant's own pick",
    )
    (drained,) = report["drains"]
    assert (drained["target"], drained["gpu_hours_lost"], drained["created_by"]) == (
        f"{N1}:1",
        1.0,
        "bo",
    )
    (incident,) = report["incidents"]
    assert (incident["severity"], incident["gpu"]) == ("critical", "0")
    assert incident["gpu_hours_lost"] == 1.0
    assert ("resolved", "bo", "GPU reseated") in [
        (a["to"], a["operator"], a["comment"]) for a in incident["operator_actions"]
    ]
    summary = report["summary"]
    assert summary["placements_within_allowed_sites"] is True
    assert summary["gpu_hours_under_critical_alerts"] == 1.0
    assert summary["countries"] == ["SG"]
    subjects = {row["subject"] for row in report["audit"]["rows"]}
    assert subjects == {"tenant:acme", "lease:1", "drain:1"}  # globex's lease is not cited
    head = report["audit"]["head_at_period_end"]
    assert head["id"] == max(r["id"] for r in report["audit"]["rows"] + report["audit"]["links"])
    json.dumps(report, allow_nan=False)  # plain JSON: no inf, no NaN


def test_allowed_sites_are_those_in_force_at_each_placement(history, fleet):
    # the tenant may use MY1 when this lease is booked; the contract is then narrowed
    update_tenant(history, "acme", allowed_sites=["SG1", "MY1"], operator=OPERATOR,
                  now_ts=NOW + HOUR)  # fmt: skip
    request = LeaseRequest("acme", NOW + HOUR, NOW + 3 * HOUR, slots=(GpuSlot("my1-r01-n01", 0),))
    lease = allocate_lease(history, fleet, request, operator="ana", now_ts=NOW + HOUR)
    update_tenant(history, "acme", allowed_sites=["SG1"], operator=OPERATOR, now_ts=NOW + 2 * HOUR)
    report = report_for(history, fleet)
    my1 = next(e for e in report["leases"] if e["id"] == lease.id)
    assert my1["sites"] == [{"site": "MY1", "country": "MY"}]
    assert my1["allowed_sites_at_allocation"] == ["SG1", "MY1"] and my1["within_allowed_sites"]
    assert report["summary"]["placements_within_allowed_sites"] is True
    # extending it after the contract was narrowed holds MY1 GPUs for a new stretch: refused
    # unless an operator overrides, and the report still shows it outside the sites
    with pytest.raises(LeaseError, match="acme may use SG1 only"):
        extend_lease(history, fleet, lease.id, NOW + 4 * HOUR, operator="ana",
                     now_ts=NOW + 2.5 * HOUR)  # fmt: skip
    extend_lease(history, fleet, lease.id, NOW + 4 * HOUR, operator="ana",
                 override_reason="INC-9: tenant moving", now_ts=NOW + 2.5 * HOUR)  # fmt: skip
    report = report_for(history, fleet)
    my1 = next(e for e in report["leases"] if e["id"] == lease.id)
    assert [(c["action"], c["within"]) for c in my1["placement_checks"]] == [
        ("lease.allocate", True),
        ("lease.extend", False),
    ]
    assert report["summary"]["placements_within_allowed_sites"] is False


def test_period_clips_and_other_tenants_and_bad_periods(history, fleet):
    report = report_for(history, fleet, since=1, until=2)
    assert report["leases"][0]["gpu_hours"] == 2.0
    assert report["incidents"] == []  # the alert opened at 2 h, after the period
    globex = report_for(history, fleet, tenant="globex")
    assert globex["drains"] == [] and globex["overrides"] == []
    assert all(g["host"] != N1 for e in globex["leases"] for g in e["gpus"])
    with pytest.raises(ReportError, match="ends"):
        Period(NOW, NOW - 1)


def test_markdown_has_the_tables(history, fleet):
    text = markdown(report_for(history, fleet))
    assert "| Every placement within allowed sites | yes |" in text
    assert "GPU-ACME-1" in text and "SN0" in text and "RMA check" in text
    assert "## Audit rows cited" in text and "XID 79 on GPU 0" in text


def test_energy_from_the_nvml_counter_where_hosts_report_it(history, fleet):
    from opsconsole.store import TelemetryIngest
    from opsconsole.store.recorder import FlightRecorder
    from tests.store.test_recorder import energy_sample

    ingest = TelemetryIngest(history, recorder=FlightRecorder(window_s=86_400))
    for step in range(0, 1802, 2):  # the lease's first half hour, 700 W per GPU
        ingest.add_sample(N1, energy_sample(NOW + step, 700.0, NOW))
    ingest.flush(NOW + 1900, force=True)
    (lease,) = report_for(history, fleet, since=0, until=0.5)["leases"]
    assert lease["energy_source"] == "measured: NVML energy counter"
    assert lease["energy_kwh"] == 0.7  # 2 GPUs x 700 W x 0.5 h
    assert lease["energy_coverage"] == 1.0
