"""The findings of every section turned into one ranked list, each with its measured
figure, the threshold it crossed, why it matters and what to do.

Ranking: critical before warning; then by GPUs affected (the capacity at stake), then by
kind (power, fabric, runway, fragmentation, throttle, idle: the order in which they stop
work), then by name, so equal findings always come out in the same order.

Critical: a rack at or over its power budget, a port down under tenants' leases, a
fragmented site where no leaf can take the target lease, an over-committed day within
`runway_soon_days`. Everything else that crosses a threshold is a warning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import hostlist

from opsconsole.capacity.inputs import DrainSpan
from opsconsole.capacity.model import (
    SEVERITY_ORDER,
    Bottleneck,
    LeafFabric,
    Occupancy,
    RackPower,
    RunwaySeries,
    Target,
    TenantIdle,
)
from opsconsole.capacity.runway import DAY_S
from opsconsole.config.alerts import Severity
from opsconsole.config.capacity import CapacityConfig
from opsconsole.leases.reader import Booking

KIND_ORDER = ("power", "fabric", "runway", "fragmentation", "throttle", "idle")


def _hosts(names: Iterable[str]) -> str:
    names = sorted(set(names))
    return hostlist.collect_hostlist(names) if names else "-"


def _hours(hours: float) -> str:
    """ "4 h", or "3 min" under an hour."""
    return f"{hours:g} h" if hours >= 1 else f"{round(hours * 60):g} min"


def _names(items: Sequence[object], limit: int = 4) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def power_findings(
    rows: Iterable[RackPower], rack_gpus: Mapping[str, int], settings: CapacityConfig
) -> list[Bottleneck]:
    out = []
    for row in rows:
        if row.use_pct is None or row.measured_kw is None or row.budget_kw is None:
            continue
        partial = f" ({row.note})" if row.note.startswith("partial") else ""
        if row.use_pct >= settings.power_budget_pct:
            over = row.use_pct >= 100.0
            excess_kw = row.measured_kw - row.budget_kw
            headroom_kw = -excess_kw
            if over:
                action = (
                    f"shed {excess_kw:.1f} kW on {row.rack}: move a lease off it or lower the"
                    " GPU power limits there; place no new lease on it"
                )
            else:
                action = (
                    f"keep new leases off {row.rack} ({headroom_kw:.1f} kW headroom left);"
                    " place them on racks with room"
                )
            out.append(
                Bottleneck(
                    rank=0,
                    kind="power",
                    severity=Severity.CRITICAL if over else Severity.WARNING,
                    subject=f"{row.site} {row.rack}",
                    title=(
                        f"{row.site} {row.rack}: {row.measured_kw:.1f} kW of"
                        f" {row.budget_kw:.1f} kW budget ({row.use_pct:.0f} %)"
                    ),
                    measured=f"{row.measured_kw:.1f} kW, {row.use_pct:.0f} % of budget{partial}",
                    measured_value=round(row.use_pct, 1),
                    threshold=f"{settings.power_budget_pct:g} % of {row.budget_kw:.1f} kW",
                    threshold_value=settings.power_budget_pct,
                    why=(
                        "over budget the rack's feed can trip and take every job on it down;"
                        " near it, one more busy node does"
                    ),
                    action=action,
                    gpus_affected=rack_gpus.get(row.rack, 0),
                    target=Target("rack", row.rack),
                )
            )
    return out


def throttle_findings(
    rows: Iterable[RackPower], rack_gpus: Mapping[str, int], settings: CapacityConfig
) -> list[Bottleneck]:
    out = []
    for row in rows:
        for share, what, why, action in (
            (
                row.power_cap_share_pct,
                "power-capped",
                "GPUs held at their power limit run at lower clocks: jobs run slower"
                " than the tenants paid for",
                f"check the GPU power limits and the rack budget of {row.rack};"
                " spread the busiest leases over racks with headroom",
            ),
            (
                row.thermal_share_pct,
                "in thermal slowdown",
                "heat is cutting clocks: the cooling of this rack is short",
                f"check cooling on {row.rack} (inlet temperature, fans, CDU);"
                " place no new lease there until it is fixed",
            ),
        ):
            if share is None or share < settings.throttle_share_pct or share == 0:
                continue
            gpus = rack_gpus.get(row.rack, 0)
            out.append(
                Bottleneck(
                    rank=0,
                    kind="throttle",
                    severity=Severity.WARNING,
                    subject=f"{row.site} {row.rack}",
                    title=f"{row.site} {row.rack}: {share:.0f} % of GPU-time {what}",
                    measured=f"{share:.1f} % of GPU-time over {_hours(settings.throttle_window_h)}",
                    measured_value=round(share, 1),
                    threshold=f"{settings.throttle_share_pct:g} % of GPU-time",
                    threshold_value=settings.throttle_share_pct,
                    why=why,
                    action=action,
                    gpus_affected=round(gpus * share / 100.0),
                    target=Target("rack", row.rack),
                )
            )
    return out


def fabric_findings(rows: Iterable[LeafFabric], settings: CapacityConfig) -> list[Bottleneck]:
    out = []
    for row in rows:
        if not row.issues:
            continue
        parts = []
        if row.ports_down:
            parts.append(f"{row.ports_down} port(s) down")
        if row.ports_below_rate:
            parts.append(f"{row.ports_below_rate} below rate")
        if row.ports_with_errors:
            parts.append(f"{row.ports_with_errors} with errors")
        hosts = sorted({i.host for i in row.issues})
        who = (
            f" — leases of {', '.join(row.tenants)} cross them"
            if row.tenants
            else " — no lease on them now"
        )
        ports = [f"{i.host} {i.port}" for i in row.issues if i.port != "-"]
        action = f"check optics and cables of {_names(sorted(set(ports)))}"
        if row.tenants:
            action += f"; tell {', '.join(row.tenants)} (lease {_names(list(row.leases))})"
        action += f"; drain {_hosts(hosts)} before placing multi-node leases on {row.leaf}"
        critical = row.ports_down > 0 and bool(row.tenants)
        out.append(
            Bottleneck(
                rank=0,
                kind="fabric",
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                subject=f"{row.site} {row.leaf}",
                title=(
                    f"{row.site} {row.leaf}: IB {', '.join(parts)} on {len(hosts)} host(s){who}"
                ),
                measured=", ".join(parts) + f" on {_hosts(hosts)}",
                measured_value=float(len({(i.host, i.port) for i in row.issues})),
                threshold=(
                    "every port ACTIVE at its host class's ib_rate_gbps, errors"
                    f" ≤ {settings.ib_errors_per_s:g}/s"
                ),
                threshold_value=0.0,
                why=(
                    "an all-reduce runs at the pace of its slowest link: every multi-node job"
                    " crossing these ports slows down or fails"
                ),
                action=action,
                gpus_affected=row.affected_gpus,
                # one host: open it (its ports are in the host view); several: the leaf
                target=Target("host", hosts[0]) if len(hosts) == 1 else Target("leaf", row.leaf),
            )
        )
    return out


def idle_findings(rows: Iterable[TenantIdle], settings: CapacityConfig) -> list[Bottleneck]:
    out = []
    for row in rows:
        if row.idle_gpus < settings.idle_gpus_min:
            continue
        leases = list(row.leases)
        out.append(
            Bottleneck(
                rank=0,
                kind="idle",
                severity=Severity.WARNING,
                subject=row.tenant,
                title=(
                    f"{row.tenant}: {row.idle_gpus} leased GPUs idle for"
                    f" {_hours(settings.idle_hours)} on {_hosts(row.idle_hosts)}"
                ),
                measured=(
                    f"{row.idle_gpus} of {row.leased_gpus} leased GPUs below"
                    f" {settings.idle_util_pct:g} % utilisation for {_hours(settings.idle_hours)}"
                ),
                measured_value=float(row.idle_gpus),
                threshold=f"{settings.idle_gpus_min} idle GPUs",
                threshold_value=float(settings.idle_gpus_min),
                why="sold capacity doing nothing, while other tenants wait for GPUs",
                action=(
                    f"ask {row.tenant} whether lease {_names(leases)} is still needed;"
                    " offer to shorten it and resell the GPUs"
                ),
                gpus_affected=row.idle_gpus,
                target=Target("lease", str(leases[0])) if leases else Target("tenant", row.tenant),
            )
        )
    return out


def fragmentation_findings(rows: Sequence[Occupancy], settings: CapacityConfig) -> list[Bottleneck]:
    out = []
    target_gpus = settings.target_lease_gpus
    for row in rows:
        if row.level != "leaf" or row.scattered_free_gpus < settings.fragmented_gpus_min:
            continue
        leaf_level = next(lv for lv in row.largest if lv.level == "leaf")
        whole_gpus = _whole_node_gpus(row, leaf_level.whole_nodes)
        if whole_gpus >= target_gpus:
            continue
        site_row = next((r for r in rows if r.level == "site" and r.name == row.site), None)
        site_fits = False
        if site_row is not None:
            site_leaf = next(lv for lv in site_row.largest if lv.level == "leaf")
            site_fits = _whole_node_gpus(site_row, site_leaf.whole_nodes) >= target_gpus
        plan = row.consolidation
        if plan is not None:
            action = (
                f"consolidate leases on {plan.rack}: its {plan.part_used_nodes} part-used nodes"
                f" hold {plan.gpus_in_use} booked GPUs that fit on"
                f" {plan.part_used_nodes - plan.whole_nodes_freed} nodes, freeing"
                f" {plan.whole_nodes_freed} whole node(s)"
            )
            target = Target("rack", plan.rack)
        else:
            action = "place partial requests on part-used nodes first, or wait for leases to end"
            target = Target("leaf", row.name)
        out.append(
            Bottleneck(
                rank=0,
                kind="fragmentation",
                severity=Severity.WARNING if site_fits else Severity.CRITICAL,
                subject=f"{row.site} {row.name}",
                title=(
                    f"{row.site} {row.name}: {row.free_whole_nodes} whole nodes free,"
                    f" {row.scattered_free_gpus} scattered GPUs — a {target_gpus}-GPU lease"
                    " cannot be placed"
                ),
                measured=(
                    f"{row.scattered_free_gpus} of {row.free_gpus} free GPUs on part-used"
                    f" nodes; {row.free_whole_nodes} whole node(s) free"
                ),
                measured_value=float(row.scattered_free_gpus),
                threshold=(
                    f"{settings.fragmented_gpus_min} scattered GPUs while a {target_gpus}-GPU"
                    " whole-node lease does not fit in the leaf"
                ),
                threshold_value=float(settings.fragmented_gpus_min),
                why=(
                    "distributed training leases whole nodes: scattered GPUs cannot be sold"
                    " to it" + ("" if site_fits else f", and no leaf of {row.site} can take one")
                ),
                action=action,
                gpus_affected=row.scattered_free_gpus,
                target=target,
            )
        )
    return out


def _whole_node_gpus(row: Occupancy, whole_nodes: int) -> int:
    """GPUs in `whole_nodes` nodes of this scope (its hosts' usual size)."""
    per_node = row.total_gpus // row.hosts if row.hosts else 0
    return whole_nodes * per_node


def runway_findings(
    series: Iterable[RunwaySeries],
    bookings: Sequence[Booking],
    drains: Sequence[DrainSpan],
    host_site: Mapping[str, str],
    settings: CapacityConfig,
    now_ts: float,
) -> list[Bottleneck]:
    out = []
    for s in series:
        if s.kind != "site" or s.first_over_committed is None:
            continue
        day = next(d for d in s.days if d.date == s.first_over_committed)
        day_end = day.start_ts + DAY_S
        in_days = max(0, int((day.start_ts - now_ts) // DAY_S) + 1) if day.start_ts > now_ts else 0
        holding = [
            d for d in drains if host_site.get(d.host) == s.name and d.holds(day.start_ts, day_end)
        ]
        drained = {(d.host, d.gpu_index) for d in holding}
        hit = sorted(
            {
                (b.lease_id, b.tenant)
                for b in bookings
                if host_site.get(b.host) == s.name
                and b.start_ts < day_end
                and b.end_ts > day.start_ts
                and ((b.host, None) in drained or (b.host, b.gpu_index) in drained)
            }
        )
        parts = []
        if holding:
            targets = _hosts(d.host for d in holding)
            reasons = sorted({d.reason for d in holding if d.reason})
            why = f' ("{_names(reasons, 2)}")' if reasons else ""
            parts.append(f"move the {len(holding)} drain(s) of {targets}{why} off {day.date}")
        if hit:
            parts.append(
                "or move lease "
                + _names([f"{lid} ({tenant})" for lid, tenant in hit])
                + " to healthy GPUs"
            )
        if not parts:
            parts.append("repair the unhealthy GPUs before then, or move reservations later")
        soon = in_days <= settings.runway_soon_days
        when = "today" if in_days == 0 else f"in {in_days} day(s)"
        out.append(
            Bottleneck(
                rank=0,
                kind="runway",
                severity=Severity.CRITICAL if soon else Severity.WARNING,
                subject=s.name,
                title=(
                    f"{s.name}: over-committed on {day.date} ({when}): {day.committed_gpus}"
                    f" GPUs booked, {day.capacity_gpus} healthy and undrained"
                ),
                measured=(
                    f"{day.committed_gpus} committed vs {day.capacity_gpus} available,"
                    f" {day.over_by} over"
                ),
                measured_value=float(day.over_by),
                threshold="committed ≤ healthy, undrained GPUs on every day",
                threshold_value=0.0,
                why=(
                    "a lease due then cannot get the GPUs it was promised: they are drained"
                    " or broken"
                ),
                action="; ".join(parts),
                gpus_affected=day.over_by,
                target=Target("lease", str(hit[0][0])) if hit else Target("site", s.name),
            )
        )
    return out


def rank(findings: Iterable[Bottleneck]) -> list[Bottleneck]:
    ordered = sorted(
        findings,
        key=lambda b: (
            SEVERITY_ORDER[b.severity],
            -b.gpus_affected,
            KIND_ORDER.index(b.kind),
            b.subject,
        ),
    )
    return [dataclasses.replace(b, rank=i) for i, b in enumerate(ordered, start=1)]
