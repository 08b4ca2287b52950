"""The capacity report: every section built from plain inputs, then one ranked list of
bottlenecks. `capacity_report()` reads the store and builds it; `build_report()` takes the
facts already read, for callers (and tests) that have them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from opsconsole.capacity import bottlenecks as findings
from opsconsole.capacity.fabric import leaf_fabric_rows
from opsconsole.capacity.idle import idle_rows
from opsconsole.capacity.inputs import Readings, StoreFacts, read_store
from opsconsole.capacity.model import NO_BUDGET, CapacityReport
from opsconsole.capacity.occupancy import UNKNOWN_MODEL, occupancy_rows, slot_states
from opsconsole.capacity.power import rack_power_rows
from opsconsole.capacity.runway import DAY_S, runway
from opsconsole.config import Fleet, Host
from opsconsole.config.capacity import CapacityConfig
from opsconsole.errors import CapacityError
from opsconsole.leases.handover import HANDOVER_STATES, NodeHandover, node_states

STORED_HEALTH = "stored events (host_down, gpu_lost)"


def resolve_site(fleet: Fleet, site: str | None) -> str | None:
    """The configured spelling of `site` (any case), or CapacityError naming the sites."""
    if site is None:
        return None
    for name in fleet.sites:
        if name.lower() == site.strip().lower():
            return name
    known = ", ".join(fleet.sites) or "none configured"
    raise CapacityError(f'unknown site "{site}" (sites: {known})')


def horizon_s(settings: CapacityConfig, days: int) -> float:
    """How far ahead the store is read: the runway's days, whole weeks, the placement
    window, whichever reaches furthest."""
    weeks_s = 7 * DAY_S * math.ceil(days / 7)
    return max((days + 1) * DAY_S, weeks_s, settings.placement_window_h * 3600.0)


def capacity_report(
    db: sqlite_utils.Database,
    fleet: Fleet,
    *,
    now_ts: float,
    site: str | None = None,
    days: int | None = None,
    readings: Readings | None = None,
    health: Mapping[object, str] | None = None,
    health_source: str = "live state",
    reuse: StoreFacts | None = None,
) -> CapacityReport:
    """Read the store once and build the report. `readings` and `health` are the caller's
    live ones; without them, rollups and stored events stand in and the report says so.
    `reuse`: the facts of an earlier report, whose rollup aggregates may be taken again."""
    settings = fleet.config.capacity
    days = settings.runway_days if days is None else days
    if days < 1:
        raise CapacityError("--days must be at least 1")
    site = resolve_site(fleet, site)
    facts = read_facts(db, fleet, now_ts, days, reuse)
    report = build_report(
        fleet,
        facts,
        readings=readings,
        health=health,
        health_source=health_source if health is not None else STORED_HEALTH,
        site=site,
        days=days,
    )
    counts = handover_counts(fleet, node_states(db, fleet, now_ts=now_ts), site)
    return dataclasses.replace(report, handover=counts)


def handover_counts(
    fleet: Fleet, states: Mapping[str, NodeHandover], site: str | None
) -> dict[str, dict[str, int]]:
    """Site → {validating, cleaning, failed-validation: nodes}, every site listed."""
    out: dict[str, dict[str, int]] = {}
    for host in fleet.hosts:
        if site is not None and host.site != site:
            continue
        counts = out.setdefault(host.site, {str(s): 0 for s in HANDOVER_STATES})
        state = states.get(host.name)
        if state is not None and state.state in HANDOVER_STATES:
            counts[str(state.state)] += 1
    return out


def read_facts(
    db: sqlite_utils.Database,
    fleet: Fleet,
    now_ts: float,
    days: int,
    reuse: StoreFacts | None = None,
) -> StoreFacts:
    """The store reads a report over `days` needs, windows from `[capacity]`."""
    settings = fleet.config.capacity
    return read_store(
        db,
        now_ts=now_ts,
        horizon_s=horizon_s(settings, days),
        idle_window_s=settings.idle_hours * 3600.0,
        throttle_window_s=settings.throttle_window_h * 3600.0,
        power_window_s=settings.power_window_min * 60.0,
        link_lookback_s=settings.ib_link_lookback_h * 3600.0,
        reuse=reuse,
        gpus=[(h.name, i) for h in fleet.hosts for i in range(h.expected_gpus)],
    )


def stored_readings(facts: StoreFacts, settings: CapacityConfig) -> Readings:
    return Readings(
        facts.rollup_power,
        f"minute rollups, last {settings.power_window_min:g} min",
        "stored link events",
        False,
    )


def build_report(
    fleet: Fleet,
    facts: StoreFacts,
    *,
    readings: Readings | None = None,
    health: Mapping[object, str] | None = None,
    health_source: str = STORED_HEALTH,
    site: str | None = None,
    days: int | None = None,
) -> CapacityReport:
    settings = fleet.config.capacity
    days = settings.runway_days if days is None else days
    now_ts = facts.now_ts
    hosts: list[Host] = [h for h in fleet.hosts if site is None or h.site == site]
    live = readings is not None
    readings = readings if readings is not None else stored_readings(facts, settings)
    health = facts.health if health is None else health
    window_end = now_ts + settings.placement_window_h * 3600.0
    states = slot_states(hosts, facts.bookings, facts.drains, health, now_ts, window_end)
    occupancy = occupancy_rows(hosts, states)
    racks = {h.rack: fleet.racks[h.rack] for h in hosts}
    power = rack_power_rows(hosts, racks, readings, facts.clock_events)
    fabric = leaf_fabric_rows(
        hosts,
        readings if live else None,
        facts.link_down,
        states.holders,
        settings.ib_errors_per_s,
    )
    idle = idle_rows(states.holders, facts.usage, settings, now_ts)
    future = [b for b in facts.bookings if b.end_ts > now_ts]
    series = runway(hosts, future, facts.drains, states.unhealthy, now_ts, days)
    rack_gpus: dict[str, int] = {}
    for host in hosts:
        rack_gpus[host.rack] = rack_gpus.get(host.rack, 0) + host.expected_gpus
    host_site = {h.name: h.site for h in hosts}
    ranked = findings.rank(
        [
            *findings.power_findings(power, rack_gpus, settings),
            *findings.fabric_findings(fabric, settings),
            *findings.runway_findings(series, future, facts.drains, host_site, settings, now_ts),
            *findings.fragmentation_findings(occupancy, settings),
            *findings.throttle_findings(power, rack_gpus, settings),
            *findings.idle_findings(idle, settings),
        ]
    )
    sources = {
        "health": health_source,
        "power": readings.power_source,
        "ib_ports": readings.ports_source,
        "ib_error_rates": "live, between two looks"
        if readings.rates_known
        else "not measured (needs live readings twice)",
        "clock_events": f"minute rollups, last {settings.throttle_window_h:g} h",
        "utilisation": f"minute rollups, last {settings.idle_hours:g} h",
        "leases": "store (lease_slots, drains)",
    }
    return CapacityReport(
        now_ts=now_ts,
        site=site,
        days=days,
        sources=sources,
        occupancy=tuple(occupancy),
        power=tuple(power),
        fabric=tuple(fabric),
        idle=tuple(idle),
        free_healthy={o.name: o.free_gpus for o in occupancy if o.level == "site"},
        runway=tuple(series),
        bottlenecks=tuple(ranked),
        thresholds=settings.model_dump(exclude={"ib_error_counters"}),
        notes=tuple(_notes(hosts, racks, live, facts)),
    )


def _notes(hosts: list[Host], racks: dict[str, Any], live: bool, facts: StoreFacts) -> list[str]:
    notes = []
    unbudgeted = [name for name, rack in racks.items() if rack.power_budget_kw is None]
    if unbudgeted:
        notes.append(f"{NO_BUDGET} for {len(unbudgeted)} rack(s): {', '.join(unbudgeted)}")
    no_model = sorted(h.name for h in hosts if not h.gpu_model)
    if no_model:
        notes.append(
            f"{len(no_model)} host(s) with no gpu_model in their host class are counted as"
            f' "{UNKNOWN_MODEL}" (never mixed with known models in a lease)'
        )
    if not live:
        notes.append(
            "IB ports: only stored link_down events are known without live readings"
            " (below-rate ports and error rates need the console or --poll)"
        )
    if not facts.usage:
        notes.append(
            "no utilisation rollups for GPUs leased through the idle window:"
            " idle GPUs cannot be judged"
        )
    if not facts.clock_events:
        notes.append("no clock-event rollups in the throttle window")
    return notes
