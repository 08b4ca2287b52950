"""Small text formatters shared by screens: ages, power, optional numbers."""

from __future__ import annotations


def age_text(seconds: float | None) -> str:
    """14s, 3m, 2h, 4d: an age at a glance; "never" when there is none."""
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    return f"{seconds // 86400:.0f}d"


def age_bucket(seconds: float | None) -> int:
    """Changes exactly when age_text's output would, so cached lines know when to redraw."""
    if seconds is None:
        return -1
    seconds = max(0.0, seconds)
    if seconds < 60:
        return int(seconds)
    if seconds < 3600:
        return 100 + int(seconds // 60)
    if seconds < 86400:
        return 10_000 + int(seconds // 3600)
    return 1_000_000 + int(seconds // 86400)


def number(value: float | int | None, fmt: str = "{:.0f}", none: str = "—") -> str:
    return none if value is None else fmt.format(value)


def kw(watts: float | None) -> str:
    return "—" if watts is None else f"{watts / 1000:.2f}kW"
