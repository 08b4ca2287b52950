"""What the capacity analysis reads, as plain frozen records, and the store reads that
fill them. The analysis itself (`report.build_report`) never touches SQL, a socket or
Textual, so the CLI, the console and the tests hand it the same kind of data.

Where each figure comes from:
  * bookings, drains and tenants: the leases layer's `LeaseReader`;
  * health: the caller's live state, or the stored events (`health_from_events`);
  * rack power and IB ports: live readings when the caller has them (the console, or the
    CLI's `--poll`); otherwise power is the average of the most recent minute rollups and
    IB ports are only what the stored `link_down`/`link_up` events say;
  * clock-event shares: the rollups' `clock_event_share_power/_thermal` columns, which
    keep SW power cap / HW power brake / HW slowdown and SW / HW thermal per minute;
  * utilisation: the rollups' per-minute `util_pct_avg`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from opsconsole.leases.booking import read_snapshot
from opsconsole.leases.health import health_from_events
from opsconsole.leases.reader import Booking, LeaseReader, lease_reader
from opsconsole.store.queries import (
    events_of_kinds,
    gpu_mean_power,
    host_clock_events,
    slot_utilisation,
)

MINUTE_S = 60
ROLLUP_REUSE_S = 60.0


@dataclass(frozen=True, slots=True)
class DrainSpan:
    """An operator's drain of a node (gpu_index None) or one GPU, [start_ts, until_ts)."""

    drain_id: int
    host: str
    gpu_index: int | None
    start_ts: float
    until_ts: float | None
    """When it stops holding (lapses or was lifted); None: until an operator lifts it."""
    reason: str = ""

    def holds(self, start_ts: float, end_ts: float) -> bool:
        return self.start_ts < end_ts and (self.until_ts is None or self.until_ts > start_ts)


@dataclass(frozen=True, slots=True)
class GpuUsage:
    """One GPU's utilisation over the idle window, from the minute rollups."""

    minutes: int
    """Minutes with at least one utilisation reading."""
    util_max_pct: float | None
    """The highest per-minute average; None without readings."""


@dataclass(frozen=True, slots=True)
class ClockEvents:
    """One host's clock-event readings over the throttle window: GPU-samples whose reasons
    were known, and how many of them were in power-cap or thermal events."""

    samples: float
    power_samples: float
    thermal_samples: float


@dataclass(frozen=True, slots=True)
class PortReading:
    port: str
    """"mlx5_0/1"."""
    state: str | None
    """"ACTIVE", "DOWN"...; None when not read."""
    rate_gbps: float | None
    errors_per_s: float | None
    """Summed error counters per second; None when no rate is known yet."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HostReadings:
    """One host's power and IB ports, live or from the store, as one record."""

    status: str
    """"fresh", "stale", "down", "pending" (live), or "stored"."""
    gpu_power_w: float | None
    """Sum of the GPUs' power; None when nothing is known."""
    gpus_reporting_power: int
    ports: tuple[PortReading, ...] | None
    """None when the ports are not known (host not fresh, or no live readings)."""
    node_power_w: float | None = None
    """The node's own draw from its BMC (a collector plugin); replaces the GPU sum plus
    the rack's per-host overhead in rack power when known."""


@dataclass(frozen=True)
class Readings:
    """Everything measured, for the whole fleet, with where it came from."""

    hosts: Mapping[str, HostReadings]
    power_source: str
    """"live" or "rollups, last 5 min"."""
    ports_source: str
    """"live" or "stored link events"."""
    rates_known: bool
    """Whether IB error-counter rates were measured (live, after two looks)."""


@dataclass(frozen=True)
class StoreFacts:
    """What the store says at `now_ts`: leases, drains, health, rollup aggregates."""

    now_ts: float
    bookings: tuple[Booking, ...]
    drains: tuple[DrainSpan, ...]
    health: Mapping[object, str]
    usage: Mapping[tuple[str, int], GpuUsage]
    clock_events: Mapping[str, ClockEvents]
    rollup_power: Mapping[str, HostReadings] = field(default_factory=dict)
    link_down: Mapping[str, tuple[PortReading, ...]] = field(default_factory=dict)
    """Ports whose last stored link event is a link_down, per host."""
    tenants: tuple[str, ...] = ()
    rollups_ts: float = 0.0
    """When the rollup aggregates were read (they may be reused for a minute)."""


