"""A Reading as cell text: live numbers plain, old numbers dimmed, missing ones say why.

The one place the host view decides how a not-live number looks, so no table can show an
old number as if it were live.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text

from opsconsole.collect.readings import Reading

DIM = "#6c6c6c"


def reading_text(reading: Reading | None, fmt: Callable[[float], str] = "{:.0f}".format) -> Text:
    if reading is None:
        return Text("—", DIM)
    if reading.is_live and reading.value is not None:
        return Text(fmt(reading.value))
    if reading.state == "stale" and reading.last_value is not None:
        return Text(fmt(reading.last_value), f"{DIM} italic")  # old: dim, never plain
    if reading.state == "not_supported":
        return Text("n/a", DIM)
    if reading.state in ("stale", "unreachable"):
        return Text("—", DIM)
    if reading.state == "invalid":  # a refused number: never shown, only named
        return Text("INVALID", "bold #ff5f5f")
    return Text(f"ERR {reading.detail}".strip()[:16], "bold #ff5f5f")


def pair_text(
    left: Reading | None, right: Reading | None, fmt: Callable[[float], str], unit: str
) -> Text:
    """ "650/700 W": both parts honour their own state."""
    text = reading_text(left, fmt)
    text.append("/")
    text.append_text(reading_text(right, fmt))
    if unit:
        text.append(f" {unit}", DIM)
    return text


def same_text(a: Text, b: Text) -> bool:
    """Rich's Text equality ignores the base style; a cell going dim must still update."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


def same_row(a: tuple[Text, ...], b: tuple[Text, ...]) -> bool:
    return len(a) == len(b) and all(same_text(x, y) for x, y in zip(a, b, strict=True))
