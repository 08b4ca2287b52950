"""Sparklines of the selected GPU's last minutes: utilisation, temperature, power.

Gaps (no reading) are drawn as zero and said so in the label, rather than silently
joined, so a host that went away does not look like a flat line at its old value.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from opsconsole.ui.formatting import age_text
from opsconsole.ui.snapshot import HostDetail

SERIES = (("util_gpu_pct", "util", "%"), ("temp_c", "temp", "°C"), ("power_w", "power", "W"))


class GpuHistory(Vertical):
    DEFAULT_CSS = """
    GpuHistory { height: auto; }
    GpuHistory Label { width: 1fr; color: $text-muted; }
    GpuHistory Sparkline { height: 2; margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Label("history", id="history-title")
        for metric, _, _ in SERIES:
            yield Label("", id=f"label-{metric}")
            yield Sparkline([], id=f"spark-{metric}")

    def show(
        self, detail: HostDetail | None, gpu_index: int | None, interval_s: float, now_ts: float
    ) -> None:
        """History up to the host's last sample; for a host that is not fresh the newest
        point is labelled with its age ("14s ago"), never "now"."""
        title = self.query_one("#history-title", Label)
        if detail is None or gpu_index is None:
            title.update("history: waiting for data")
            for metric, _, _ in SERIES:
                self.query_one(f"#spark-{metric}", Sparkline).data = []
                self.query_one(f"#label-{metric}", Label).update("")
            return
        points = max((len(v) for v in detail.history.values()), default=0)
        minutes = points * interval_s / 60
        title.update(
            f"GPU {gpu_index} · last {minutes:.0f} min"
            if minutes >= 1
            else f"GPU {gpu_index} · last {points * interval_s:.0f} s"
        )
        snap = detail.snapshot
        newest = "now"
        if not snap.is_fresh:
            newest = f"{age_text(now_ts - (snap.last_sample_ts or now_ts))} ago"
        for metric, name, unit in SERIES:
            series = detail.history.get((gpu_index, metric), ())
            values = [v for v in series if v is not None]
            gaps = len(series) - len(values)
            label = name
            if values:
                label += f" {values[-1]:.0f}{unit} {newest}"
                label += f"  range {min(values):.0f}–{max(values):.0f}"
            if gaps:
                label += f" ({gaps} gaps)"
            self.query_one(f"#label-{metric}", Label).update(label)
            self.query_one(f"#spark-{metric}", Sparkline).data = [
                0.0 if v is None else float(v) for v in series
            ]
