"""Accounting per tenant and period: what was leased, how hard it was used, and how long
the leased GPUs were unhealthy, under a critical alert, or not reporting.

Method (also in ARCHITECTURE.md, "Usage accounting"):
  * leased GPU-hours: each booked slot's window clipped to [since, min(until, now)):
    hours not yet lived are not billed, and a released lease counts to its release;
  * utilisation: the `gpu_minute` rows of the leased slots whose minute starts inside the
    clipped windows, averaged by util_pct_avg weighted with util_pct_n (a minute with
    more readings weighs more; a minute without readings weighs nothing, never 0 %);
  * unhealthy GPU-hours (events): the host between `host_down` and the next `host_up`,
    and a GPU from `gpu_lost` until the host's next `host_up` or the GPU's next minute
    with a reading, intersected with the leased windows;
  * unreported GPU-hours (rollups): leased GPU-minutes with no utilisation reading stored.
    It includes the unhealthy time, and time the console itself was not collecting, so
    it is an upper bound; the two are reported side by side, never added.
  * alert-affected GPU-hours (alerts): leased time during which a *critical* alert was
    open (firing or acknowledged) on the slot. Open spans come from `alert_history`: an
    alert opens at a transition into firing or acknowledged and closes at one into
    resolved; one still open counts up to now. An alert labelled host and gpu covers that
    GPU; one with a host but no gpu (host down, IB port, host key) covers every GPU of
    the host; alerts without a host (a rack's power) cover no slot. Spans are merged per
    slot before they are clipped to the lease windows and the period, so two alerts open
    at once on one GPU count its hour once. Severity is the alert's current one. This is
    what a tenant can dispute ("our GPU was broken and you knew"), so it counts alerts,
    which operators see and resolve, rather than raw events; it overlaps the unhealthy
    hours and is reported beside them, never added. Alerts removed by alert retention
    (resolved longer ago than `resolved_keep_days`) no longer count, so report a period
    before then.
  * energy (kWh): per leased window, NVML's energy counter where the host reported it,
    else minute mean board power x 60 s (`store.energy.window_energy`, the tenant
    report's rule); `energy_source` says measured, estimated or mixed, and
    `energy_coverage` the share of the counted time with a reading behind it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import sqlite_utils

from opsconsole.leases.booking import read_snapshot
from opsconsole.leases.health import HEALTH_EVENTS
from opsconsole.store.energy import energy_source, window_energy
from opsconsole.store.queries import events_of_kinds, first_reading_ts, utilisation_in_windows

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class TenantUsage:
    tenant: str
    since_ts: float
    until_ts: float
    leases: int
    gpu_hours: float
    util_pct_avg: float | None
    """None when no reading was stored for the leased GPUs in the period."""
    unhealthy_gpu_hours: float
    unreported_gpu_hours: float
    alert_affected_gpu_hours: float
    """Leased GPU-hours under an open critical alert (see the module docstring)."""
    energy_kwh: float
    energy_source: str
    """measured (NVML counter), estimated (minute mean power), mixed, or none."""
    energy_coverage: float | None
    """Share of the counted time with a counter or power reading; None with no windows."""


def tenant_usage(
    db: sqlite_utils.Database,
    since_ts: float,
    until_ts: float,
    *,
    tenant: str | None = None,
    now_ts: float | None = None,
    alert_spans: CriticalAlertSpans,
) -> list[TenantUsage]:
    """One row per tenant (every tenant, or `tenant` alone), by name. `alert_spans`: the
    alerts layer's answer for the alert-affected hours (`opsconsole.report.usage` passes
    it; so does the tenant report)."""
    now_ts = time.time() if now_ts is None else now_ts
    end = min(until_ts, now_ts)
    with read_snapshot(db) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT name FROM tenants WHERE (? IS NULL OR name = ?) AND"
                " (archived_ts IS NULL OR archived_ts > ?) ORDER BY name",
                (tenant, tenant, since_ts),
            )
        ]
        windows = leased_windows(conn, since_ts, end, tenant)
        readings = _readings(conn, windows)
        slots = {(w[2], w[3]) for w in windows}
        bad = _bad_intervals(conn, slots, end)
        alerted = _alert_intervals(alert_spans, conn, slots, since_ts, end)
        energies = [window_energy(db, w[2], w[3], w[4], w[5]) for w in windows]
    per: dict[str, dict[str, Any]] = {n: defaultdict(float, leases=set()) for n in names}
    for (name, lease_id, host, index, start, stop), energy in zip(windows, energies, strict=True):
        acc = per.setdefault(name, defaultdict(float, leases=set()))
        acc["joules"] += energy.joules
        acc["covered_s"] += energy.covered_s
        acc["counted_s"] += energy.counted_s
        acc["measured" if energy.measured else "estimated"] += 1
        acc["leases"].add(lease_id)
        acc["seconds"] += stop - start
        acc["unhealthy"] += _overlap(bad.get((host, index), ()), start, stop)
        acc["alerted"] += _overlap(alerted.get((host, index), ()), start, stop)
        weighted, n, minutes_read = readings.get((lease_id, host, index), (0.0, 0, 0))
        minutes = math.ceil(stop / 60) - math.ceil(start / 60)  # minute starts in the window
        acc["unreported"] += max(0, minutes - minutes_read)
        acc["util_sum"] += weighted
        acc["util_n"] += n
    return [
        TenantUsage(
            tenant=name,
            since_ts=since_ts,
            until_ts=until_ts,
            leases=len(acc["leases"]),
            gpu_hours=round(acc["seconds"] / HOUR_S, 4),
            util_pct_avg=round(acc["util_sum"] / acc["util_n"], 2) if acc["util_n"] else None,
            unhealthy_gpu_hours=round(acc["unhealthy"] / HOUR_S, 4),
            unreported_gpu_hours=round(acc["unreported"] * 60 / HOUR_S, 4),
            alert_affected_gpu_hours=round(acc["alerted"] / HOUR_S, 4),
            energy_kwh=round(acc["joules"] / 3.6e6, 4),
            energy_source=energy_source(int(acc["measured"]), int(acc["estimated"])),
            energy_coverage=(
                round(acc["covered_s"] / acc["counted_s"], 3) if acc["counted_s"] else None
            ),
        )
        for name, acc in sorted(per.items())
    ]


LeasedWindow = tuple[str, int, str, int, float, float]
"""(tenant, lease id, host, GPU index, start, stop) of one booked GPU window."""


def leased_windows(
    conn: sqlite3.Connection, since_ts: float, end_ts: float, tenant: str | None
) -> list[LeasedWindow]:
    """(tenant, lease id, host, GPU index, start, stop) of every booked GPU window inside
    [since, end), for one tenant or all; ordered by lease, host and GPU."""
    rows = conn.execute(
        "SELECT l.tenant, ls.lease_id, ls.host, ls.gpu_index, max(ls.start_ts, :s),"
        " min(ls.end_ts, :e) FROM lease_slots ls JOIN leases l ON l.id = ls.lease_id"
        " WHERE ls.end_ts > :s AND ls.start_ts < :e AND ls.end_ts > ls.start_ts"
        " AND (:t IS NULL OR l.tenant = :t) ORDER BY ls.lease_id, ls.host, ls.gpu_index",
        {"s": since_ts, "e": end_ts, "t": tenant},
    )
    windows: list[LeasedWindow] = rows.fetchall()
    return windows


def _readings(
    conn: sqlite3.Connection, windows: list[LeasedWindow]
) -> dict[tuple[int, str, int], tuple[float, int, int]]:
    """(lease, host, gpu) → (Σ avg·n, Σ n, minutes with a reading), in one query joining
    the windows (as JSON) to the rollups on their primary key."""
    return utilisation_in_windows(conn, [w[1:] for w in windows])


def _bad_intervals(
    conn: sqlite3.Connection, slots: set[tuple[str, int]], until_ts: float
) -> dict[tuple[str, int], list[list[float]]]:
    """(host, gpu) → merged [start, end) intervals when it was down or lost (see module)."""
    hosts = sorted({h for h, _ in slots})
    if not hosts:
        return {}
    host_down: dict[str, list[list[float]]] = defaultdict(list)
    lost: dict[tuple[str, int], list[list[float]]] = defaultdict(list)
    for host, index, kind, _message, ts in events_of_kinds(
        conn, HEALTH_EVENTS, until_ts=until_ts, hosts=hosts
    ):
        downs = host_down[host]
        if kind == "host_down" and not (downs and downs[-1][1] == math.inf):
            downs.append([ts, math.inf])
        elif kind == "host_up":
            if downs and downs[-1][1] == math.inf:
                downs[-1][1] = ts
            for (h, _i), spans in lost.items():
                if h == host and spans[-1][1] == math.inf:
                    spans[-1][1] = ts
        elif kind == "gpu_lost" and index is not None:
            spans = lost[(host, index)]
            if not (spans and spans[-1][1] == math.inf):
                spans.append([ts, math.inf])
    for (host, index), spans in lost.items():
        for span in spans:
            back = first_reading_ts(conn, host, index, span[0], inclusive=False)
            if back is not None:
                span[1] = min(span[1], back)
    out = {}
    for host, index in slots:
        merged = _merge([*host_down.get(host, []), *lost.get((host, index), [])])
        if merged:
            out[(host, index)] = merged
    return out


def _merge(spans: list[list[float]]) -> list[list[float]]:
    """Overlapping or touching [start, end) spans joined, so no second is counted twice."""
    merged: list[list[float]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return merged


class CriticalAlertSpans(Protocol):
    """Where leased slots were under an open critical alert: (host, gpu) → the [start,
    end) spans (unmerged; `math.inf` for one still open) of the alerts that could overlap
    [since, until). The alerts layer answers it (`alerts.history.critical_alert_spans`):
    leases sit below alerts and read no alert table."""

    def __call__(
        self,
        conn: sqlite3.Connection,
        slots: set[tuple[str, int]],
        since_ts: float,
        until_ts: float,
    ) -> Mapping[tuple[str, int], list[list[float]]]: ...


def _alert_intervals(
    alert_spans: CriticalAlertSpans,
    conn: sqlite3.Connection,
    slots: set[tuple[str, int]],
    since_ts: float,
    until_ts: float,
) -> dict[tuple[str, int], list[list[float]]]:
    """(host, gpu) → merged [start, end) spans under an open critical alert (see module)."""
    found = alert_spans(conn, slots, since_ts, until_ts)
    return {slot: _merge(spans) for slot, spans in found.items()}


def _overlap(spans: Iterable[list[float]], start: float, stop: float) -> float:
    return sum((max(0.0, min(stop, b) - max(start, a)) for a, b in spans), 0.0)


CSV_COLUMNS = tuple(TenantUsage.__dataclass_fields__)


def usage_csv(rows: list[TenantUsage]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return out.getvalue()


def usage_json(rows: list[TenantUsage]) -> str:
    return json.dumps({"tenants": [asdict(r) for r in rows], "method": METHOD}, indent=2)


METHOD = (
    "gpu_hours: booked slot windows clipped to [since, min(until, now)); util_pct_avg:"
    " gpu_minute util_pct_avg weighted by util_pct_n over those windows; unhealthy_gpu_hours:"
    " host_down..host_up and gpu_lost..(host_up or next reading) events; unreported_gpu_hours:"
    " leased GPU-minutes with no stored reading (includes unhealthy time and console downtime);"
    " alert_affected_gpu_hours: leased GPU-hours while a critical alert was firing or"
    " acknowledged (alert_history; open ones up to now) on that GPU, or on its host with no"
    " gpu label, overlapping alerts merged per GPU; energy_kwh: per leased window NVML's"
    " energy counter where reported, else minute mean board power x 60 s (energy_source:"
    " measured, estimated or mixed; energy_coverage: share of counted time with a reading)"
)
