"""A tenant's compliance report for a period: every lease, where its GPUs were (site,
country, host, the physical chips by serial and UUID), how much was used, whether every
placement stayed inside the sites the tenant is allowed, what operators overrode and why,
drains and alerts that cost the tenant GPU-hours, and the audit rows behind all of it
with the hashes that let a third party check them.

Every table is read through the package that owns it (leases, alerts, store); this
module only joins plain records. The result is a plain dict: JSON as is, Markdown and PDF
are drawn from it, and the signature covers it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from opsconsole.alerts.history import alerts_open_during, critical_alert_spans
from opsconsole.config import Fleet
from opsconsole.errors import ReportError
from opsconsole.leases import get_tenant, list_drains, list_leases
from opsconsole.leases.audit_proof import audit_rows, head_at, proof_for
from opsconsole.leases.lease_usage import LeaseUsage, SlotWindow, lease_usage
from opsconsole.leases.model import Lease
from opsconsole.store.energy import window_energy
from opsconsole.store.queries import Row, gpu_slots, swaps

FORMAT = "opsconsole/tenant-report/1"
HOUR_S = 3600.0
ENERGY_COUNTER = "measured: NVML energy counter"
ENERGY_ESTIMATED = "estimated: minute mean board power x 60 s (NVML energy counter not reported)"


def _summary_energy_source(entries: list[dict[str, Any]]) -> str:
    sources = {e["energy_source"] for e in entries if e["gpu_hours"] > 0}
    if len(sources) == 1:
        return str(sources.pop())
    return "mixed: see each lease" if sources else "no GPU-hours in the period"


def _energy_source(from_counter: int, estimated: int) -> str:
    if estimated == 0 and from_counter:
        return ENERGY_COUNTER
    if from_counter == 0:
        return ENERGY_ESTIMATED if estimated else "no GPU-hours in the period"
    return f"mixed: {from_counter} GPU(s) measured by NVML's energy counter, {estimated} estimated"


METHOD = (
    "GPU-hours: each booked slot clipped to the period and to the time of the report;"
    " utilisation: minute rollups weighted by readings; energy: NVML's energy counter where"
    " the host reports it (its rise, prorated at the window's edges), else estimated from"
    " minute mean board power (minutes without a reading count nothing, see coverage);"
    " allowed sites: the tenant's allowed sites as the audit log recorded them at the"
    " allocation and at every extension; GPU-hours lost: leased GPU-hours of the period"
    " under a drain, or while an alert on the GPU (or its whole host) was firing or"
    " acknowledged; GPU identities: the store's inventory (serial, UUID) with any swap"
    " recorded in the period."
)


@dataclass(frozen=True, slots=True)
class Period:
    since_ts: float
    until_ts: float

    def __post_init__(self) -> None:
        if self.until_ts <= self.since_ts:
            raise ReportError(f"the period ends ({iso(self.until_ts)}) before it starts")


def iso(ts: float | None) -> str | None:
    if ts is None or math.isinf(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _overlap(spans: Iterable[tuple[float, float]], start: float, stop: float) -> float:
    return sum((max(0.0, min(stop, b) - max(start, a)) for a, b in spans), 0.0)


def _touches(lease: Lease, period: Period) -> bool:
    booked = lease.start_ts < period.until_ts and lease.booked_end_ts > period.since_ts
    created = period.since_ts <= lease.created_ts < period.until_ts
    return booked or created


PLACING_ACTIONS = ("lease.allocate", "lease.extend")
"""Lease changes that hold GPUs for a new stretch of time: each must fit the tenant's
allowed sites as they stood when it was made (a contract narrowed before an extension
makes the extension a breach, even though the allocation was not)."""


def _placement_check(
    row: dict[str, Any] | None, allowed: list[str] | None, sites: dict[str, str | None]
) -> dict[str, Any]:
    return {
        "audit_id": row["id"] if row else None,
        "action": row["action"] if row else "lease.allocate",
        "ts": row["ts"] if row else None,
        "allowed_sites": allowed,
        "within": allowed is None or all(site in allowed for site in sites),
    }


def _allowed_at(
    tenant_rows: list[dict[str, Any]], ts: float, current: tuple[str, ...] | None
) -> list[str] | None:
    """The tenant's allowed sites as the audit log had them at `ts`."""
    allowed: object = list(current) if current else None
    for row in tenant_rows:
        if row["ts"] <= ts and row["after"]:
            allowed = json.loads(row["after"]).get("allowed_sites")
    return allowed if isinstance(allowed, list) else None


