"""The reads other packages need from the lease tables, behind one small protocol.

`leases` owns every SQL statement on its tables (tenants, leases, lease_slots, drains,
audit_log, audit_head and the handover tables); the alert engine and the capacity report
ask through `LeaseReader` instead of writing their own SQL, so the schema lives in one
package. `lease_reader(conn)` gives the implementation over a connection; callers that
read several things in one snapshot (capacity) pass the snapshot's connection.

Each read is one query over an index the schema already has (see bench/alerts.py and
bench/capacity.py for the figures at 1,000 hosts).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HeldSlot:
    """A GPU slot held now by an open lease."""

    host: str
    gpu_index: int
    lease_id: int
    tenant: str
    end_ts: float
    """The lease's agreed end."""


@dataclass(frozen=True, slots=True)
class IdleSlot:
    """A slot leased through a whole window whose stored minutes all stayed below a
    utilisation threshold."""

    host: str
    gpu_index: int
    minutes: int
    """Minutes with a utilisation reading in the window."""
    util_pct_max: float
    """The busiest of those minutes (its average utilisation)."""


@dataclass(frozen=True, slots=True)
class Booking:
    """A slot booked by a lease for [start_ts, end_ts)."""

    lease_id: int
    tenant: str
    host: str
    gpu_index: int
    start_ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class DrainRow:
    """A drain as stored: a node (gpu_index None) or one GPU from `start_ts`, until
    `end_ts` (None: open-ended) or until it was lifted (`lifted_ts`)."""

    drain_id: int
    host: str
    gpu_index: int | None
    start_ts: float
    end_ts: float | None
    lifted_ts: float | None
    reason: str


class LeaseReader(Protocol):
    """What the alert engine and the capacity report read from the leases layer."""

    def change_mark(self) -> int:
        """A number that moves whenever a tenant, lease or drain changes."""
        ...

    def held_slots(self, now_ts: float) -> list[HeldSlot]:
        """Every slot an open (not released, not cancelled) lease holds at `now_ts`."""
        ...

    def idle_held_slots(
        self, now_ts: float, since_ts: float, util_pct: float, need_minutes: int
    ) -> list[IdleSlot]:
        """Slots held by an open lease through [since_ts, now_ts) whose every stored
        minute in it is below `util_pct`, with at least `need_minutes` minutes read."""
        ...

    def tenant_names(self) -> tuple[str, ...]:
        """Every tenant's name, archived ones included, sorted."""
        ...

    def bookings(self, since_ts: float, until_ts: float) -> tuple[Booking, ...]:
        """Non-empty bookings overlapping [since_ts, until_ts), by lease, host, GPU."""
        ...

    def drains_before(self, until_ts: float) -> tuple[DrainRow, ...]:
        """Drains that start before `until_ts` (lifted and lapsed ones included), by id."""
        ...


def lease_reader(conn: sqlite3.Connection) -> LeaseReader:
    """The leases layer's reader over `conn` (a store connection or a read snapshot's)."""
    return _SqlLeaseReader(conn)


_HELD_NOW = """
SELECT s.host, s.gpu_index, s.lease_id, l.tenant, l.end_ts
FROM lease_slots s
JOIN leases l ON l.id = s.lease_id
WHERE s.end_ts > :now AND s.start_ts <= :now
  AND l.released_ts IS NULL AND l.cancelled_ts IS NULL
"""
# Bookings are cut on release and emptied on cancel, so the window alone is enough; the
# marker checks only keep a hand-edited file from naming a tenant who has left.

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
# One query, joining the store's minute rollups: CROSS JOIN fixes the join order (held
# slots outside, minutes inside): the store never runs ANALYZE, and without statistics
# the planner otherwise scans every minute of the window through `gpu_minute_minute_ts`
# (12 s at 1,000 hosts instead of 0.1 s; see bench/alerts.py). A slot has at most one
# booking spanning the window (bookings never overlap), so `held` needs no DISTINCT.
# NOT EXISTS stops at a busy GPU's first busy minute, so only idle candidates are read in
# full: about one index seek per leased GPU plus the idle ones' minutes.


class _SqlLeaseReader:
    """`LeaseReader` over one connection; raw sqlite3 errors go to the caller, who knows
    what it was doing and names it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def change_mark(self) -> int:
        # every tenant, lease or drain change appends an audit row in its own transaction
        row = self._conn.execute("SELECT id FROM audit_head WHERE one = 1").fetchone()
        return int(row[0]) if row else 0

    def held_slots(self, now_ts: float) -> list[HeldSlot]:
        rows = self._conn.execute(_HELD_NOW, {"now": now_ts})
        return [HeldSlot(h, int(i), int(lease), t, float(end)) for h, i, lease, t, end in rows]

    def idle_held_slots(
        self, now_ts: float, since_ts: float, util_pct: float, need_minutes: int
    ) -> list[IdleSlot]:
        params = {"now": now_ts, "since": since_ts, "util": util_pct, "need": need_minutes}
        return [
            IdleSlot(host, int(index), int(minutes), float(busiest or 0.0))
            for host, index, minutes, busiest in self._conn.execute(_IDLE, params)
        ]

    def tenant_names(self) -> tuple[str, ...]:
        return tuple(n for (n,) in self._conn.execute("SELECT name FROM tenants ORDER BY name"))

    def bookings(self, since_ts: float, until_ts: float) -> tuple[Booking, ...]:
        rows = self._conn.execute(
            "SELECT ls.lease_id, l.tenant, ls.host, ls.gpu_index, ls.start_ts, ls.end_ts"
            " FROM lease_slots ls JOIN leases l ON l.id = ls.lease_id"
            " WHERE ls.end_ts > ? AND ls.start_ts < ? AND ls.end_ts > ls.start_ts"
            " ORDER BY ls.lease_id, ls.host, ls.gpu_index",
            (since_ts, until_ts),
        )
        return tuple(Booking(*row) for row in rows)

    def drains_before(self, until_ts: float) -> tuple[DrainRow, ...]:
        rows = self._conn.execute(
            "SELECT id, host, gpu_index, start_ts, end_ts, lifted_ts, reason FROM drains"
            " WHERE start_ts < ? ORDER BY id",
            (until_ts,),
        )
        return tuple(
            DrainRow(drain_id, host, index, start, end, lifted, reason or "")
            for drain_id, host, index, start, end, lifted, reason in rows
        )
