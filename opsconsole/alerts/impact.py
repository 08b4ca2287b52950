"""Lease impact: which tenants and leases an alert touches, and the lease facts the lease
rules read (leases ending soon, leased GPUs idle in the rollups).

Why the tables are read here and not through `opsconsole.leases`: the alerts layer sits
beside the leases layer, not above it, and it needs two narrow reads that run often (the
engine refreshes them every 30 s; `label_impact` runs every poll on what they returned).
Each read is ONE query over an index the schema already has: the slots booked now come
from `lease_slots_window`, the idle minutes from `gpu_minute`'s primary key, one seek per
leased GPU. Measured on a 2-core box, 1,000 hosts x 8 GPUs, 4,108 GPUs leased (52,608
bookings), 2.4 M rollup rows: `lease_view` ~20 ms, `idle_leased_gpus` over 4 h ~55 ms
with 5 % of leased GPUs idle (~0.6 s if every leased GPU were idle: each idle one's 240
minutes are read), `label_impact` ~0.3 ms for 50 conditions, ~8 ms for 1,000 host-down
conditions.

Slots are positions (host, GPU index), as in the leases layer, so an alert on a swapped
card still names the tenant who holds the slot.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlite_utils

from opsconsole.alerts.conditions import Condition
from opsconsole.alerts.rules import HOUR_S, AlertSettings
from opsconsole.errors import StoreError
from opsconsole.store.transaction import database_path, describe_error

IDLE_COVERAGE = 0.8
"""Share of the window's minutes that must hold a utilisation reading before a GPU can be
called idle: a host that was down or unmonitored for hours is not "idle", it is unknown."""
SUMMARY_LISTED = 5
"""Tenants or leases named in a summary before "+N more"; the labels carry them all."""

Slot = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SlotHolder:
    """The lease holding a GPU slot now."""

    lease_id: int
    tenant: str
    end_ts: float
    """The lease's agreed end."""


@dataclass(frozen=True, slots=True)
class EndingLease:
    """An active lease whose agreed end falls within the view's horizon."""

    lease_id: int
    tenant: str
    end_ts: float
    hosts: tuple[str, ...]
    gpus: int


@dataclass(frozen=True)
class LeaseView:
    """Who holds what at `as_of_ts`: per slot, per host and per rack (racks from the
    store's inventory), and the active leases ending within the horizon. Immutable, so
    the poller's thread may read it while the store thread builds the next one."""

    as_of_ts: float
    slots: Mapping[Slot, SlotHolder] = field(default_factory=dict)
    hosts: Mapping[str, tuple[SlotHolder, ...]] = field(default_factory=dict)
    racks: Mapping[str, tuple[SlotHolder, ...]] = field(default_factory=dict)
    ending: tuple[EndingLease, ...] = ()

    def holders(self, labels: Mapping[str, str]) -> tuple[SlotHolder, ...]:
        """The leases a condition with these labels touches: the slot's holder for a GPU,
        every lease on the host for a host, every lease in the rack for a rack."""
        host = labels.get("host")
        if host is not None:
            gpu = labels.get("gpu")
            if gpu is None:
                return self.hosts.get(host, ())
            try:
                holder = self.slots.get((host, int(gpu)))
            except ValueError:
                return ()
            return (holder,) if holder is not None else ()
        rack = labels.get("rack")
        return self.racks.get(rack, ()) if rack is not None else ()


@dataclass(frozen=True, slots=True)
class IdleGpu:
    host: str
    gpu_index: int
    minutes: int
    """Minutes with a utilisation reading in the window."""
    util_pct_max: float
    """The busiest of those minutes (its average utilisation)."""


@dataclass(frozen=True)
class AlertContext:
    """What the lease rules and `label_impact` need beyond the live state, read from the
    store by `build_context`. Every field may be empty: the rules then do not fire."""

    leases: LeaseView | None = None
    idle_gpus: Mapping[Slot, IdleGpu] = field(default_factory=dict)


_HELD_NOW = """
SELECT s.host, s.gpu_index, s.lease_id, l.tenant, l.end_ts, h.rack
FROM lease_slots s
JOIN leases l ON l.id = s.lease_id
LEFT JOIN hosts h ON h.name = s.host
WHERE s.end_ts > :now AND s.start_ts <= :now
  AND l.released_ts IS NULL AND l.cancelled_ts IS NULL
"""
# Bookings are cut on release and emptied on cancel, so the window alone is enough; the
# marker checks only keep a hand-edited file from naming a tenant who has left.