def build_tenant_report(
    db: sqlite_utils.Database,
    fleet: Fleet,
    tenant_name: str,
    period: Period,
    *,
    now_ts: float,
    operator: str,
) -> dict[str, Any]:
    """The report as plain data (see the module docstring); unsigned."""
    tenant = get_tenant(db, tenant_name)
    end = min(period.until_ts, now_ts)
    leases = [
        lease
        for lease in list_leases(db, tenant=tenant.name, now_ts=now_ts)
        if _touches(lease, period)
    ]
    usage = lease_usage(
        db, tenant.name, period.since_ts, period.until_ts, now_ts=now_ts,
        alert_spans=critical_alert_spans,
    )  # fmt: skip
    windows: list[SlotWindow] = [w for u in usage.values() for w in u.windows]
    hosts = {slot.host for lease in leases for slot in lease.slots}
    inventory = {(r["host"], r["gpu_index"]): r for h in sorted(hosts) for r in gpu_slots(db, h)}
    swapped: defaultdict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for swap in swaps(db, period.since_ts):
        if swap["ts"] < period.until_ts and swap["host"] in hosts:
            swapped[(swap["host"], swap["gpu_index"])].append(
                {"ts": swap["ts"], "old_uuid": swap["old_uuid"], "new_uuid": swap["new_uuid"]}
            )
    subjects = {f"tenant:{tenant.name}", *(f"lease:{lease.id}" for lease in leases)}
    drains = _drains(db, windows, period)
    subjects |= {f"drain:{d['id']}" for d in drains}
    head_id, head_hash = head_at(db, period.until_ts)
    cited = [r for r in audit_rows(db, subjects=subjects) if r["id"] <= head_id]
    tenant_rows = [r for r in cited if r["subject"] == f"tenant:{tenant.name}"]

    lease_entries = [
        _lease_entry(
            fleet,
            db,
            lease,
            usage.get(lease.id),
            inventory,
            swapped,
            tenant_rows,
            [r for r in cited if r["subject"] == f"lease:{lease.id}"],
            tenant.allowed_sites,
            now_ts,
        )
        for lease in leases
    ]
    incidents = _incidents(db, windows, period, end)
    overrides = _overrides(cited)
    kwh = sum(e["energy_kwh"] for e in lease_entries)
    util_n = [
        (e["util_pct_avg"], e["gpu_hours"]) for e in lease_entries if e["util_pct_avg"] is not None
    ]
    summary = {
        "leases": len(lease_entries),
        "gpu_hours": round(sum(e["gpu_hours"] for e in lease_entries), 4),
        "energy_kwh": round(kwh, 3),
        "energy_source": _summary_energy_source(lease_entries),
        "util_pct_avg": (
            round(sum(u * h for u, h in util_n) / sum(h for _, h in util_n), 2)
            if util_n and sum(h for _, h in util_n) > 0
            else None
        ),
        "sites": sorted({s["site"] for e in lease_entries for s in e["sites"]}),
        "countries": sorted(
            {s["country"] for e in lease_entries for s in e["sites"] if s["country"]}
        ),
        "gpus": len({(g["host"], g["gpu_index"]) for e in lease_entries for g in e["gpus"]}),
        "placements_within_allowed_sites": all(e["within_allowed_sites"] for e in lease_entries),
        "overrides": len(overrides),
        "drains": len(drains),
        "incidents": len(incidents),
        "gpu_hours_lost_to_drains": round(sum(d["gpu_hours_lost"] for d in drains), 4),
        "gpu_hours_under_critical_alerts": round(
            sum(u.alert_affected_gpu_hours for u in usage.values()), 4
        ),
    }
    return {
        "format": FORMAT,
        "generated_ts": now_ts,
        "generated": iso(now_ts),
        "generated_by": operator,
        "period": {
            "from_ts": period.since_ts,
            "to_ts": period.until_ts,
            "from": iso(period.since_ts),
            "to": iso(period.until_ts),
        },
        "tenant": tenant.as_dict(),
        "summary": summary,
        "leases": lease_entries,
        "overrides": overrides,
        "drains": drains,
        "incidents": incidents,
        "audit": {
            "head_at_period_end": {"id": head_id, "hash": head_hash},
            "rows": cited,
            "links": proof_for(db, cited, (head_id, head_hash)),
        },
        "method": METHOD,
    }


