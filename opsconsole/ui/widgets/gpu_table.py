"""Per-GPU table of the host view, updated by diff (dolphie's way): rows keyed by GPU
index, `update_cell` only for cells whose text changed, rows added or removed only when
the host's GPU set changes."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable

from opsconsole.collect.readings import GpuView
from opsconsole.ui.view.gpu_words import clock_event_words, xid_words
from opsconsole.ui.view.health import GpuHealth
from opsconsole.ui.view.readings_text import DIM, pair_text, reading_text, same_row, same_text
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


def _cell_key(cell: object) -> tuple:
    """What a cell looks like: its text and every style in it."""
    if isinstance(cell, Text):
        return (cell.plain, cell.style, cell.justify, tuple(cell.spans))
    return (str(cell),)


class GpuTable(DataTable):
    DEFAULT_CSS = "GpuTable { height: auto; max-height: 12; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: dict[int, tuple[Text, ...]] = {}
        self.uuid_w = 13
        self._cells_drawn: LRUCache[tuple, object] = LRUCache(4096)

    def on_mount(self) -> None:
        self.uuid_w = uuid_width(self.app.size.width)
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=self.uuid_w if key == "uuid" else width)

    def show(self, snap: HostSnapshot | None, views: list[GpuView] | tuple[GpuView, ...]) -> None:
        """`views`: the snapshot's GPUs as Readings (from the host detail when it has them)."""
        rows: dict[int, tuple[Text, ...]] = {}
        if snap is not None:
            for i, gpu in enumerate(views):
                health = snap.health[i] if i < len(snap.health) else None
                rows[gpu.index] = gpu_row(snap, gpu, health, self.uuid_w)
        with self.app.batch_update():
            for index in [i for i in self._shown if i not in rows]:
                self.remove_row(str(index))
                del self._shown[index]
            for index, cells in rows.items():
                old = self._shown.get(index)
                if old is None:
                    self.add_row(*cells, key=str(index))
                elif not same_row(old, cells):
                    for (key, _, _), new, was in zip(COLUMNS, cells, old, strict=True):
                        if not same_text(new, was):
                            self.update_cell(str(index), key, new)
                self._shown[index] = cells

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ):
        """DataTable's cell, drawn once per content rather than once per update: its own
        cache is keyed by the update count (and emptied on every screen resume), so each
        Enter on a host drew all 126 cells anew, 60 % of the first frame (bench/ui.py).
        Most cells (header, index, health, XID, links, model) read the same host to host."""
        if row_index < -1 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        content = None if row_index == -1 else _cell_key(self.get_row_at(row_index)[column_index])
        key = (
            row_index, column_index, content, base_style, width, cursor, hover,
            self._show_hover_cursor, self._pseudo_class_state, self.show_cursor,
            self.app.theme,
        )  # fmt: skip
        drawn = self._cells_drawn.get(key)
        if drawn is None:
            drawn = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells_drawn[key] = drawn
        return drawn

    @property
    def current_gpu(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return int(key) if key is not None else None
