"""Usage per lease and per slot over a period: the figures of `usage.tenant_usage`
(same method, same helpers), kept apart per lease so a tenant's report can show each
lease's GPU-hours, utilisation and time under critical alerts."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from opsconsole.leases.booking import read_snapshot
from opsconsole.leases.usage import (
    HOUR_S,
    CriticalAlertSpans,
    _alert_intervals,
    _bad_intervals,
    _overlap,
    _readings,
    leased_windows,
)


@dataclass(frozen=True, slots=True)
class SlotWindow:
    """One booked slot of a lease, clipped to the period and to now."""

    lease_id: int
    host: str
    gpu_index: int
    start_ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class LeaseUsage:
    lease_id: int
    gpu_hours: float
    util_pct_avg: float | None
    """None when no reading was stored for the lease's GPUs in the period."""
    unhealthy_gpu_hours: float
    unreported_gpu_hours: float
    alert_affected_gpu_hours: float
    windows: tuple[SlotWindow, ...]


def lease_usage(
    db: sqlite_utils.Database,
    tenant: str,
    since_ts: float,
    until_ts: float,
    *,
    now_ts: float | None = None,
    alert_spans: CriticalAlertSpans,
) -> dict[int, LeaseUsage]:
    """lease id → usage within [since, min(until, now)), for the tenant's leases whose
    booking overlaps it (cancelled leases book nothing and are absent)."""
    now_ts = time.time() if now_ts is None else now_ts
    end = min(until_ts, now_ts)
    with read_snapshot(db) as conn:
        windows = leased_windows(conn, since_ts, end, tenant)
        readings = _readings(conn, windows)
        slots = {(w[2], w[3]) for w in windows}
        bad = _bad_intervals(conn, slots, end)
        alerted = _alert_intervals(alert_spans, conn, slots, since_ts, end)
    per: dict[int, dict[str, Any]] = {}
    for _tenant, lease_id, host, index, start, stop in windows:
        acc = per.setdefault(
            lease_id,
            {
                "windows": [],
                "n": 0,
                "sum": 0.0,
                "s": 0.0,
                "bad": 0.0,
                "alert": 0.0,
                "unreported": 0,
            },
        )
        acc["windows"].append(SlotWindow(lease_id, host, index, start, stop))
        acc["s"] += stop - start
        acc["bad"] += _overlap(bad.get((host, index), ()), start, stop)
        acc["alert"] += _overlap(alerted.get((host, index), ()), start, stop)
        weighted, n, minutes_read = readings.get((lease_id, host, index), (0.0, 0, 0))
        minutes = math.ceil(stop / 60) - math.ceil(start / 60)
        acc["unreported"] += max(0, minutes - minutes_read)
        acc["sum"] += weighted
        acc["n"] += n
    return {
        lease_id: LeaseUsage(
            lease_id=lease_id,
            gpu_hours=round(acc["s"] / HOUR_S, 4),
            util_pct_avg=round(acc["sum"] / acc["n"], 2) if acc["n"] else None,
            unhealthy_gpu_hours=round(acc["bad"] / HOUR_S, 4),
            unreported_gpu_hours=round(acc["unreported"] * 60 / HOUR_S, 4),
            alert_affected_gpu_hours=round(acc["alert"] / HOUR_S, 4),
            windows=tuple(acc["windows"]),
        )
        for lease_id, acc in per.items()
    }