def lease_change_mark(db: sqlite_utils.Database) -> int:
    """A number that moves whenever a tenant, lease or drain changes: the id of the newest
    audit row (every such change appends one in its own transaction). One row by primary
    key, so the engine can afford it every interval."""
    row = _read(db, "SELECT id FROM audit_head WHERE one = 1", {}, "reading the lease mark")
    return int(row[0][0]) if row else 0


def lease_view(db: sqlite_utils.Database, now_ts: float, horizon_s: float) -> LeaseView:
    """Which lease and tenant hold each (host, GPU index) slot at `now_ts`, per host and
    per rack, and the active leases whose agreed end is within `horizon_s`. One query."""
    rows = _read(db, _HELD_NOW, {"now": now_ts}, "reading leases for alerts")
    slots: dict[Slot, SlotHolder] = {}
    by_host: dict[str, dict[int, SlotHolder]] = {}
    by_rack: dict[str, dict[int, SlotHolder]] = {}
    ending: dict[int, tuple[SlotHolder, set[str], list[int]]] = {}
    interned: dict[int, SlotHolder] = {}
    until_ts = now_ts + horizon_s
    for host, gpu_index, lease_id, tenant, end_ts, rack in rows:
        holder = interned.get(lease_id)
        if holder is None:
            holder = interned[lease_id] = SlotHolder(lease_id, tenant, end_ts)
        slots[(host, gpu_index)] = holder
        by_host.setdefault(host, {})[lease_id] = holder
        if rack is not None:
            by_rack.setdefault(rack, {})[lease_id] = holder
        if end_ts <= until_ts:
            entry = ending.setdefault(lease_id, (holder, set(), [0]))
            entry[1].add(host)
            entry[2][0] += 1
    return LeaseView(
        now_ts,
        slots,
        {host: _ordered(held.values()) for host, held in by_host.items()},
        {rack: _ordered(held.values()) for rack, held in by_rack.items()},
        tuple(
            EndingLease(h.lease_id, h.tenant, h.end_ts, tuple(sorted(hosts)), count[0])
            for h, hosts, count in sorted(ending.values(), key=lambda e: e[0].end_ts)
        ),
    )


_IDLE = """
WITH held AS (
    SELECT s.host, s.gpu_index FROM lease_slots s
    JOIN leases l ON l.id = s.lease_id
    WHERE s.end_ts > :now AND s.start_ts <= :since
      AND l.released_ts IS NULL AND l.cancelled_ts IS NULL
)
SELECT g.host, g.gpu_index, count(*), max(m.util_pct_avg)
FROM held g
CROSS JOIN gpu_minute m ON m.host = g.host AND m.gpu_index = g.gpu_index
WHERE m.minute_ts >= :since AND m.minute_ts < :now AND m.util_pct_n > 0
  AND NOT EXISTS (
    SELECT 1 FROM gpu_minute b
    WHERE b.host = g.host AND b.gpu_index = g.gpu_index
      AND b.minute_ts >= :since AND b.minute_ts < :now
      AND b.util_pct_n > 0 AND b.util_pct_avg >= :util
  )
GROUP BY g.host, g.gpu_index
HAVING count(*) >= :need
"""
# CROSS JOIN fixes the join order (held slots outside, minutes inside): the store never
# runs ANALYZE, and without statistics the planner otherwise scans every minute of the
# window through `gpu_minute_minute_ts` (12 s at 1,000 hosts instead of 0.1 s; see
# bench/alerts.py). A slot has at most one booking spanning the window (bookings never
# overlap), so `held` needs no DISTINCT. NOT EXISTS stops at a busy GPU's first busy
# minute, so only idle candidates are read in full: about one index seek per leased GPU
# plus the idle ones' minutes.


def idle_leased_gpus(
    db: sqlite_utils.Database, now_ts: float, util_pct: float, hours: float
) -> dict[Slot, IdleGpu]:
    """Leased GPUs idle for the last `hours`: booked for the whole window, and every
    stored minute in it below `util_pct` (each minute's average) while the minutes with a
    reading cover at least IDLE_COVERAGE of the window. A GPU with no readings is not
    idle: nobody knows what it did. One query."""
    window_s = hours * HOUR_S
    since = now_ts - window_s
    need = max(1, int(IDLE_COVERAGE * window_s / 60.0))
    params = {"now": now_ts, "since": since, "util": util_pct, "need": need}
    rows = _read(db, _IDLE, params, "reading idle GPUs for alerts")
    return {
        (host, gpu_index): IdleGpu(host, gpu_index, minutes, busiest or 0.0)
        for host, gpu_index, minutes, busiest in rows
    }


