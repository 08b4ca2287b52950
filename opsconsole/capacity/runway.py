"""The lease calendar against healthy capacity, day by day, per site and per GPU model.

For each UTC day (today from now, then whole days) it sweeps the moments where a booking
or a drain starts or ends: committed GPUs are the bookings of active and reserved leases,
available GPUs are the ones healthy now (health is assumed to last; nobody knows when a
broken GPU comes back) and not drained at that moment. A day is over-committed when at
some moment more GPUs are booked than are available: a reservation due then lands on
drained or broken GPUs. Whole nodes per week: nodes healthy, undrained and unbooked for
the entire week, what a new week-long whole-node lease could take.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from opsconsole.capacity.inputs import DrainSpan
from opsconsole.capacity.model import RunwayDay, RunwaySeries, RunwayWeek
from opsconsole.capacity.occupancy import UNKNOWN_MODEL
from opsconsole.config import Host
from opsconsole.leases.reader import Booking

DAY_S = 86_400.0


def day_starts(now_ts: float, days: int) -> list[float]:
    """now, then each following UTC midnight: `days` + 1 boundaries."""
    midnight = datetime.fromtimestamp(now_ts, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return [now_ts] + [(midnight + timedelta(days=d)).timestamp() for d in range(1, days + 1)]


def utc_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def runway_series(
    kind: str,
    name: str,
    hosts: Sequence[Host],
    bookings: Iterable[Booking],
    drains: Iterable[DrainSpan],
    unhealthy: Mapping[str, frozenset[int]],
    now_ts: float,
    days: int,
    note: str = "",
) -> RunwaySeries:
    by_name = {h.name: h for h in hosts}
    total = sum(h.expected_gpus for h in hosts)
    broken = {(h, i) for h, idx in unhealthy.items() if h in by_name for i in idx}
    groups: Counter[tuple[float, float]] = Counter()
    for b in bookings:
        if b.host in by_name:
            groups[(b.start_ts, b.end_ts)] += 1
    drain_slots: list[tuple[float, float, frozenset[tuple[str, int]]]] = []
    for d in drains:
        host = by_name.get(d.host)
        if host is None:
            continue
        indexes = range(host.expected_gpus) if d.gpu_index is None else (d.gpu_index,)
        until = math.inf if d.until_ts is None else d.until_ts
        drain_slots.append((d.start_ts, until, frozenset((d.host, i) for i in indexes)))
    bounds = day_starts(now_ts, days)
    horizon = bounds[-1]
    cuts = set(bounds)
    for start, end in groups:
        cuts.update(t for t in (start, end) if now_ts < t < horizon)
    for start, end, _ in drain_slots:
        cuts.update(t for t in (start, end) if now_ts < t < horizon)
    moments = sorted(cuts)
    day_rows = []
    first_over = None
    for day in range(days):
        day_start, day_end = bounds[day], bounds[day + 1]
        committed_peak, capacity_min, over = 0, total, 0
        for seg_start in (m for m in moments if day_start <= m < day_end):
            committed = sum(n for (s, e), n in groups.items() if s <= seg_start < e)
            out = set(broken)
            for s, e, slots in drain_slots:
                if s <= seg_start < e:
                    out |= slots
            capacity = total - len(out)
            committed_peak = max(committed_peak, committed)
            capacity_min = min(capacity_min, capacity)
            over = max(over, committed - capacity)
        date = utc_date(day_start)
        if over > 0 and first_over is None:
            first_over = date
        day_rows.append(RunwayDay(date, day_start, committed_peak, capacity_min, max(0, over)))
    weeks = whole_nodes_by_week(hosts, bookings, drains, unhealthy, now_ts, days)
    return RunwaySeries(kind, name, total, tuple(day_rows), weeks, first_over, note)


def whole_nodes_by_week(
    hosts: Sequence[Host],
    bookings: Iterable[Booking],
    drains: Iterable[DrainSpan],
    unhealthy: Mapping[str, frozenset[int]],
    now_ts: float,
    days: int,
) -> tuple[RunwayWeek, ...]:
    names = {h.name for h in hosts}
    booked = [(b.host, b.start_ts, b.end_ts) for b in bookings if b.host in names]
    drained = [d for d in drains if d.host in names]
    out = []
    for week in range(math.ceil(days / 7)):
        start, end = now_ts + week * 7 * DAY_S, now_ts + (week + 1) * 7 * DAY_S
        busy = {h for h, s, e in booked if s < end and e > start}
        busy |= {d.host for d in drained if d.holds(start, end)}
        busy |= {h for h, idx in unhealthy.items() if idx}
        whole = sum(1 for h in hosts if h.name not in busy and h.expected_gpus > 0)
        out.append(RunwayWeek(utc_date(start), whole))
    return tuple(out)


def runway(
    hosts: Sequence[Host],
    bookings: Sequence[Booking],
    drains: Sequence[DrainSpan],
    unhealthy: Mapping[str, frozenset[int]],
    now_ts: float,
    days: int,
) -> list[RunwaySeries]:
    """One series per site, then one per GPU model (hosts without a model together)."""
    out = []
    split: list[tuple[str, Callable[[Host], str]]] = [
        ("site", lambda h: h.site),
        ("model", lambda h: h.gpu_model or UNKNOWN_MODEL),
    ]
    for kind, key in split:
        for name in dict.fromkeys(key(h) for h in hosts):
            members = [h for h in hosts if key(h) == name]
            note = ""
            if kind == "model" and name == UNKNOWN_MODEL:
                note = f"{len(members)} host(s) whose host class sets no gpu_model"
            out.append(
                runway_series(kind, name, members, bookings, drains, unhealthy, now_ts, days, note)
            )
    return out
