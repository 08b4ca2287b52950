"""Which lines the fleet grid shows, in which order: filter terms, sort keys, grouping,
and each rack's power against its budget. Pure functions over snapshots, no Textual.

Filter syntax (space-separated terms, all must match):
  word            host, rack, site, state or reason contains "word"
  !word           ... does not contain it
  col=value       exact (text columns) or equal (numbers); also != > < >= <=
  col~text        column contains text
Columns: site rack leaf host state reason util temp power mem health.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsconsole.config import Fleet, Host, Rack
from opsconsole.ui.view.snapshot import HostSnapshot

SORT_KEYS = ("site", "rack", "host", "state", "util", "temp", "power", "memory", "health")
GROUPED_SORTS = ("site", "rack", "host")
"""Sorting by place keeps the site → rack → host tree; any other key lists hosts flat."""
STATE_RANK = {"fresh": 0, "pending": 1, "stale": 2, "down": 3}
TEXT_COLUMNS = ("site", "rack", "leaf", "host", "state", "reason")
NUMBER_COLUMNS = ("util", "temp", "power", "mem", "memory", "health")
COLUMN_ALIASES = {"name": "host", "status": "state", "memory": "mem", "utilisation": "util"}

Term = Callable[[Host, HostSnapshot | None], bool]
"""One filter term: does this host (and its snapshot, if any) match?"""
Compare = Callable[[Any, Any], Any]

_OPS: dict[str, Compare] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "~": lambda a, b: b in a,
}
_TERM = re.compile(r"^([a-z_]+)(>=|<=|!=|=|>|<|~)(.*)$")

Line = tuple[str, str]
"""("site", name) | ("rack", name) | ("host", name)."""


class FilterError(ValueError):
    """A filter the operator typed that cannot be understood; the message says why."""


def text_of(column: str, host: Host, snap: HostSnapshot | None) -> str:
    if column == "site":
        return host.site
    if column == "rack":
        return host.rack
    if column == "leaf":
        return host.leaf or ""
    if column == "host":
        return host.name
    if column == "state":
        return snap.status if snap is not None else "pending"
    return snap.reason if snap is not None else "connecting"


def number_of(column: str, snap: HostSnapshot | None) -> float | None:
    """The host's figure for a numeric column; None when nothing live is known."""
    if snap is None or not snap.is_fresh:
        return None
    if column == "health":
        return float(snap.faults + snap.missing_gpus) * 100 + snap.warnings
    return {
        "util": snap.util_avg_pct,
        "temp": snap.temp_max_c,
        "power": snap.power_w,
        "mem": snap.mem_used_pct,
    }[column]


@dataclass(frozen=True)
class FleetFilter:
    text: str
    terms: tuple[Term, ...]
    dynamic: bool
    """Depends on live values, so membership can change with every batch."""

    def matches(self, host: Host, snap: HostSnapshot | None) -> bool:
        return all(term(host, snap) for term in self.terms)


NO_FILTER = FleetFilter("", (), False)


def parse_filter(text: str) -> FleetFilter:
    """The whole expression, or FilterError naming every bad term (not just the first),
    so the operator fixes them in one go; nothing is applied from a bad expression."""
    terms = []
    dynamic = False
    problems: list[str] = []
    for word in text.split():
        match = _TERM.match(word.lower())
        if match is None:
            negate = word.startswith("!")
            needle = word.lstrip("!").lower()
            if needle:
                terms.append(_contains_anywhere(needle, negate))
                dynamic = True
            continue
        column, op, value = match.groups()
        column = COLUMN_ALIASES.get(column, column)
        if column in TEXT_COLUMNS:
            terms.append(_text_term(column, _OPS[op], value, op))
            dynamic = dynamic or column in ("state", "reason")
        elif column in NUMBER_COLUMNS:
            if op == "~":
                problems.append(f"{word}: use = != > < >= <= with a number")
                continue
            try:
                number = float(value) if column != "health" else _health_value(value)
            except (ValueError, KeyError):
                hint = " (or ok / warn / fault)" if column == "health" else ""
                problems.append(f"{word}: {value!r} is not a number{hint}")
                continue
            terms.append(_number_term(column, _OPS[op], number))
            dynamic = True
        else:
            problems.append(f"{word}: unknown column {column!r}")
    if problems:
        known = ", ".join((*TEXT_COLUMNS, *NUMBER_COLUMNS[:-2], "health"))
        many = f"{len(problems)} bad terms: " if len(problems) > 1 else ""
        raise FilterError(f"{many}{'; '.join(problems)} (columns: {known})")
    return FleetFilter(text.strip(), tuple(terms), dynamic)


def _health_value(value: str) -> float:
    """health=ok / warn / fault compare on the host's health score."""
    words = {"ok": 0.0, "warn": 1.0, "fault": 100.0}
    return words[value] if value in words else float(value)  # ValueError names neither


