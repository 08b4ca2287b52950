"""`Static.update` without a layout pass when the widget's size cannot have changed.

Why: `Static.update` asks for a layout by default, and one layout request re-arranges
the whole screen. The host view updates its facts, leases, validation, alerts and
history panes on every open and every second, almost always with text of the same shape,
so that pass was most of what redrawing them cost (bench/ui.py, open host)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

Shape = tuple[int, int]
"""(lines, widest line in cells): with the widget's width unchanged (a resize lays out
anyway), content of the same shape takes the same room, wrapped or not."""

_shown: WeakKeyDictionary[Static, tuple[Shape, str | Text]] = WeakKeyDictionary()


def shape_of(content: str | Text) -> Shape:
    lines = (content.plain if isinstance(content, Text) else content).split("\n")
    return len(lines), max(cell_len(line) for line in lines)


def update_in_place(widget: Static, content: str | Text) -> None:
    """Show `content` in `widget`: nothing to do when it is what the widget shows, a
    repaint when it has the same shape, a layout pass only when the shape changed."""
    shape = shape_of(content)
    last = _shown.get(widget)
    if last is not None and last[1] == content and type(last[1]) is type(content):
        return
    widget.update(content, layout=last is None or last[0] != shape)
    _shown[widget] = (shape, content)
