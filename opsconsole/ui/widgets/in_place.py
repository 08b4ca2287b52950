"""`Static.update` without a layout pass when the widget's size cannot have changed.

Why: `Static.update` asks for a layout by default, and one layout request re-arranges
the whole screen. The host view updates its facts, leases, validation, alerts and
history panes on every open and every second, almost always to text that takes the same
room, so that pass was most of what redrawing them cost (bench/ui.py, open host)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

Room = tuple[int, int]
"""What decides the widget's size: (rows, widest line) for a widget as wide as its text
(`width: auto`); (rows, 0) for one as wide as its container, all lines fitting."""

_shown: WeakKeyDictionary[Static, tuple[Room | None, str | Text]] = WeakKeyDictionary()


def room_for(widget: Static, content: str | Text) -> Room | None:
    """The room `content` takes in `widget` at its present width; None when that cannot
    be told without laying it out (a line wider than the widget wraps)."""
    plain = content.plain if isinstance(content, Text) else content
    if not plain:
        return 0, 0  # empty: may take no room at all
    lines = plain.split("\n")
    widest = max(cell_len(line) for line in lines)
    width = widget.styles.width
    if width is not None and width.is_auto:
        return len(lines), widest
    if widest > widget.content_size.width:  # wraps (or not laid out yet)
        return None
    return len(lines), 0


def update_in_place(widget: Static, content: str | Text) -> None:
    """Show `content` in `widget`: nothing to do when it is what the widget shows, a
    repaint when it takes the same room, a layout pass otherwise."""
    room = room_for(widget, content)
    last = _shown.get(widget)
    if last is not None and last[1] == content and type(last[1]) is type(content):
        return
    widget.update(content, layout=room is None or last is None or last[0] != room)
    _shown[widget] = (room, content)