def build_context(
    db: sqlite_utils.Database,
    now_ts: float,
    settings: AlertSettings | None = None,
    *,
    idle_gpus: Mapping[Slot, IdleGpu] | None = None,
) -> AlertContext:
    """The leases and idle GPUs the rules and `label_impact` need, for the rules' windows
    in `settings`. Two queries; the idle one is skipped when its rule is off, or when
    `idle_gpus` passes an earlier answer (it is the dearer query, over hours of rollups,
    and changes by the minute at most)."""
    settings = settings or AlertSettings()
    ending = settings.rules.get("lease_ending_soon")
    view = lease_view(db, now_ts, (ending.window_s or 0.0) if ending else 0.0)
    if idle_gpus is not None:
        return AlertContext(view, idle_gpus)
    idle_rule = settings.rules.get("gpu_leased_idle")
    idle: dict[Slot, IdleGpu] = {}
    if idle_rule is not None and idle_rule.window_s and idle_rule.threshold is not None:
        idle = idle_leased_gpus(db, now_ts, idle_rule.threshold, idle_rule.window_s / HOUR_S)
    return AlertContext(view, idle)


_SUFFIX = re.compile(r" \(tenants? [^()]*\)$")


def label_impact(
    conditions: Iterable[Condition], view: LeaseView | AlertContext | None
) -> list[Condition]:
    """The conditions with `tenant` and `leases` labels (comma-joined, sorted) naming who
    holds the slots each touches, and the summary ending "(tenant acme, lease 12)".

    GPU conditions name the slot's holder; host conditions (host down, IB port, missing
    GPU, host key) every lease on the host; rack conditions (rack power) every lease in the
    rack. Neither label is an identity label, so fingerprints do not change. Labels from
    an earlier labelling (alerts resumed from the store) are replaced, not stacked. An
    `AlertContext` is taken for its lease view; without one, nothing changes.
    """
    if isinstance(view, AlertContext):
        view = view.leases
    if view is None:
        return list(conditions)
    return [_labelled(cond, view) for cond in conditions]


def _labelled(cond: Condition, view: LeaseView) -> Condition:
    if "lease" in cond.labels:  # a lease rule names its own lease and tenant
        return cond
    holders = view.holders(cond.labels)
    if not holders and "tenant" not in cond.labels and "leases" not in cond.labels:
        return cond
    labels = {k: v for k, v in cond.labels.items() if k not in ("tenant", "leases")}
    summary = cond.summary
    if "(tenant" in summary:
        summary = _SUFFIX.sub("", summary)
    if holders:
        tenants = sorted({h.tenant for h in holders})
        lease_ids = sorted({h.lease_id for h in holders})
        labels["tenant"] = ",".join(tenants)
        labels["leases"] = ",".join(map(str, lease_ids))
        summary += f" ({_named('tenant', tenants)}{'; ' if len(tenants) > 1 else ', '}"
        summary += f"{_named('lease', lease_ids)})"
    # built directly, not through dataclasses.replace: this runs for every condition of
    # every poll, and the fingerprint is carried over, never recomputed
    return Condition(
        cond.rule, cond.severity, cond.kind, labels, summary,
        cond.for_s, cond.keep_firing_for_s, cond.from_readings, cond.fingerprint,
    )  # fmt: skip


def _named(noun: str, values: list) -> str:
    shown = ", ".join(map(str, values[:SUMMARY_LISTED]))
    more = f" +{len(values) - SUMMARY_LISTED} more" if len(values) > SUMMARY_LISTED else ""
    return f"{noun}{'s' if len(values) > 1 else ''} {shown}{more}"


def _ordered(holders: Iterable[SlotHolder]) -> tuple[SlotHolder, ...]:
    return tuple(sorted(holders, key=lambda h: h.lease_id))


def _read(db: sqlite_utils.Database, sql: str, params: dict, doing: str) -> list[tuple]:
    try:
        return db.conn.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(describe_error(database_path(db), exc, doing)) from None
