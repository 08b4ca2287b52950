"""What is taken in a window: booked slots, drains, caller-supplied health, a tenant's
peak use. Read inside the caller's transaction, so a check and the write that follows
it see the same database (under BEGIN IMMEDIATE no other writer can slip in between).

Windows are half-open, [start_ts, end_ts): a lease ending at 12:00 and one starting at
12:00 do not overlap. A cancelled lease's bookings are empty (end = start) and match
nothing.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping
from enum import StrEnum

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError, StoreError
from opsconsole.leases.placement import PlacementHost
from opsconsole.leases.times import format_window
from opsconsole.store.transaction import database_path, describe_error


class SlotHealth(StrEnum):
    """Why placement keeps off a node or GPU, from live state or stored events."""

    DOWN = "down"
    """The host is down."""
    CRITICAL = "critical"
    """The GPU fell off or failed."""


Health = Mapping[object, str]
"""{(host, gpu_index) or host: a `SlotHealth` (or its text)}; other values are ignored."""
HEALTH_STATES = frozenset(SlotHealth)

START_GRACE_S = 300.0
"""A start this far in the past is taken as "now" (the time typed, then the time run);
further back is refused: leases are not back-dated."""


@functools.lru_cache(maxsize=8)
def placement_hosts(fleet: Fleet) -> tuple[PlacementHost, ...]:
    """The fleet as placement sees it; cached per Fleet (it is immutable once loaded)."""
    return tuple(
        PlacementHost(h.name, h.site, h.rack, h.leaf, h.expected_gpus, h.gpu_model)
        for h in fleet.hosts
    )


def check_window(start_ts: float, end_ts: float, now_ts: float) -> tuple[float, float]:
    """The window to book, or LeaseError: end after start, not in the past."""
    if end_ts <= start_ts:
        raise LeaseError(f"the end must be after the start ({format_window(start_ts, end_ts)})")
    if end_ts <= now_ts:
        raise LeaseError(f"the window {format_window(start_ts, end_ts)} is in the past")
    if start_ts < now_ts - START_GRACE_S:
        raise LeaseError(
            f"the window {format_window(start_ts, end_ts)} starts in the past;"
            ' start it "now" or later'
        )
    return max(start_ts, now_ts), end_ts


def booked_slots(
    conn: sqlite3.Connection, start_ts: float, end_ts: float, exclude_lease: int | None = None
) -> dict[str, dict[int, int]]:
    """host → {gpu_index: lease id} for every slot booked somewhere in the window."""
    rows = conn.execute(
        "SELECT host, gpu_index, lease_id FROM lease_slots"
        " WHERE end_ts > ? AND start_ts < ? AND end_ts > start_ts AND lease_id != ?",
        (start_ts, end_ts, -1 if exclude_lease is None else exclude_lease),
    )
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for host, index, lease_id in rows:
        out[host][index] = lease_id
    return out


def drained_slots(
    conn: sqlite3.Connection, start_ts: float, end_ts: float
) -> dict[str, dict[int | None, int]]:
    """host → {gpu_index, or None for the whole node: drain id} for drains holding at any
    moment of the window (an open-ended drain holds for every future window)."""
    rows = conn.execute(
        "SELECT host, gpu_index, id FROM drains WHERE start_ts < ?"
        " AND (end_ts IS NULL OR end_ts > ?) AND (lifted_ts IS NULL OR lifted_ts > ?)",
        (end_ts, start_ts, start_ts),
    )
    out: dict[str, dict[int | None, int]] = defaultdict(dict)
    for host, index, drain_id in rows:
        out[host][index] = drain_id
    return out


def normalise_health(health: Health | None) -> dict[str, dict[int | None, str]]:
    """host → {gpu_index or None: state}; anything but down/critical is ignored."""
    out: dict[str, dict[int | None, str]] = defaultdict(dict)
    for key, state in (health or {}).items():
        if state not in HEALTH_STATES:
            continue
        if isinstance(key, tuple):
            out[key[0]][int(key[1])] = state
        else:
            out[str(key)][None] = state
    return out


def slot_exclusion(
    host: str,
    index: int,
    drained: Mapping[str, Mapping[int | None, int]],
    health: Mapping[str, Mapping[int | None, str]],
) -> str | None:
    """Why a slot is excluded ("drained (drain 4)", "down"), or None."""
    host_drains = drained.get(host, {})
    for key in (None, index):
        if key in host_drains:
            return f"drained (drain {host_drains[key]})"
    host_health = health.get(host, {})
    for key in (None, index):
        if key in host_health:
            return host_health[key]
    return None


def excluded_map(
    hosts: tuple[PlacementHost, ...],
    drained: Mapping[str, Mapping[int | None, int]],
    health: Mapping[str, Mapping[int | None, str]],
) -> dict[str, set[int]]:
    """host → GPU indexes that drains or health exclude."""
    out: dict[str, set[int]] = {}
    by_name = {h.name: h for h in hosts}
    for source in (drained, health):
        for host_name, entries in source.items():
            host = by_name.get(host_name)
            if host is None:
                continue
            indexes = out.setdefault(host_name, set())
            if None in entries:
                indexes.update(range(host.gpus))
            indexes.update(i for i in entries if i is not None)
    return out


def merge(*maps: Mapping[str, object]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for mapping in maps:
        for host, indexes in mapping.items():
            out[host].update(indexes)  # type: ignore[arg-type]
    return out


def tenant_peak_gpus(
    conn: sqlite3.Connection,
    tenant: str,
    start_ts: float,
    end_ts: float,
    exclude_lease: int | None = None,
) -> int:
    """Most GPUs the tenant holds at any one moment of the window (a sweep over its
    bookings that overlap it): what the quota is checked against."""
    # A booking never ends after its lease's agreed end, so `l.end_ts > start` keeps the
    # scan inside the (tenant, end_ts) index range however long the history grows.
    rows = conn.execute(
        "SELECT max(ls.start_ts, :s), min(ls.end_ts, :e), count(*) FROM leases l"
        " JOIN lease_slots ls ON ls.lease_id = l.id WHERE l.tenant = :t AND l.end_ts > :s"
        " AND l.id != :x AND ls.end_ts > :s AND ls.start_ts < :e AND ls.end_ts > ls.start_ts"
        " GROUP BY ls.lease_id, ls.start_ts, ls.end_ts",
        {"s": start_ts, "e": end_ts, "t": tenant, "x": exclude_lease or -1},
    )
    changes: list[tuple[float, int]] = []
    for start, end, count in rows:
        changes.append((start, count))
        changes.append((end, -count))
    changes.sort(key=lambda c: (c[0], c[1]))  # ends before starts at the same instant
    peak = held = 0
    for _ts, delta in changes:
        held += delta
        peak = max(peak, held)
    return peak


def lease_tenants(conn: sqlite3.Connection, lease_ids: set[int]) -> dict[int, str]:
    if not lease_ids:
        return {}
    marks = ", ".join("?" for _ in lease_ids)
    return dict(conn.execute(f"SELECT id, tenant FROM leases WHERE id IN ({marks})", [*lease_ids]))


@contextlib.contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees one committed state (WAL snapshot),
    takes no write lock, and nothing done inside can be committed."""
    conn = db.conn
    own = not conn.in_transaction
    try:
        if own:
            conn.execute("BEGIN")
        yield conn
    except sqlite3.Error as exc:
        raise StoreError(describe_error(database_path(db), exc, "reading leases")) from None
    finally:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
