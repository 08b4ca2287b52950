"""Times as operators type them: ISO 8601 ("2026-12-01T00:00Z") or relative to now ("now",
"+2h", "+7d", "-30m"). Everything inside is UTC epoch seconds.

A time written without an offset is read in the operator's zone: the config's top-level
`timezone` (default UTC), which every printed time names beside it ("Z" for UTC, else the
zone's abbreviation, "+08" or "CET"). The zone is set once per process from the config
(`use_timezone`) because every CLI command and console screen prints times through these
two functions; passing it through each caller would touch every table in the project.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opsconsole.errors import LeaseError

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_HINT = 'use ISO 8601 such as 2026-12-01T00:00Z, "now", or +2h / +7d / -1h'
TIME_HELP = (
    "times: now, +2h, -30m, +7d, or ISO 8601 (2026-12-01T09:00); a time without an offset"
    " is read in the config's `timezone` (default UTC), and printed times name their zone"
    " (Z = UTC)"
)
"""For --help epilogues: how every command reads and prints times."""

_zone: tzinfo = UTC


def zone_named(name: str) -> tzinfo:
    """An IANA zone ("Asia/Singapore", "UTC"); LeaseError naming it when unknown."""
    if name.strip().upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise LeaseError(
            f'unknown time zone "{name}": use an IANA name such as Asia/Singapore or UTC'
        ) from None


def use_timezone(zone: str | tzinfo) -> tzinfo:
    """Read and print times in `zone` from now on (set once from the config)."""
    global _zone
    _zone = zone_named(zone) if isinstance(zone, str) else zone
    return _zone


def current_zone() -> tzinfo:
    return _zone


def parse_time(text: str, now_ts: float, zone: tzinfo | None = None) -> float:
    """`text` as UTC epoch seconds; LeaseError (one line) if it is not a time. Without an
    offset it is read in `zone` (default: the configured zone)."""
    value = text.strip().lower()
    if value == "now":
        return now_ts
    match = _RELATIVE.match(value)
    if match:
        sign, amount, unit = match.groups()
        offset_s = float(amount) * _UNITS_S[unit]
        return now_ts + offset_s if sign == "+" else now_ts - offset_s
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LeaseError(f'"{text}" is not a time: {_HINT}') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone or _zone)
    return when.timestamp()


def parse_duration(text: str) -> float:
    """ "2d", "+12h", "90m" as seconds (for `lease extend --by`)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise LeaseError(f'"{text}" is not a duration: use a number and s/m/h/d/w, such as 2d')
    amount, unit = match.groups()
    return float(amount) * _UNITS_S[unit]


def zone_suffix(when: datetime) -> str:
    """ "Z" for UTC, else " +08" / " CET": the zone printed beside a time."""
    if when.tzinfo is UTC:
        return "Z"
    return f" {when.tzname()}"


def format_ts(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Minutes in the configured zone, zone named ("2026-12-01 00:00Z", "2026-12-01
    08:00 +08"); "-" for none."""
    if ts is None:
        return "-"
    when = datetime.fromtimestamp(ts, _zone)
    return when.strftime(fmt) + zone_suffix(when)


def format_window(start_ts: float, end_ts: float | None) -> str:
    return f"{format_ts(start_ts)} → {format_ts(end_ts) if end_ts is not None else 'open'}"
