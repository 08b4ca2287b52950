"""Choosing GPU slots for a request: pure functions over the fleet's topology and the set
of slots that cannot be used, no SQL (the caller reads those inside its transaction).

Rules, in order:
  1. fewest nodes;
  2. then inside one rack, else one leaf switch, else one site (a job's all-reduce runs
     over the fabric, and a rack or leaf keeps it off the spine);
  3. best fit: the smallest group (rack, leaf...) that still fits, and for partial
     requests the most fragmented nodes first, so whole nodes and whole racks stay free
     for the whole-node requests that need them.
Whole-node requests take only nodes with every GPU free. A placed lease never mixes GPU
models (a job runs at the pace of its slowest GPU); without a model asked for, the models
are tried smallest free pool first, the best fit again.

A locality ("node", "rack", "leaf") makes "one group" a requirement instead of a
preference: each group of that level is a candidate on its own, so a request that fits in
one rack only on more nodes than the fleet-wide fewest still finds that rack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import hostlist

from opsconsole.errors import LeaseError
from opsconsole.leases.model import GpuSlot, Placement

LEVELS = ("rack", "leaf", "site")


class Locality(StrEnum):
    """How close together every GPU of a lease must be; ANY prefers close, insists on
    nothing."""

    ANY = "any"
    LEAF = "leaf"
    RACK = "rack"
    NODE = "node"


LOCALITIES: tuple[Locality, ...] = tuple(Locality)


@dataclass(frozen=True, slots=True)
class PlacementHost:
    """A host as placement sees it (built from config.Host)."""

    name: str
    site: str
    rack: str
    leaf: str | None
    gpus: int
    model: str | None = None

    def group(self, level: str) -> str:
        if level == "leaf":  # racks without a known leaf share none with other racks
            return self.leaf or f"(no leaf: {self.rack})"
        if level == "node":
            return self.name
        return str(getattr(self, level))


def free_map(
    hosts: Iterable[PlacementHost], unavailable: Mapping[str, Iterable[int]]
) -> dict[PlacementHost, list[int]]:
    """Free GPU indexes per host (hosts with none left out). `unavailable`: host → indexes
    leased, drained or unhealthy in the window."""
    out: dict[PlacementHost, list[int]] = {}
    for host in hosts:
        taken = unavailable.get(host.name) or ()
        free = [i for i in range(host.gpus) if i not in taken]
        if free:
            out[host] = free
    return out


def place_request(
    hosts: Iterable[PlacementHost],
    unavailable: Mapping[str, Iterable[int]],
    *,
    gpus: int | None = None,
    nodes: int | None = None,
    locality: Locality = Locality.ANY,
) -> Placement:
    """Place `gpus` GPUs or `nodes` whole nodes on hosts of one GPU model (and, with a
    `locality`, within one node, rack or leaf switch)."""
    free = free_map(hosts, unavailable)
    by_model: dict[str, dict[PlacementHost, list[int]]] = defaultdict(dict)
    for host, indexes in free.items():
        by_model[host.model or "unknown model"][host] = indexes

    def place(pool: Mapping[PlacementHost, list[int]]) -> Placement:
        if locality != Locality.ANY:
            return place_within(pool, locality, gpus=gpus, nodes=nodes)
        return place_nodes(pool, nodes) if nodes is not None else place_gpus(pool, gpus or 0)

    if len(by_model) <= 1:
        return place(free)
    failures = []
    for model, pool in sorted(by_model.items(), key=lambda kv: (_gpu_count(kv[1]), kv[0])):
        try:
            placement = place(pool)
        except LeaseError as exc:
            failures.append((_gpu_count(pool), model, str(exc)))
            continue
        return Placement(placement.slots, f"{model}: {placement.explanation}")
    _count, model, message = max(failures)
    raise LeaseError(f"{message} ({model}, the model with most free; one GPU model per lease)")


def _gpu_count(pool: Mapping[PlacementHost, list[int]]) -> int:
    return sum(len(indexes) for indexes in pool.values())


def place_within(
    free: Mapping[PlacementHost, list[int]],
    level: str,
    *,
    gpus: int | None = None,
    nodes: int | None = None,
) -> Placement:
    """The whole request inside one group of `level` ("node", "rack" or "leaf"): every
    group that can hold it is a candidate; the one needing the fewest nodes wins, then the
    best fit (fewest free there), then the name. Within it the usual rules apply."""
    groups = _group(free, level)
    best: tuple[int, int, str] | None = None  # (nodes needed, free GPUs or 0, group)
    most, most_key = -1, ""  # the largest placement one group allows, for a refusal
    for key in sorted(groups):
        members = groups[key]
        if nodes is not None:
            size = sum(1 for h in members if len(free[h]) == h.gpus)
            candidate = (size, 0, key) if size >= nodes else None
        else:
            counts = sorted((len(free[h]) for h in members), reverse=True)
            size = sum(counts)
            candidate = (_min_nodes(counts, gpus or 0), size, key) if size >= (gpus or 0) else None
        if candidate is not None and (best is None or candidate < best):
            best = candidate
        if size > most:
            most, most_key = size, key
    if best is not None:
        pool = {h: free[h] for h in groups[best[-1]]}
        return place_nodes(pool, nodes) if nodes is not None else place_gpus(pool, gpus or 0)
    if nodes is not None:
        whole = [h for h in free if len(free[h]) == h.gpus]
        if len(whole) < nodes:
            raise LeaseError(_short_of_nodes(free, whole, nodes))
        names = [h.name for h in groups.get(most_key, ()) if len(free[h]) == h.gpus]
        raise LeaseError(
            f"cannot place {nodes} whole node(s) within one {level}: at most {max(most, 0)}"
            f" whole node(s) free in one {level}{_in_group(level, most_key, names)}"
        )
    total = sum(len(idx) for idx in free.values())
    if total < (gpus or 0):
        raise LeaseError(_short_of_gpus(free, total, gpus or 0))
    names = [h.name for h in groups.get(most_key, ())]
    raise LeaseError(
        f"cannot place {gpus} GPU(s) within one {level}: at most {max(most, 0)} free in one"
        f" {level}{_in_group(level, most_key, names)}"
    )


def _in_group(level: str, key: str, names: Sequence[str]) -> str:
    """ " (rack sg1-r02: sg1-r02-n[01-04])", or " (sg1-r01-n03)" for a node."""
    if not names:
        return ""
    if level == "node":
        return f" ({names[0]})"
    return f" ({level} {key}: {hostlist.collect_hostlist(sorted(names))})"


def place_nodes(free: Mapping[PlacementHost, list[int]], nodes: int) -> Placement:
    """`nodes` whole nodes: in the best-fitting rack, else leaf, else site, else anywhere."""
    whole = sorted((h for h, idx in free.items() if len(idx) == h.gpus), key=lambda h: h.name)
    if len(whole) < nodes:
        raise LeaseError(_short_of_nodes(free, whole, nodes))
    for level in LEVELS:
        groups = _group(whole, level)
        fitting = [(len(g), key) for key, g in groups.items() if len(g) >= nodes]
        if fitting:
            size, key = min(fitting)
            chosen = _fill_fewest_groups(groups[key], nodes)
            why = f"best fit: {size} whole nodes free there" if size > nodes else "exact fit"
            where = _where(chosen, level, key)
            return _placement(chosen, free, f"{nodes} whole node(s) {where} ({why})")
    chosen = _fill_fewest_groups(whole, nodes)
    sites = sorted({h.site for h in chosen})
    return _placement(
        chosen, free, f"{nodes} whole node(s) across sites {', '.join(sites)} (no one site fits)"
    )


def place_gpus(free: Mapping[PlacementHost, list[int]], gpus: int) -> Placement:
    """`gpus` GPUs on the fewest nodes, then the tightest topology group, then best fit."""
    total = sum(len(idx) for idx in free.values())
    if total < gpus:
        raise LeaseError(_short_of_gpus(free, total, gpus))
    counts = sorted((len(idx) for idx in free.values()), reverse=True)
    need_nodes = _min_nodes(counts, gpus)
    rack_free: defaultdict[str, int] = defaultdict(int)
    for host, idx in free.items():
        rack_free[host.rack] += len(idx)
    if need_nodes == 1:
        # A part-used node before a whole one (whole nodes stay free), then best fit:
        # the fullest node that still fits, in the fullest rack.
        host = min(
            (h for h, idx in free.items() if len(idx) >= gpus),
            key=lambda h: (len(free[h]) == h.gpus, len(free[h]), rack_free[h.rack], h.name),
        )
        left = len(free[host]) - gpus
        why = "exact fit" if left == 0 else f"best fit, {left} GPU(s) left free there"
        return _placement([host], free, f"{gpus} GPU(s) on {host.name} ({why})", gpus)
    hosts = list(free)
    for level in LEVELS:
        groups = _group(hosts, level)
        fitting = []
        for key, members in groups.items():
            top = sorted((len(free[h]) for h in members), reverse=True)[:need_nodes]
            if sum(top) >= gpus:
                fitting.append((sum(len(free[h]) for h in members), key))
        if fitting:
            _size, key = min(fitting)
            chosen = _pick_partial(groups[key], free, gpus, need_nodes)
            where = _where(chosen, level, key)
            return _placement(
                chosen, free, f"{gpus} GPUs on {need_nodes} nodes {where} (fewest nodes)", gpus
            )
    chosen = _pick_partial(hosts, free, gpus, need_nodes)
    sites = sorted({h.site for h in chosen})
    return _placement(
        chosen,
        free,
        f"{gpus} GPUs on {need_nodes} nodes across sites {', '.join(sites)} (no one site fits)",
        gpus,
    )


def _min_nodes(counts_desc: Sequence[int], gpus: int) -> int:
    running = 0
    for n, count in enumerate(counts_desc, start=1):
        running += count
        if running >= gpus:
            return n
    raise AssertionError("caller checked the total")


def _pick_partial(
    hosts: Sequence[PlacementHost], free: Mapping[PlacementHost, list[int]], gpus: int, k: int
) -> list[PlacementHost]:
    """k hosts covering `gpus`, each time the least-free host that still lets the remaining
    picks finish: 12 GPUs become 6 + 6 on two part-used nodes, not a whole node + 4.

    Invariant: the `left` largest free counts in the pool cover `need`, so some host (at
    worst the largest) always qualifies."""
    pool = sorted(hosts, key=lambda h: (len(free[h]), h.name))  # least free first
    chosen: list[PlacementHost] = []
    need = gpus
    for left in range(k, 0, -1):
        desc = sorted((len(free[h]) for h in pool), reverse=True)
        top_others = sum(desc[: left - 1])  # the best the other picks can do...
        top_with = sum(desc[:left])
        for i, host in enumerate(pool):
            n = len(free[host])
            # ...unless this host is itself among those largest ones.
            rest = 0 if left == 1 else (top_with - n if n >= desc[left - 2] else top_others)
            if n + rest >= need:
                chosen.append(pool.pop(i))
                need -= min(n, need)
                break
        if need == 0:
            break
    return chosen


def _fill_fewest_groups(hosts: Sequence[PlacementHost], nodes: int) -> list[PlacementHost]:
    """Take hosts from the biggest leaf, then the biggest rack within it, so the chosen set
    spans as few leaves and racks as possible; names break ties for repeatable results."""
    per_leaf: defaultdict[str, int] = defaultdict(int)
    per_rack: defaultdict[str, int] = defaultdict(int)
    for h in hosts:
        per_leaf[h.group("leaf")] += 1
        per_rack[h.rack] += 1

    def order(h: PlacementHost) -> tuple[int, str, int, str, str]:
        leaf = h.group("leaf")
        return (-per_leaf[leaf], leaf, -per_rack[h.rack], h.rack, h.name)

    return sorted(hosts, key=order)[:nodes]


def _group(hosts: Iterable[PlacementHost], level: str) -> dict[str, list[PlacementHost]]:
    groups: dict[str, list[PlacementHost]] = defaultdict(list)
    for host in hosts:
        groups[host.group(level)].append(host)
    return groups


def _where(chosen: Sequence[PlacementHost], level: str, key: str) -> str:
    racks = sorted({h.rack for h in chosen})
    if level == "rack":
        return f"in rack {key}"
    return f"in {level} {key} across racks {', '.join(racks)}"


def _placement(
    chosen: Sequence[PlacementHost],
    free: Mapping[PlacementHost, list[int]],
    explanation: str,
    gpus: int | None = None,
) -> Placement:
    """Slots from the chosen hosts: all their free GPUs, or `gpus` of them, lowest index
    first, taking from the fullest hosts first (the order `_pick_partial` chose)."""
    slots: list[GpuSlot] = []
    need = gpus
    for host in chosen:
        indexes = free[host] if need is None else free[host][:need]
        slots.extend(GpuSlot(host.name, i) for i in indexes)
        if need is not None:
            need -= len(indexes)
    return Placement(tuple(sorted(slots)), explanation)


def _short_of_nodes(
    free: Mapping[PlacementHost, list[int]], whole: Sequence[PlacementHost], nodes: int
) -> str:
    partial = sum(len(idx) for h, idx in free.items() if len(idx) < h.gpus)
    where = f" ({hostlist.collect_hostlist([h.name for h in whole])})" if whole else ""
    rest = f", plus {partial} GPU(s) free on part-used nodes" if partial else ""
    return f"cannot place {nodes} whole node(s): only {len(whole)} whole node(s) free{where}{rest}"


def _short_of_gpus(free: Mapping[PlacementHost, list[int]], total: int, gpus: int) -> str:
    per_rack: dict[str, int] = defaultdict(int)
    for host, idx in free.items():
        per_rack[host.rack] += len(idx)
    top = sorted(per_rack.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{rack} {n}" for rack, n in top[:5]) + (", …" if len(top) > 5 else "")
    return f"cannot place {gpus} GPU(s): only {total} free" + (f" ({shown})" if top else "")
