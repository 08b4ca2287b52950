"""Who holds which GPU now, per site, leaf switch and rack: totals, free whole nodes, the
largest lease each locality level could take, and how much free capacity is scattered.

"Free" is what the leases layer would place a new lease on: healthy, not drained and not
booked at any moment of the placement window (a lease placed now runs for a while, so a
reservation starting in three hours already takes its GPUs). The largest-lease figures
come from the leases layer's own free map (node and rack figures placed with its
`place_within`), so the report and an allocation agree on what fits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from opsconsole.capacity.inputs import DrainSpan
from opsconsole.capacity.model import Consolidation, LargestLease, Occupancy
from opsconsole.config import Host
from opsconsole.errors import LeaseError
from opsconsole.leases.booking import normalise_health
from opsconsole.leases.placement import PlacementHost, free_map, place_within
from opsconsole.leases.reader import Booking

UNKNOWN_MODEL = "unknown model"
LEVELS_BELOW = {"rack": ("node", "rack"), "leaf": ("node", "rack", "leaf")}
LEVELS_BELOW["site"] = (*LEVELS_BELOW["leaf"], "site")
PLACED_LEVELS = ("node", "rack")
"""Levels whose largest lease is placed by the leases layer for its explanation. A leaf or
site can hold hundreds of part-free nodes, and placing across them costs seconds; their
figure is the same sum `place_within` checks a group against."""


@dataclass(frozen=True)
class SlotStates:
    """host → GPU indexes in each state at `now_ts` (sets may overlap)."""

    leased: Mapping[str, frozenset[int]]
    reserved: Mapping[str, frozenset[int]]
    drained: Mapping[str, frozenset[int]]
    unhealthy: Mapping[str, frozenset[int]]
    holders: Mapping[tuple[str, int], Booking]
    """(host, GPU) → the booking holding it now."""

    def unavailable(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = defaultdict(set)
        for source in (self.leased, self.reserved, self.drained, self.unhealthy):
            for host, indexes in source.items():
                out[host].update(indexes)
        return out


def slot_states(
    hosts: Sequence[Host],
    bookings: Iterable[Booking],
    drains: Iterable[DrainSpan],
    health: Mapping[object, str],
    now_ts: float,
    window_end_ts: float,
) -> SlotStates:
    by_name = {h.name: h for h in hosts}
    leased: dict[str, set[int]] = defaultdict(set)
    reserved: dict[str, set[int]] = defaultdict(set)
    holders: dict[tuple[str, int], Booking] = {}
    for b in bookings:
        if b.host not in by_name or b.end_ts <= now_ts or b.start_ts >= window_end_ts:
            continue
        if b.start_ts <= now_ts:
            leased[b.host].add(b.gpu_index)
            holders[(b.host, b.gpu_index)] = b
        else:
            reserved[b.host].add(b.gpu_index)
    drained: dict[str, set[int]] = defaultdict(set)
    for d in drains:
        host = by_name.get(d.host)
        if host is None or not d.holds(now_ts, window_end_ts):
            continue
        drained[d.host].update(range(host.expected_gpus) if d.gpu_index is None else [d.gpu_index])
    unhealthy: dict[str, set[int]] = defaultdict(set)
    for name, entries in normalise_health(health).items():
        host = by_name.get(name)
        if host is None:
            continue
        if None in entries:
            unhealthy[name].update(range(host.expected_gpus))
        unhealthy[name].update(i for i in entries if i is not None)
    for name in list(reserved):  # a slot leased now is not also "reserved later"
        reserved[name] -= leased.get(name, set())
    return SlotStates(
        _frozen(leased), _frozen(reserved), _frozen(drained), _frozen(unhealthy), holders
    )


def _frozen(sets: Mapping[str, set[int]]) -> dict[str, frozenset[int]]:
    return {host: frozenset(indexes) for host, indexes in sets.items() if indexes}


def placement_host(host: Host) -> PlacementHost:
    return PlacementHost(
        host.name, host.site, host.rack, host.leaf, host.expected_gpus, host.gpu_model
    )


def occupancy_rows(hosts: Sequence[Host], states: SlotStates) -> list[Occupancy]:
    """One row per site, then its leaf switches, then its racks, in config order."""
    pool = free_map([placement_host(h) for h in hosts], states.unavailable())
    free = {p.name: (p, idx) for p, idx in pool.items()}
    rows: list[Occupancy] = []
    sites = list(dict.fromkeys(h.site for h in hosts))
    for site in sites:
        site_hosts = [h for h in hosts if h.site == site]
        rows.append(_row("site", site, site, site_hosts, states, free))
        for leaf in dict.fromkeys(_leaf(h) for h in site_hosts):
            leaf_hosts = [h for h in site_hosts if _leaf(h) == leaf]
            rows.append(_row("leaf", leaf, site, leaf_hosts, states, free))
        for rack in dict.fromkeys(h.rack for h in site_hosts):
            rack_hosts = [h for h in site_hosts if h.rack == rack]
            rows.append(_row("rack", rack, site, rack_hosts, states, free))
    return rows


def _leaf(host: Host) -> str:
    return placement_host(host).group("leaf")


def _row(
    level: str,
    name: str,
    site: str,
    hosts: Sequence[Host],
    states: SlotStates,
    free: Mapping[str, tuple[PlacementHost, list[int]]],
) -> Occupancy:
    total = sum(h.expected_gpus for h in hosts)
    counts = dict.fromkeys(("leased", "unhealthy", "drained", "reserved", "free"), 0)
    heads = dict.fromkeys(("leased", "reserved", "drained", "unhealthy"), 0)
    pool: dict[PlacementHost, list[int]] = {}
    whole = scattered = 0
    for host in hosts:
        sets = {
            "leased": states.leased.get(host.name, frozenset()),
            "unhealthy": states.unhealthy.get(host.name, frozenset()),
            "drained": states.drained.get(host.name, frozenset()),
            "reserved": states.reserved.get(host.name, frozenset()),
        }
        for key in heads:
            heads[key] += len(sets[key])
        for index in range(host.expected_gpus):
            part = next((k for k, s in sets.items() if index in s), "free")
            counts[part] += 1
        entry = free.get(host.name)
        if entry is not None:
            placement, indexes = entry
            pool[placement] = indexes
            if len(indexes) == host.expected_gpus:
                whole += 1
            else:
                scattered += len(indexes)
    free_gpus = counts["free"]
    levels = LEVELS_BELOW[level]
    return Occupancy(
        level=level,
        name=name,
        site=site,
        hosts=len(hosts),
        total_gpus=total,
        healthy_gpus=total - heads["unhealthy"],
        leased_gpus=heads["leased"],
        reserved_gpus=heads["reserved"],
        drained_gpus=heads["drained"],
        free_gpus=free_gpus,
        free_whole_nodes=whole,
        scattered_free_gpus=scattered,
        fragmentation_pct=100.0 * scattered / free_gpus if free_gpus else None,
        largest=tuple(largest_lease(pool, lv) for lv in levels),
        bar=counts,
        unknown_model_hosts=sum(1 for h in hosts if not h.gpu_model),
        consolidation=best_consolidation(hosts, states) if level != "rack" else None,
    )


def largest_lease(free: Mapping[PlacementHost, list[int]], level: str) -> LargestLease:
    """The most GPUs, and the most whole nodes, one group of `level` holds free, within
    one GPU model; for a node or rack the GPU figure is placed by the leases layer."""
    by_model: dict[str, dict[PlacementHost, list[int]]] = defaultdict(dict)
    for host, indexes in free.items():
        by_model[host.model or UNKNOWN_MODEL][host] = indexes
    best_gpus: tuple[int, str, str] = (0, "", "")
    best_whole: tuple[int, str] = (0, "")
    for model in sorted(by_model):
        pool = by_model[model]
        groups: dict[str, list[PlacementHost]] = defaultdict(list)
        for host in pool:
            groups[host.group(level)].append(host)
        for key in sorted(groups):
            members = groups[key]
            gpus = sum(len(pool[h]) for h in members)
            whole = sum(1 for h in members if len(pool[h]) == h.gpus)
            if gpus > best_gpus[0]:
                best_gpus = (gpus, key, model)
            if whole > best_whole[0]:
                best_whole = (whole, key)
    gpus, where, model = best_gpus
    explanation = ""
    if gpus and level in PLACED_LEVELS:
        try:
            explanation = place_within(by_model[model], level, gpus=gpus).explanation
        except LeaseError as exc:  # cannot happen if the figures agree; say so, do not crash
            explanation = f"not placeable: {exc}"
    elif gpus:
        nodes = sum(1 for h in by_model[model] if h.group(level) == where)
        explanation = f"{gpus} GPUs free on {nodes} node(s) in {level} {where} ({model})"
    return LargestLease(level, gpus, where, best_whole[0], best_whole[1], explanation)


def best_consolidation(hosts: Sequence[Host], states: SlotStates) -> Consolidation | None:
    """The rack where packing the leases of part-used nodes onto fewer nodes would free
    the most whole nodes. Only nodes whose used GPUs are all bookings count: a drained or
    broken GPU does not move."""
    best: Consolidation | None = None
    racks: dict[str, list[Host]] = defaultdict(list)
    for host in hosts:
        racks[host.rack].append(host)
    for rack, members in racks.items():
        part_used, in_use, size = 0, 0, 0
        for host in members:
            booked = states.leased.get(host.name, frozenset()) | states.reserved.get(
                host.name, frozenset()
            )
            blocked = states.drained.get(host.name, frozenset()) | states.unhealthy.get(
                host.name, frozenset()
            )
            if blocked or not 0 < len(booked) < host.expected_gpus:
                continue
            part_used += 1
            in_use += len(booked)
            size = max(size, host.expected_gpus)
        if not part_used:
            continue
        freed = part_used - math.ceil(in_use / size)
        candidate = Consolidation(rack, part_used, in_use, freed)
        if freed > 0 and (best is None or freed > best.whole_nodes_freed):
            best = candidate
    return best
