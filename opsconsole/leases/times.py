"""Times as operators type them: ISO 8601 ("2026-12-01T00:00Z") or relative to now ("now",
"+2h", "+7d", "-30m"). Everything inside is UTC epoch seconds.

A time written without an offset is read as UTC, not the local zone: a console shared by
NOC staff in several countries must mean the same instant whoever types it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from opsconsole.errors import LeaseError

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_HINT = 'use ISO 8601 such as 2026-12-01T00:00Z, "now", or +2h / +7d'


def parse_time(text: str, now_ts: float) -> float:
    """`text` as UTC epoch seconds; LeaseError (one line) if it is not a time."""
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
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_duration(text: str) -> float:
    """ "2d", "+12h", "90m" as seconds (for `lease extend --by`)."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise LeaseError(f'"{text}" is not a duration: use a number and s/m/h/d/w, such as 2d')
    amount, unit = match.groups()
    return float(amount) * _UNITS_S[unit]


def format_ts(ts: float | None) -> str:
    """Minutes in UTC for messages and tables ("2026-12-01 00:00Z"); "-" for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%MZ")


def format_window(start_ts: float, end_ts: float | None) -> str:
    return f"{format_ts(start_ts)} → {format_ts(end_ts) if end_ts is not None else 'open'}"