def _contains_anywhere(needle: str, negate: bool) -> Term:
    def term(host: Host, snap: HostSnapshot | None) -> bool:
        found = any(needle in text_of(c, host, snap).lower() for c in TEXT_COLUMNS)
        return found != negate

    return term


def _text_term(column: str, op: Compare, value: str, op_text: str) -> Term:
    def term(host: Host, snap: HostSnapshot | None) -> bool:
        return bool(op(text_of(column, host, snap).lower(), value))

    return term


def _number_term(column: str, op: Compare, number: float) -> Term:
    if column == "health" and number in (0.0, 1.0) and op is operator.eq:
        # health=warn means "has warnings but no faults", not a score of exactly 1
        def banded(host: Host, snap: HostSnapshot | None) -> bool:
            score = number_of("health", snap)
            return score is not None and (score == 0 if number == 0 else 0 < score < 100)

        return banded

    def term(host: Host, snap: HostSnapshot | None) -> bool:
        figure = number_of(column, snap)
        return figure is not None and bool(op(figure, number))

    return term


def sort_value(key: str, host: Host, snap: HostSnapshot | None) -> float | str | None:
    if key == "state":
        return STATE_RANK.get(snap.status if snap else "pending", 1)
    if key == "host":
        return host.name
    if key in ("site", "rack"):
        return text_of(key, host, snap)
    return number_of("mem" if key == "memory" else key, snap)


def build_lines(
    fleet: Fleet,
    snapshots: dict[str, HostSnapshot],
    *,
    sort_key: str = "site",
    descending: bool = False,
    row_filter: FleetFilter = NO_FILTER,
) -> list[Line]:
    """The grid's lines: a site → rack → host tree, or a flat host list sorted by a
    state or metric column (hosts without a live figure go last either way)."""
    visible = [h for h in fleet.hosts if row_filter.matches(h, snapshots.get(h.name))]
    if sort_key not in GROUPED_SORTS:
        known: list[tuple[Any, str]] = []  # one key's values: all numbers, or all text
        unknown: list[str] = []
        for host in visible:
            value = sort_value(sort_key, host, snapshots.get(host.name))
            if value is None:
                unknown.append(host.name)
            else:
                known.append((value, host.name))
        known.sort(key=lambda pair: pair[0], reverse=descending)
        return [("host", name) for _, name in known] + [("host", name) for name in unknown]
    lines: list[Line] = []
    site_order = {name: i for i, name in enumerate(fleet.sites)}
    rack_order = {name: i for i, name in enumerate(fleet.racks)}
    by_site: dict[str, dict[str, list[Host]]] = {}
    for host in visible:
        by_site.setdefault(host.site, {}).setdefault(host.rack, []).append(host)
    flip_sites = descending and sort_key == "site"
    flip_racks = descending and sort_key == "rack"
    sites = sorted(by_site, key=lambda s: (site_order.get(s, 1 << 30), s), reverse=flip_sites)
    for site in sites:
        lines.append(("site", site))
        racks = sorted(
            by_site[site], key=lambda r: (rack_order.get(r, 1 << 30), r), reverse=flip_racks
        )
        for rack in racks:
            lines.append(("rack", rack))
            hosts = by_site[site][rack]
            if sort_key == "host":
                hosts = sorted(hosts, key=lambda h: h.name, reverse=descending)
            lines.extend(("host", h.name) for h in hosts)
    return lines


def fold_lines(lines: list[Line], folded: set[Line]) -> list[Line]:
    """The tree without what folded sites and racks hold (the folded lines stay)."""
    out: list[Line] = []
    site_folded = rack_folded = False
    for line in lines:
        kind = line[0]
        if kind == "site":
            site_folded, rack_folded = line in folded, False
            out.append(line)
        elif kind == "rack":
            rack_folded = line in folded
            if not site_folded:
                out.append(line)
        elif not (site_folded or rack_folded):
            out.append(line)
    return out


@dataclass(frozen=True, slots=True)
class RackPower:
    now_kw: float
    budget_kw: float | None
    unknown_hosts: int
    """Hosts whose draw is not known (not fresh, or no power reading)."""

    @property
    def fraction(self) -> float | None:
        return self.now_kw / self.budget_kw if self.budget_kw else None


def rack_power(rack: Rack, hosts: Iterable[str], snapshots: dict[str, HostSnapshot]) -> RackPower:
    """Sum of live GPU power plus the rack's per-host overhead, against its budget; a
    host whose BMC reports its draw (`ipmi_power`) counts that instead."""
    total_w, unknown = 0.0, 0
    for name in hosts:
        snap = snapshots.get(name)
        if snap is not None and snap.is_fresh and snap.node_power_w is not None:
            total_w += snap.node_power_w
            continue
        if snap is None or not snap.is_fresh or snap.power_w is None:
            unknown += 1
            continue
        if math.isfinite(snap.power_w):  # bounded upstream; a sum must never go to inf
            total_w += snap.power_w + rack.host_overhead_w
        else:
            unknown += 1
    return RackPower(total_w / 1000.0, rack.power_budget_kw, unknown)
