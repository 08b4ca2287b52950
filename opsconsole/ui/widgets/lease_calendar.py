"""The next weeks per site: one row per tenant, one column per day in the operator's zone
(the config's `timezone`, named in the header), each cell the most GPUs the tenant holds
at any moment of that day, and a `free` row under each site.

Why the peak and not a sum: two leases back to back on one day never hold GPUs at once;
the peak is what the quota counts and what tells an operator whether more would fit.
Drawn as text cells in one Static: a few hundred cells, redrawn when leases change.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import Static

from opsconsole.config import Fleet
from opsconsole.leases.times import current_zone
from opsconsole.ui.view.lease_board import LeaseBoard

DAY_S = 86_400
LABEL_W = 17
CELL_W = 4
MIN_DAYS, MAX_DAYS = 7, 28
HEADER, DIM, SITE = "bold #87afd7", "#6c6c6c", "bold #ffffff on #1c2b3a"

Interval = tuple[float, float, int]
"""(start_ts, end_ts, GPUs) of one lease at one site."""


def calendar_days(now_ts: float, width: int, zone: tzinfo | None = None) -> list[float]:
    """Day starts (midnight in `zone`, default the configured zone) from today, as many
    as the width holds."""
    return [start for start, _ in day_spans(now_ts, width, zone)]


def day_spans(now_ts: float, width: int, zone: tzinfo | None = None) -> list[tuple[float, float]]:
    """[start, end) of each day shown: midnight to midnight in `zone`, so a day is 23 or 25
    hours long where the zone changes its clocks."""
    zone = zone or current_zone()
    count = max(MIN_DAYS, min(MAX_DAYS, (width - LABEL_W) // CELL_W))
    today = datetime.fromtimestamp(now_ts, zone).date()
    starts = [_midnight(today + timedelta(days=i), zone) for i in range(count + 1)]
    return list(pairwise(starts))


def _midnight(day: date, zone: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def zone_label(zone: tzinfo) -> str:
    """The zone as the header names it: "UTC", "Asia/Singapore", or "+08" if the name
    does not fit the label column."""
    if zone is UTC:
        return "UTC"
    name = str(getattr(zone, "key", "") or "")
    if name and len(name) <= LABEL_W - 2:
        return name
    return datetime.now(zone).tzname() or "?"


def peak_gpus(intervals: list[Interval], lo: float, hi: float) -> int:
    """Most GPUs held at one moment of [lo, hi); windows are half-open like bookings."""
    changes: list[tuple[float, int]] = []
    for start, end, gpus in intervals:
        if end > lo and start < hi and end > start:
            changes += [(max(start, lo), gpus), (min(end, hi), -gpus)]
    changes.sort()  # at one instant the ends (negative) come before the starts
    held = top = 0
    for _ts, delta in changes:
        held += delta
        top = max(top, held)
    return top


def _cell(gpus: int) -> str:
    shown = str(gpus) if gpus < 1000 else f"{gpus // 1000}k"
    return f"{shown:>{CELL_W}}"


def calendar_text(board: LeaseBoard, fleet: Fleet, width: int, zone: tzinfo | None = None) -> Text:
    zone = zone or current_zone()
    days = day_spans(board.now_ts, width, zone)
    site_of = {host.name: host.site for host in fleet.hosts}
    site_gpus: Counter[str] = Counter()
    for host in fleet.hosts:
        site_gpus[host.site] += host.expected_gpus
    held: dict[str, dict[str, list[Interval]]] = defaultdict(lambda: defaultdict(list))
    for lease in board.open_leases:
        per_site = Counter(site_of.get(slot.host) for slot in lease.slots)
        for site, gpus in per_site.items():
            if site is not None:
                held[site][lease.tenant].append((lease.start_ts, lease.booked_end_ts, gpus))

    text = Text(no_wrap=True, overflow="crop")
    _header(text, days, zone)
    for site in fleet.sites:
        text.append(f"\n ■ {site} · {site_gpus[site]} GPUs".ljust(LABEL_W), SITE)
        everyone: list[Interval] = []
        for tenant in sorted(held[site]):
            intervals = held[site][tenant]
            peaks = [peak_gpus(intervals, lo, hi) for lo, hi in days]
            if not any(peaks):
                continue
            everyone += intervals
            colour = board.colour(tenant)
            text.append(f"\n   {tenant[: LABEL_W - 4]:<{LABEL_W - 3}}", f"bold {colour}")
            for gpus in peaks:
                text.append(_cell(gpus) if gpus else f"{'·':>{CELL_W}}", colour if gpus else DIM)
        text.append(f"\n   {'free':<{LABEL_W - 3}}", "#8a8a8a")
        for lo, hi in days:
            free = site_gpus[site] - peak_gpus(everyone, lo, hi)
            text.append(_cell(free), "#5fd75f" if free > 0 else "bold #ff5f5f")
    return text


def _header(text: Text, days: list[tuple[float, float]], zone: tzinfo) -> None:
    """Month names where a month starts, then day numbers under the zone's name; weekends
    dim, today bold."""
    dates = [datetime.fromtimestamp(start, zone) for start, _ in days]
    text.append(" peak GPUs/day".ljust(LABEL_W), DIM)
    months = ""
    for i, when in enumerate(dates):
        if i == 0 or when.day == 1:
            months = months.ljust(i * CELL_W) + f"{when:%b}".rjust(CELL_W)
    text.append(months, HEADER)
    text.append("\n" + f" {zone_label(zone)}".ljust(LABEL_W), DIM)
    for i, when in enumerate(dates):
        style = "bold underline #ffffff" if i == 0 else DIM if when.weekday() >= 5 else HEADER
        text.append(f"{when.day:>{CELL_W}}", style)


class LeaseCalendar(Static):
    def __init__(self, fleet: Fleet, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet
        self.board: LeaseBoard | None = None

    def show(self, board: LeaseBoard | None) -> None:
        self.board = board
        if board is None:
            self.update(Text(" No lease data yet.", DIM))
            return
        width = self.size.width or (self.app.size.width - 2)
        self.update(calendar_text(board, self.fleet, width))

    def on_resize(self, event: events.Resize) -> None:
        if self.board is not None:
            self.show(self.board)
