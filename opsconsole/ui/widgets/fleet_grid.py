"""The fleet grid: every site, rack and host of the fleet as ONE line-API widget.

Why not a DataTable or a widget per host: at 1,000 hosts every host changes every poll
interval, and per-cell updates or thousands of widgets cost tens of milliseconds a frame.
Here only the lines on screen are ever drawn, each drawn line is cached as a Strip keyed
by its host's version counter, and a batch only repaints visible lines whose host changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from opsconsole.ui.view.fleet_painter import Columns, FleetPainter
from opsconsole.ui.view.fleet_rows import (
    GROUPED_SORTS,
    NO_FILTER,
    SORT_KEYS,
    FleetFilter,
    Line,
    build_lines,
    fold_lines,
    rack_power,
)
from opsconsole.ui.view.formatting import age_bucket
from opsconsole.ui.view.metrics import METRICS, Metric
from opsconsole.ui.view.model import FleetModel

CURSOR = Style(bgcolor="#264f78")
LineVersion = tuple[object, ...]
"""What a cached line was drawn from (versions, metric, age bucket, fold): redraw on change."""


class FleetGrid(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "Top", show=False),
        Binding("end,G", "jump(-1)", "Bottom", show=False),
        Binding("enter", "choose", "Open or fold"),
    ]

    class LineChosen(Message):
        """Enter (or a double click) on a host line: ("host", name)."""

        def __init__(self, line: Line) -> None:
            super().__init__()
            self.line = line

    class SortClicked(Message):
        def __init__(self, sort_key: str) -> None:
            super().__init__()
            self.sort_key = sort_key

    def __init__(
        self, model: FleetModel, clock: Callable[[], float], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.model = model
        self.clock = clock
        self.painter = FleetPainter(model.fleet)
        self.metric: Metric = METRICS["util"]
        self.sort_key = "site"
        self.descending = False
        self.row_filter: FleetFilter = NO_FILTER
        self.lines: list[Line] = []
        self.folded: set[Line] = set()
        """Site and rack lines folded by Enter: their hosts (and racks) are not listed."""
        self._index: dict[Line, int] = {}
        self.cursor = 0
        self._placed = False  # the cursor starts on the first host, not on a site line
        self._cols: Columns | None = None
        self._cache: dict[Line, tuple[LineVersion, Strip]] = {}
        self.lines_painted = 0  # how many lines were actually drawn (not served from cache)
        self.rebuild()

    # --- what is shown ----------------------------------------------------------------
    def rebuild(self) -> bool:
        """Recompute line order; keeps the cursor on the same line. True when it moved."""
        lines = build_lines(
            self.model.fleet,
            self.model.hosts,
            sort_key=self.sort_key,
            descending=self.descending,
            row_filter=self.row_filter,
        )
        if self.folded and self.sort_key in GROUPED_SORTS:
            lines = fold_lines(lines, self.folded)
        if lines == self.lines:
            return False
        current = self.current_line
        self.lines = lines
        self._index = {line: i for i, line in enumerate(lines)}
        fallback = min(self.cursor, max(0, len(lines) - 1))
        self.cursor = self._index.get(current, fallback) if current is not None else fallback
        if not self._placed:
            first = next((i for i, (kind, _) in enumerate(lines) if kind == "host"), None)
            if first is not None:
                self.cursor, self._placed = first, True
        self.virtual_size = Size(self.size.width, len(lines) + 1)
        self.refresh()
        return True

    def set_view(
        self,
        *,
        metric: str | None = None,
        sort_key: str | None = None,
        descending: bool | None = None,
        row_filter: FleetFilter | None = None,
    ) -> None:
        if metric is not None:
            self.metric = METRICS[metric]
            self._cache.clear()
        if sort_key is not None:
            assert sort_key in SORT_KEYS
            self.sort_key = sort_key
        if descending is not None:
            self.descending = descending
        if row_filter is not None:
            self.row_filter = row_filter
        self.rebuild()
        self._scroll_cursor_into_view()
        self.refresh()

    @property
    def current_line(self) -> Line | None:
        return self.lines[self.cursor] if 0 <= self.cursor < len(self.lines) else None

    @property
    def current_host(self) -> str | None:
        line = self.current_line
        return line[1] if line is not None and line[0] == "host" else None

    def move_to(self, line: Line) -> bool:
        index = self._index.get(line)
        if index is None:
            return False
        self._set_cursor(index)
        return True

    # --- updates from batches -------------------------------------------------------
    def fleet_changed(self, changed: set[str]) -> None:
        """Repaint what a batch changed, and only what is on screen."""
        order_may_change = self.sort_key not in GROUPED_SORTS or self.row_filter.dynamic
        if order_may_change and self.rebuild():
            return
        fleet = self.model.fleet
        places = {(fleet.host(h).rack, fleet.host(h).site) for h in changed}
        racks = {rack for rack, _ in places}
        sites = {site for _, site in places}
        top, bottom = self._visible_range()
        for i in range(top, bottom):
            kind, name = self.lines[i]
            if name in (changed if kind == "host" else racks if kind == "rack" else sites):
                self._refresh_index(i)

    def refresh_ages(self) -> None:
        """Once a second: stale and down lines show their age, which moves on its own."""
        top, bottom = self._visible_range()
        for i in range(top, bottom):
            kind, name = self.lines[i]
            snap = self.model.hosts.get(name) if kind == "host" else None
            if snap is not None and snap.status in ("stale", "down"):
                self._refresh_index(i)

    # --- drawing --------------------------------------------------------------------
    def _columns(self) -> Columns:
        width = self.scrollable_content_region.width or self.size.width
        if self._cols is None or self._cols.width != width:
            self._cols = Columns.fit(self.model.fleet, width, tenants=self.model.leases_shown)
            self._cache.clear()
        return self._cols

    def render_line(self, y: int) -> Strip:
        cols = self._columns()
        if y == 0:
            return Strip(
                self.painter.header(cols, self.metric, self.sort_key, self.descending), cols.width
            )
        index = self.scroll_offset.y + y - 1
        if index >= len(self.lines):
            return Strip.blank(cols.width)
        strip = self._line_strip(index, cols)
        if index == self.cursor and self.has_focus_within:
            strip = strip.apply_style(CURSOR)
        elif index == self.cursor:
            strip = strip.apply_style(Style(bgcolor="#303030"))
        return strip.crop_extend(self.scroll_offset.x, self.scroll_offset.x + cols.width, None)

    def _line_strip(self, index: int, cols: Columns) -> Strip:
        line = self.lines[index]
        kind, name = line
        model = self.model
        now = self.clock()
        if kind == "host":
            snap = model.hosts.get(name)
            bucket = 0
            if snap is not None and snap.status in ("stale", "down"):
                reference = snap.last_sample_ts or snap.since_ts
                bucket = age_bucket(now - reference)
            key: LineVersion = (model.host_versions.get(name, 0), self.metric.key, bucket)
        elif kind == "rack":
            key = (model.rack_versions.get(name, 0), line in self.folded)
        else:
            key = (model.site_versions.get(name, 0), len(self.lines), line in self.folded)
        cached = self._cache.get(line)
        if cached is not None and cached[0] == key:
            return cached[1]
        self.lines_painted += 1
        if kind == "host":
            host = model.fleet.host(name)
            tenancy = model.tenancy
            holders = tenancy.get(name, {}) if tenancy is not None else None
            strip = Strip(
                self.painter.host_line(
                    cols, host, model.hosts.get(name), self.metric, now, holders
                ),
                cols.width,
            )
        elif kind == "rack":
            strip = self._rack_strip(cols, name)
        else:
            strip = self._site_strip(cols, name)
        self._cache[line] = (key, strip)
        return strip

    def _rack_strip(self, cols: Columns, name: str) -> Strip:
        model = self.model
        rack = model.fleet.racks[name]
        members = model.hosts_by_rack.get(name, [])
        power = rack_power(rack, members, model.hosts)
        not_fresh = sum(
            1 for h in members if (s := model.hosts.get(h)) is None or s.status != "fresh"
        )
        folded = ("rack", name) in self.folded
        line = self.painter.rack_line(
            cols, name, rack.leaf, power, len(members), not_fresh, folded=folded
        )
        return Strip(line, cols.width)

    def _site_strip(self, cols: Columns, site: str) -> Strip:
        counts = {"fresh": 0, "stale": 0, "down": 0, "pending": 0}
        racks = set()
        for host in self.model.fleet.hosts:
            if host.site == site:
                snap = self.model.hosts.get(host.name)
                counts[snap.status if snap is not None else "pending"] += 1
                racks.add(host.rack)
        folded = ("site", site) in self.folded
        return Strip(
            self.painter.site_line(cols, site, counts, len(racks), folded=folded), cols.width
        )

    # --- cursor and scrolling --------------------------------------------------------
    def _visible_range(self) -> tuple[int, int]:
        top = self.scroll_offset.y
        return top, min(len(self.lines), top + max(0, self.size.height - 1))

    def _refresh_index(self, index: int) -> None:
        y = index - self.scroll_offset.y + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _set_cursor(self, index: int) -> None:
        index = max(0, min(index, len(self.lines) - 1))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        self._refresh_index(old)
        self._refresh_index(index)
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        rows = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self._set_cursor(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self._set_cursor(0 if where == 0 else len(self.lines) - 1)

    def action_choose(self) -> None:
        """Enter: open a host; fold or unfold a site or rack (filtering is `/`)."""
        line = self.current_line
        if line is None:
            return
        if line[0] == "host":
            self.post_message(self.LineChosen(line))
        else:
            self.toggle_fold(line)

    def toggle_fold(self, line: Line) -> None:
        self.folded.symmetric_difference_update({line})
        self._cache.pop(line, None)
        self.rebuild()
        self.move_to(line)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.lines) + 1)

    def on_focus(self) -> None:
        self._refresh_index(self.cursor)

    def on_blur(self) -> None:
        self._refresh_index(self.cursor)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            key = self._column_at(event.x)
            if key is not None:
                self.post_message(self.SortClicked(key))
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < len(self.lines):
            self._set_cursor(index)
            if event.chain >= 2:
                self.action_choose()

    def _column_at(self, x: int) -> str | None:
        cols = self._columns()
        edges: list[tuple[str | None, int]] = [
            ("host", 2 + cols.host),
            ("rack", cols.rack),
            ("state", cols.state),
        ]
        edges += [(None, cols.gpu_slots * 4 + 1), ("util", cols.util), ("temp", cols.temp)]
        edges += [("power", cols.power), ("memory", cols.mem), ("health", cols.health)]
        right = 0
        for key, width in edges:
            right += width
            if x < right:
                return key
        return None