def read_store(
    db: sqlite_utils.Database,
    *,
    now_ts: float,
    horizon_s: float,
    idle_window_s: float,
    throttle_window_s: float,
    power_window_s: float,
    link_lookback_s: float,
    gpus: Sequence[tuple[str, int]],
    reuse: StoreFacts | None = None,
) -> StoreFacts:
    """Every read of the report in one read transaction (one consistent snapshot).

    `reuse`: facts read earlier whose rollup aggregates (utilisation, clock events, rollup
    power) are taken again while younger than `ROLLUP_REUSE_S`. Rollups are written once a
    minute, and aggregating hours of them for a thousand hosts takes seconds, so a screen
    that refreshes every few seconds reads them only once a minute."""
    fresh = reuse is not None and 0 <= now_ts - reuse.rollups_ts < ROLLUP_REUSE_S
    with read_snapshot(db) as conn:
        leases = lease_reader(conn)
        bookings = leases.bookings(now_ts - idle_window_s, now_ts + horizon_s)
        drains = _drains(leases, now_ts, now_ts + horizon_s)
        health = health_from_events(db, now_ts)
        if fresh and reuse is not None:
            usage, clock, power = reuse.usage, reuse.clock_events, reuse.rollup_power
            rollups_ts = reuse.rollups_ts
        else:
            since = now_ts - idle_window_s
            held = {
                (b.host, b.gpu_index) for b in bookings if b.start_ts <= since < now_ts < b.end_ts
            }
            usage = _usage(conn, sorted(held), since, now_ts)
            clock = _clock_events(conn, now_ts - throttle_window_s, now_ts, gpus)
            power = _rollup_power(conn, now_ts - power_window_s, now_ts)
            rollups_ts = now_ts
        links = _link_down(conn, now_ts - link_lookback_s, now_ts)
        tenants = leases.tenant_names()
    return StoreFacts(
        now_ts, bookings, drains, health, usage, clock, power, links, tenants, rollups_ts
    )


def _drains(leases: LeaseReader, since_ts: float, until_ts: float) -> tuple[DrainSpan, ...]:
    out = []
    for row in leases.drains_before(until_ts):
        ends = [t for t in (row.end_ts, row.lifted_ts) if t is not None]
        until = min(ends) if ends else None
        if until is not None and until <= since_ts:
            continue
        out.append(
            DrainSpan(row.drain_id, row.host, row.gpu_index, row.start_ts, until, row.reason)
        )
    return tuple(out)


def _usage(
    conn: sqlite3.Connection, slots: list[tuple[str, int]], since_ts: float, until_ts: float
) -> dict[tuple[str, int], GpuUsage]:
    """Minutes with a reading and the busiest minute of each slot in `slots` (the GPUs
    leased through the whole idle window: the only ones idleness is judged for)."""
    found = slot_utilisation(conn, slots, since_ts, until_ts)
    return {slot: GpuUsage(minutes, busiest) for slot, (minutes, busiest) in found.items()}


def _clock_events(
    conn: sqlite3.Connection, since_ts: float, until_ts: float, gpus: Sequence[tuple[str, int]]
) -> dict[str, ClockEvents]:
    """Per host over the fleet's GPUs: clock-event readings and their power-cap and
    thermal shares."""
    found = host_clock_events(conn, gpus, since_ts, until_ts)
    return {h: ClockEvents(n, power, thermal) for h, (n, power, thermal) in found.items()}


def _rollup_power(
    conn: sqlite3.Connection, since_ts: float, until_ts: float
) -> dict[str, HostReadings]:
    """Per host: the sum over its GPUs of each GPU's mean power in the window."""
    per_host: dict[str, list[float]] = {}
    for host, _index, watts in gpu_mean_power(conn, since_ts, until_ts):
        per_host.setdefault(host, []).append(watts)
    return {
        host: HostReadings("stored", sum(values), len(values), None)
        for host, values in per_host.items()
    }


_PORT = re.compile(r"^IB (\S+) ")


def _link_down(
    conn: sqlite3.Connection, since_ts: float, until_ts: float
) -> dict[str, tuple[PortReading, ...]]:
    """Ports whose newest link event in the window is `link_down` (the console writes
    "IB mlx5_0/1 DOWN (Polling)" and "IB mlx5_0/1 ACTIVE")."""
    latest: dict[tuple[str, str], tuple[str, str, float]] = {}
    events = events_of_kinds(
        conn, ("link_down", "link_up"), since_ts=since_ts, until_ts=until_ts, until_inclusive=True
    )
    for host, _index, kind, message, ts in events:
        match = _PORT.match(message or "")
        if match:
            latest[(host, match.group(1))] = (kind, message or "", ts)
    out: dict[str, list[PortReading]] = {}
    for (host, port), (kind, message, _ts) in sorted(latest.items()):
        if kind == "link_down":
            state = message.split()[2] if len(message.split()) > 2 else "DOWN"
            out.setdefault(host, []).append(
                PortReading(port, state, None, None, "from a stored link_down event")
            )
    return {host: tuple(ports) for host, ports in out.items()}
