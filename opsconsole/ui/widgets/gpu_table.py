"""Per-GPU table of the host view, updated by diff (dolphie's way): a line per GPU, drawn
again only when its cells, the cursor or the styles change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from opsconsole.collect.readings import GpuView
from opsconsole.ui.view.gpu_words import clock_event_words, xid_words
from opsconsole.ui.view.health import GpuHealth
from opsconsole.ui.view.readings_text import DIM, pair_text, reading_text
from opsconsole.ui.view.snapshot import HostSnapshot

COLUMNS = (
    ("gpu", "GPU", 3),
    ("util", "UTIL", 4),
    ("memory", "MEMORY GiB", 11),
    ("temp", "TEMP", 5),
    ("power", "POWER W", 7),
    ("health", "HEALTH", 22),
    ("xid", "LAST XID", 30),
    ("events", "CLOCK EVENTS", 22),
    ("ecc", "ECC vol c/u", 11),
    ("remap", "ROW REMAP", 12),
    ("nvlink", "NVLINK", 12),
    ("clocks", "SM/MEM MHz", 10),
    ("model", "MODEL", 10),
    ("uuid", "UUID", 13),
)
UUID_FULL = 36
"""An NVIDIA UUID without its "GPU-" prefix."""
"""Health and the last XID come before the finer detail: they are what an operator acts on."""
HEALTH_STYLES = {"ok": "#5fd75f", "warn": "#ffd75f", "fault": "bold #ff5f5f", "unknown": DIM}


def _gib(mib: float) -> str:
    return f"{mib / 1024:.1f}"


def _pct(value: float) -> str:
    return f"{value:.0f}%"


def _temp(value: float) -> str:
    return f"{value:.0f}°C"


def uuid_width(screen_width: int) -> int:
    """The UUID column takes what the other columns leave, up to the whole UUID: cut
    only on a terminal too narrow for it (the selected GPU's history names it in full)."""
    others = sum(width for key, _, width in COLUMNS if key != "uuid") + 2 * len(COLUMNS) + 2
    return max(13, min(UUID_FULL, screen_width - others))


def gpu_row(
    snap: HostSnapshot, gpu: GpuView, health: GpuHealth | None, uuid_w: int = 13
) -> tuple[Text, ...]:
    r = gpu.readings
    live = snap.is_fresh
    model = snap.host.gpu_model or ""
    if snap.hello is not None:
        model = next((g.name for g in snap.hello.gpus if g.index == gpu.index and g.name), model)
    uuid = (gpu.uuid or "—").removeprefix("GPU-")
    reasons = r["clock_event_reasons"]
    events = reading_text(reasons, lambda mask: clock_event_words(int(mask)))
    ecc = pair_text(r["ecc_volatile_corrected"], r["ecc_volatile_uncorrected"], str, "")
    xid = snap.last_xid.get(gpu.index)
    xid_text = Text("—", DIM) if xid is None else Text(f"{xid.code} {xid_words(xid.code)}")
    remap = _remap_text(gpu) if live else Text("—", DIM)
    nvlink = _nvlink_text(gpu) if live else Text("—", DIM)
    level = health.level if health is not None else "unknown"
    why = f": {health.why}" if health is not None and level in ("warn", "fault") else ""
    health_text = Text(level + why, HEALTH_STYLES[level])
    state = (
        Text(str(gpu.index))
        if gpu.state in ("ok", "stale", "unreachable")
        else Text(f"{gpu.index} {gpu.state}", "bold #ff5f5f")
    )
    cells = {
        "gpu": state,
        "util": reading_text(r["util_gpu_pct"], _pct),
        "memory": pair_text(r["mem_used_mib"], r["mem_total_mib"], _gib, ""),
        "temp": reading_text(r["temp_c"], _temp),
        "power": pair_text(r["power_w"], r["power_limit_w"], "{:.0f}".format, ""),
        "health": health_text,
        "xid": xid_text,
        "events": events,
        "ecc": ecc,
        "remap": remap,
        "nvlink": nvlink,
        "clocks": pair_text(r["sm_clock_mhz"], r["mem_clock_mhz"], "{:.0f}".format, ""),
        "model": Text(model.removeprefix("NVIDIA ")[:10]),
        "uuid": Text(uuid if len(uuid) <= uuid_w else uuid[: uuid_w - 1] + "…", DIM),
    }
    return tuple(cells[key] for key, _, _ in COLUMNS)


def _nvlink_text(gpu: GpuView) -> Text:
    """ "18 up", or "16 up 2 down" in amber: links counted one by one, never summed."""
    links = gpu.nvlink_errors.values()
    if not links:
        return Text("—", DIM)
    up = sum(1 for link in links if link.get("up"))
    down = sum(1 for link in links if link.get("up") is False)
    text = Text(f"{up} up")
    if down:
        text.append(f" {down} down", "bold #ffd75f")
    return text


def _remap_text(gpu: GpuView) -> Text:
    r = gpu.readings
    if r["remap_failed"].value:
        return Text("FAILED", "bold #ff5f5f")
    if r["remap_pending"].value:
        return Text("pending reset", "bold #ffd75f")
    uncorrected = r["remap_uncorrected"].value
    if r["remap_pending"].state == "not_supported":
        return Text("n/a", DIM)
    return Text(f"ok ({uncorrected} unc)" if uncorrected else "ok")


def _cell_key(cell: Text) -> tuple[object, ...]:
    """What a cell looks like: its text and every style in it."""
    return (cell.plain, cell.style, cell.justify, tuple(cell.spans))


class GpuTable(ScrollView, can_focus=True):
    """One line per GPU under a fixed header, drawn with Textual's line API.

    It looks like the DataTable it replaced (the same component styles, renamed, and the
    same cell padding and zebra stripes) but keeps each line's Strip for as long as its
    cells, cursor and styles are the same: DataTable's caches are keyed by its update
    counter and emptied on every screen resume, so each Enter on a host drew all its
    cells anew (60 % of the host view's first frame, bench/ui.py). Public API only: the
    DataTable version hooked its private `_render_cell`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "gpu-table--header",
        "gpu-table--even-row",
        "gpu-table--odd-row",
        "gpu-table--cursor",
    }
    DEFAULT_CSS = """
    GpuTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 12;
        &:focus {
            background-tint: $foreground 5%;
            & > .gpu-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .gpu-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .gpu-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .gpu-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .gpu-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .gpu-table--odd-row {
        }
        & > .gpu-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .gpu-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "cursor_first", "First GPU", show=False),
        Binding("pagedown", "cursor_last", "Last GPU", show=False),
        Binding("ctrl+home", "cursor_first", "First GPU", show=False),
        Binding("ctrl+end", "cursor_last", "Last GPU", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("home", "scroll_home", "Home", show=False),
        Binding("end", "scroll_end", "End", show=False),
    ]
    PADDING = 1
    """Spaces either side of each cell, as DataTable's default `cell_padding`."""

    class GpuHighlighted(Message):
        """The cursor moved to another GPU (the host view shows that GPU's history)."""

        def __init__(self, table: GpuTable, gpu_index: int) -> None:
            super().__init__()
            self.table = table
            self.gpu_index = gpu_index

    cursor_row: reactive[int] = reactive(0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uuid_w = 13
        self._rows: list[tuple[int, tuple[Text, ...], tuple[object, ...]]] = []
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        self._cells: LRUCache[tuple[object, int], list[Segment]] = LRUCache(1024)
        self._widths: list[int] = []
        self._header = tuple(Text(label) for _, label, _ in COLUMNS)
        self._header_key: tuple[object, ...] = tuple(_cell_key(cell) for cell in self._header)

    def on_mount(self) -> None:
        self.uuid_w = uuid_width(self.app.size.width)
        self._widths = [self.uuid_w if key == "uuid" else width for key, _, width in COLUMNS]
        self._resize_virtual()

    # --- data -------------------------------------------------------------------------
    def show(self, snap: HostSnapshot | None, views: Sequence[GpuView]) -> None:
        """`views`: the snapshot's GPUs as Readings (from the host detail when it has them).
        Only lines whose cells changed are drawn again."""
        rows: list[tuple[int, tuple[Text, ...], tuple[object, ...]]] = []
        if snap is not None:
            for i, gpu in enumerate(views):
                health = snap.health[i] if i < len(snap.health) else None
                cells = gpu_row(snap, gpu, health, self.uuid_w)
                rows.append((gpu.index, cells, tuple(_cell_key(cell) for cell in cells)))
        was = self._rows
        self._rows = rows
        if len(rows) != len(was):
            self._resize_virtual()
            self.refresh()
        else:
            for y, (old, new) in enumerate(zip(was, rows, strict=True)):
                if old[0] != new[0] or old[2] != new[2]:
                    self.refresh_line(y + 1)
        if self.cursor_row >= len(rows):
            self.cursor_row = max(0, len(rows) - 1)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def get_row_at(self, row_index: int) -> tuple[Text, ...]:
        return self._rows[row_index][1]

    def get_cell(self, gpu: str, column: str) -> Text:
        """The cell of GPU `gpu` (its index) in `column` (a key of COLUMNS)."""
        at = next(i for i, (key, _, _) in enumerate(COLUMNS) if key == column)
        return next(cells[at] for index, cells, _ in self._rows if str(index) == gpu)

    @property
    def current_gpu(self) -> int | None:
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)][0]

    # --- cursor -----------------------------------------------------------------------
    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._cursor_into_view()
        gpu = self.current_gpu
        if gpu is not None and old != new:
            self.post_message(self.GpuHighlighted(self, gpu))

    def _cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        visible = max(1, self.scrollable_content_region.height - 1)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.cursor_row = max(0, self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.cursor_row = max(0, min(len(self._rows) - 1, self.cursor_row + 1))

    def action_cursor_first(self) -> None:
        self.cursor_row = 0

    def action_cursor_last(self) -> None:
        self.cursor_row = max(0, len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            row = offset.y - 1 + int(self.scroll_y)
            if row < len(self._rows):
                self.cursor_row = row

    # --- drawing ----------------------------------------------------------------------
    def _resize_virtual(self) -> None:
        width = sum(self._widths) + 2 * self.PADDING * len(self._widths)
        self.virtual_size = Size(width, len(self._rows) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    def render_line(self, y: int) -> Strip:
        """Line `y` of the widget: the header stays on line 0 while rows scroll."""
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            return self._line(-1, scroll_x, width)
        row = y - 1 + scroll_y
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        return self._line(row, scroll_x, width)

    def _line(self, row: int, scroll_x: int, width: int) -> Strip:
        content: tuple[object, ...]
        if row == -1:
            row_style = self.get_component_styles("gpu-table--header").rich_style
            cursor_style = Style()
            content = self._header_key
        else:
            parity = "gpu-table--odd-row" if row % 2 else "gpu-table--even-row"
            row_style = self.get_component_styles(parity).rich_style
            on_cursor = row == self.cursor_row
            cursor_style = (
                self.get_component_rich_style("gpu-table--cursor") if on_cursor else Style()
            )
            content = self._rows[row][2]
        key = (
            content,
            row_style,
            cursor_style,
            self.rich_style,
            scroll_x,
            width,
            tuple(self._widths),
        )
        strip = self._lines.get(key)
        if strip is None:
            cells = self._header if row == -1 else self._rows[row][1]
            strip = self._draw(cells, content, row_style, cursor_style, scroll_x, width)
            self._lines[key] = strip
        return strip

    def _draw(
        self,
        cells: tuple[Text, ...],
        keys: tuple[object, ...],
        row_style: Style,
        cursor_style: Style,
        scroll_x: int,
        width: int,
    ) -> Strip:
        """As DataTable draws a row: each cell padded, its own styles over the row's, the
        cursor's colour over both; the row's style carried to the widget's right edge. The
        GPU column stays put when the rest scrolls sideways, so a UUID or a clock scrolled
        into view still has its GPU beside it. Cells are kept drawn by content: most read
        the same from host to host ("ok", "—", "18 up", the model)."""
        segments: list[Segment] = []
        for cell, key, cell_w in zip(cells, keys, self._widths, strict=True):
            drawn = self._cells.get((key, cell_w))
            if drawn is None:
                drawn = self._cells[(key, cell_w)] = self._draw_cell(cell, cell_w)
            segments += drawn
        style = row_style + cursor_style
        post = Style.from_color(color=cursor_style.color)
        row = Strip(Segment.apply_style(segments, style=style, post_style=post))
        fixed_w = self._widths[0] + 2 * self.PADDING
        strip = Strip.join([row.crop(0, fixed_w), row.crop(fixed_w + scroll_x, row.cell_length)])
        if strip.cell_length < width:
            strip = Strip.join([strip, Strip([Segment(" " * (width - strip.cell_length), style)])])
        return strip.crop(0, width).adjust_cell_length(width, self.rich_style).simplify()

    def _draw_cell(self, cell: Text, cell_w: int) -> list[Segment]:
        """One cell padded to its column, cropped if longer, in its own styles only."""
        if cell.cell_len > cell_w:
            cell = cell.copy()
            cell.truncate(cell_w, overflow="crop")
        pad = " " * self.PADDING
        line = Text(pad, no_wrap=True, overflow="crop", end="")
        line.append_text(cell)
        line.append(" " * (cell_w - cell.cell_len) + pad)
        return list(line.render(self.app.console))
