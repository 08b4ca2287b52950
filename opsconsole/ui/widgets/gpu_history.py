"""Sparklines of the selected GPU's last minutes: utilisation, temperature, power.

Each line is drawn on a fixed scale that the label states ("scale 0–100%"), never
stretched from the series' own min to max: a GPU wobbling between 94 and 96 % must look
flat, not like a saw from floor to ceiling. Gaps (no reading) are drawn as a dim dot and
counted in the label, rather than silently joined, so a host that went away does not look
like a flat line at its old value.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from opsconsole.ui.view.formatting import age_text
from opsconsole.ui.view.snapshot import HostDetail
from opsconsole.ui.widgets.in_place import update_in_place

SERIES = (("util_gpu_pct", "util", "%"), ("temp_c", "temp", "°C"), ("power_w", "power", "W"))
BARS = "▁▂▃▄▅▆▇█"
TEMP_SCALE_C = (20.0, 100.0)
"""Idle GPUs sit near 30 °C, throttling starts in the high 80s: the whole story fits."""


def scale_for(
    metric: str, values: Sequence[float], power_limit_w: float | None
) -> tuple[float, float]:
    """The fixed scale a metric is drawn on; widened only if a value falls outside it."""
    if metric == "util_gpu_pct":
        low, high = 0.0, 100.0
    elif metric == "temp_c":
        low, high = TEMP_SCALE_C
    else:
        low, high = 0.0, power_limit_w or max(values, default=1.0)
    if values:
        low, high = min(low, min(values)), max(high, max(values))
    return low, max(high, low + 1.0)


def spark_text(series: Sequence[float | None], low: float, high: float, width: int) -> Text:
    """The newest `width` points as one line of bars on [low, high]."""
    text = Text(no_wrap=True)
    for value in list(series)[-max(1, width) :]:
        if value is None:
            text.append("·", "#6c6c6c")
            continue
        level = (value - low) / (high - low)
        text.append(BARS[min(len(BARS) - 1, max(0, round(level * (len(BARS) - 1))))])
    return text


class GpuHistory(Vertical):
    DEFAULT_CSS = """
    GpuHistory { height: auto; }
    GpuHistory Label { width: 1fr; color: $text-muted; }
    GpuHistory .spark { height: 1; margin-bottom: 1; color: $accent; }
    """

    def compose(self) -> ComposeResult:
        yield Label("history", id="history-title")
        for metric, _, _ in SERIES:
            yield Label("", id=f"label-{metric}")
            yield Static("", id=f"spark-{metric}", classes="spark")

    def show(
        self,
        detail: HostDetail | None,
        gpu_index: int | None,
        interval_s: float,
        now_ts: float,
        *,
        loading: bool = False,
    ) -> None:
        """History up to the host's last sample; for a host that is not fresh the newest
        point is labelled with its age ("14s ago"), never "now". `loading`: the history
        has been asked for and is on its way."""
        title = self.query_one("#history-title", Label)
        if detail is None or gpu_index is None:
            update_in_place(title, "history: loading…" if loading else "history: waiting for data")
            for metric, _, _ in SERIES:
                update_in_place(self.query_one(f"#spark-{metric}", Static), "")
                update_in_place(self.query_one(f"#label-{metric}", Label), "")
            return
        points = max((len(v) for v in detail.history.values()), default=0)
        minutes = points * interval_s / 60
        span = f"last {minutes:.0f} min" if minutes >= 1 else f"last {points * interval_s:.0f} s"
        uuid = next((g.uuid for g in detail.gpu_views if g.index == gpu_index and g.uuid), None)
        update_in_place(title, f"GPU {gpu_index} · {span}" + (f"\n{uuid}" if uuid else ""))
        snap = detail.snapshot
        newest = ""  # the newest point is now, unless the host has gone quiet
        if not snap.is_fresh:
            newest = f" {age_text(now_ts - (snap.last_sample_ts or now_ts))} ago"
        limit = next(
            (g.readings["power_limit_w"].value for g in detail.gpu_views if g.index == gpu_index),
            None,
        )
        width = max(10, (self.size.width or 40) - 1)
        for metric, name, unit in SERIES:
            series = detail.history.get((gpu_index, metric), ())
            values = [float(v) for v in series if v is not None]
            gaps = len(series) - len(values)
            low, high = scale_for(metric, values, float(limit) if limit else None)
            label = name
            if values:
                label += f" {values[-1]:.0f}{unit}{newest} · {min(values):.0f}–{max(values):.0f}"
            label += f" · scale {low:.0f}–{high:.0f}{unit}"
            if gaps:
                label += f" ({gaps} gaps)"
            update_in_place(self.query_one(f"#label-{metric}", Label), label)
            spark = self.query_one(f"#spark-{metric}", Static)
            update_in_place(spark, spark_text(series, low, high, width))