def _lease_entry(
    fleet: Fleet,
    db: sqlite_utils.Database,
    lease: Lease,
    used: LeaseUsage | None,
    inventory: Mapping[tuple[str, int], Row],
    swapped: Mapping[tuple[str, int], list[dict[str, Any]]],
    tenant_rows: list[dict[str, Any]],
    lease_rows: list[dict[str, Any]],
    allowed_now: tuple[str, ...] | None,
    now_ts: float,
) -> dict[str, Any]:
    gpus: list[dict[str, Any]] = []
    sites: dict[str, str | None] = {}
    joules, covered_s, counted_s = 0.0, 0.0, 0.0
    from_counter = estimated = 0
    by_slot = {(w.host, w.gpu_index): w for w in (used.windows if used else ())}
    for slot in lease.slots:
        try:
            host = fleet.host(slot.host)
        except KeyError:  # a host dropped from the config since: its site is unknown here
            host = None
        site = host.site if host else "?"
        site_config = fleet.sites.get(site)
        country = site_config.country if site_config else None
        sites[site] = country
        known = inventory.get((slot.host, slot.gpu_index), {})
        window = by_slot.get((slot.host, slot.gpu_index))
        if window:
            energy = window_energy(db, slot.host, slot.gpu_index, window.start_ts,
                                   window.end_ts)  # fmt: skip
            joules += energy.joules
            covered_s += energy.covered_s
            counted_s += energy.counted_s
            if energy.measured:
                from_counter += 1
            else:
                estimated += 1
        gpus.append(
            {
                "host": slot.host,
                "gpu_index": slot.gpu_index,
                "site": site,
                "country": country,
                "model": known.get("model") or (host.gpu_model if host else None),
                "serial": known.get("serial"),
                "uuid": known.get("uuid"),
                "swaps": swapped.get((slot.host, slot.gpu_index), []),
            }
        )
    allowed = _allowed_at(tenant_rows, lease.created_ts, allowed_now)
    checks = [
        _placement_check(row, _allowed_at(tenant_rows, row["ts"], allowed_now), sites)
        for row in lease_rows
        if row["action"] in PLACING_ACTIONS
    ] or [_placement_check(None, allowed, sites)]
    within = all(check["within"] for check in checks)
    return {
        "id": lease.id,
        "state": lease.state(now_ts),
        "start_ts": lease.start_ts,
        "end_ts": lease.end_ts,
        "booked_end_ts": lease.booked_end_ts,
        "window": f"{iso(lease.start_ts)} → {iso(lease.booked_end_ts)}",
        "created_ts": lease.created_ts,
        "created_by": lease.created_by,
        "released_ts": lease.released_ts,
        "cancelled_ts": lease.cancelled_ts,
        "gpu_count": lease.gpu_count,
        "sites": [{"site": s, "country": c} for s, c in sorted(sites.items())],
        "hosts": list(lease.hosts),
        "gpu_models": sorted({g["model"] for g in gpus if g["model"]}),
        "gpus": gpus,
        "gpu_hours": used.gpu_hours if used else 0.0,
        "util_pct_avg": used.util_pct_avg if used else None,
        "energy_kwh": round(joules / 3.6e6, 3),
        "energy_source": _energy_source(from_counter, estimated),
        "energy_coverage": round(covered_s / counted_s, 3) if counted_s else None,
        "unhealthy_gpu_hours": used.unhealthy_gpu_hours if used else 0.0,
        "gpu_hours_under_critical_alerts": used.alert_affected_gpu_hours if used else 0.0,
        "allowed_sites_at_allocation": allowed,
        "placement_checks": checks,
        "within_allowed_sites": within,
        "override_reason": lease.override_reason,
        "affected_by_drains": list(lease.affected_by_drains),
    }


