"""Leased GPUs doing nothing, per tenant, from the minute rollups.

A GPU is idle when the lease holding it now has held it for the whole idle window
(`[capacity] idle_hours`), its rollups cover at least `idle_min_coverage` of the window's
minutes, and no minute averaged `idle_util_pct` or more. A GPU without enough readings is
counted as "no data", never as idle: a host the console could not see may have been busy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from opsconsole.capacity.inputs import GpuUsage
from opsconsole.capacity.model import TenantIdle
from opsconsole.config.capacity import CapacityConfig
from opsconsole.leases.reader import Booking


def idle_rows(
    holders: Mapping[tuple[str, int], Booking],
    usage: Mapping[tuple[str, int], GpuUsage],
    settings: CapacityConfig,
    now_ts: float,
) -> list[TenantIdle]:
    window_s = settings.idle_hours * 3600.0
    needed_minutes = max(1, round(settings.idle_min_coverage * window_s / 60.0))
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"leased": 0, "idle": 0, "busy": 0, "no_data": 0, "new": 0}
    )
    idle_hosts: dict[str, set[str]] = defaultdict(set)
    idle_leases: dict[str, set[int]] = defaultdict(set)
    for (host, index), booking in sorted(holders.items()):
        counts = per[booking.tenant]
        counts["leased"] += 1
        if booking.start_ts > now_ts - window_s:
            counts["new"] += 1
            continue
        gpu = usage.get((host, index))
        if gpu is None or gpu.minutes < needed_minutes or gpu.util_max_pct is None:
            counts["no_data"] += 1
        elif gpu.util_max_pct < settings.idle_util_pct:
            counts["idle"] += 1
            idle_hosts[booking.tenant].add(host)
            idle_leases[booking.tenant].add(booking.lease_id)
        else:
            counts["busy"] += 1
    return [
        TenantIdle(
            tenant=tenant,
            leased_gpus=c["leased"],
            idle_gpus=c["idle"],
            busy_gpus=c["busy"],
            no_data_gpus=c["no_data"],
            too_new_gpus=c["new"],
            idle_hosts=tuple(sorted(idle_hosts[tenant])),
            leases=tuple(sorted(idle_leases[tenant])),
        )
        for tenant, c in sorted(per.items())
    ]