def _drains(
    db: sqlite_utils.Database, windows: list[SlotWindow], period: Period
) -> list[dict[str, Any]]:
    """Drains that held one of the tenant's leased GPUs during its booking in the period."""
    by_host: dict[str, list[SlotWindow]] = defaultdict(list)
    for window in windows:
        by_host[window.host].append(window)
    out = []
    for drain in list_drains(db, include_past=True):
        until = drain.until_ts if drain.until_ts is not None else math.inf
        lost, leases = 0.0, set()
        for window in by_host.get(drain.host, ()):
            if drain.gpu_index is not None and drain.gpu_index != window.gpu_index:
                continue
            seconds = _overlap([(drain.start_ts, until)], window.start_ts, window.end_ts)
            if seconds > 0:
                lost += seconds
                leases.add(window.lease_id)
        if leases:
            out.append(
                {
                    "id": drain.id,
                    "target": drain.target,
                    "reason": drain.reason,
                    "start_ts": drain.start_ts,
                    "until_ts": drain.until_ts,
                    "window": f"{iso(drain.start_ts)} → {iso(drain.until_ts) or 'open'}",
                    "created_by": drain.created_by,
                    "lifted_by": drain.lifted_by,
                    "leases": sorted(leases),
                    "gpu_hours_lost": round(lost / HOUR_S, 4),
                }
            )
    return out


def _incidents(
    db: sqlite_utils.Database, windows: list[SlotWindow], period: Period, end: float
) -> list[dict[str, Any]]:
    """Alerts open on a leased GPU (its own, or its host's without a GPU label) while it
    was leased, with the leased GPU-hours they were open for."""
    by_host: dict[str, list[SlotWindow]] = defaultdict(list)
    for window in windows:
        by_host[window.host].append(window)
    out = []
    for found in alerts_open_during(db, period.since_ts, end, hosts=set(by_host)):
        alert = found.alert
        gpu = alert.labels.get("gpu")
        lost, leases = 0.0, set()
        for window in by_host[alert.labels["host"]]:
            if gpu is not None and str(gpu) != str(window.gpu_index):
                continue
            seconds = _overlap(found.spans, window.start_ts, window.end_ts)
            if seconds > 0:
                lost += seconds
                leases.add(window.lease_id)
        if not leases:
            continue
        acted = [
            {"ts": ts, "to": to_state, "operator": who, "comment": comment}
            for ts, _from, to_state, who, comment in found.history
            if who
        ]
        out.append(
            {
                "alert_id": alert.id,
                "rule": alert.rule,
                "severity": alert.severity,
                "summary": alert.summary,
                "host": alert.labels.get("host"),
                "gpu": gpu,
                "first_fired_ts": alert.first_fired_ts,
                "first_fired": iso(alert.first_fired_ts),
                "resolved_ts": alert.resolved_ts,
                "state": alert.state,
                "leases": sorted(leases),
                "gpu_hours_lost": round(lost / HOUR_S, 4),
                "operator_actions": acted,
            }
        )
    return out


def _overrides(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lease changes made with an override reason (drained or unhealthy GPUs used)."""
    out = []
    for row in rows:
        if not row["subject"].startswith("lease:") or not row["after"]:
            continue
        after = json.loads(row["after"])
        warnings = after.get("warnings") or []
        reason = after.get("override_reason")
        if (row["action"] == "lease.allocate" and reason) or warnings:
            out.append(
                {
                    "lease": int(row["subject"].split(":", 1)[1]),
                    "action": row["action"],
                    "ts": row["ts"],
                    "when": iso(row["ts"]),
                    "operator": row["operator"],
                    "reason": reason,
                    "warnings": warnings,
                    "audit_id": row["id"],
                }
            )
    return out
