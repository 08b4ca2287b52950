"""The metrics a GPU cell can be coloured by, and how each one reads and formats.

Why colour ramps differ: high utilisation or memory use is not bad news, so those use a
cool ramp (dark idle to bright busy); temperature and power are heat, so they run from
green to red. Health is its own three colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from rich.style import Style

from opsconsole.collect.readings import Reading, reading_of
from opsconsole.ui.view.health import GpuHealth
from opsconsole.wire import GpuSample

COOL_RAMP = ("#0d2b45", "#14466b", "#1f6f9e", "#2f9fd0", "#6fd3f5")
HEAT_RAMP = ("#1e6b30", "#4f8f23", "#b59a12", "#c96a10", "#c62828")
HEALTH_COLOURS = {"ok": "#1e6b30", "warn": "#b59a12", "fault": "#c62828", "unknown": "#3a3a3a"}
HEALTH_MARKS = {"ok": " ✓ ", "warn": " ! ", "fault": " ✖ ", "unknown": " ? "}


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str
    low: float
    high: float
    ramp: tuple[str, ...]

    def value(self, gpu: GpuSample, status: str) -> Reading:
        if self.key == "memory":
            return memory_reading(gpu, status)
        return cell_reading(gpu, FIELDS[self.key], status)

    def colour(self, value: float) -> str:
        span = self.high - self.low
        position = 0.0 if span <= 0 else (value - self.low) / span
        if not math.isfinite(position):  # never raise on a number, whatever it is
            position = 1.0 if position > 0 else 0.0
        index = min(len(self.ramp) - 1, max(0, int(position * len(self.ramp))))
        return self.ramp[index]


FIELDS = {"util": "util_gpu_pct", "temp": "temp_c", "power": "power_w"}

METRICS: dict[str, Metric] = {
    "util": Metric("util", "utilisation", "%", 0, 100, COOL_RAMP),
    "temp": Metric("temp", "temperature", "°C", 35, 90, HEAT_RAMP),
    "power": Metric("power", "power", "W", 60, 700, HEAT_RAMP),
    "memory": Metric("memory", "memory used", "%", 0, 100, COOL_RAMP),
    "health": Metric("health", "health", "", 0, 1, HEAT_RAMP),
    # Coloured by who holds the GPU now (the lease board), not by a reading.
    "tenant": Metric("tenant", "tenant", "", 0, 1, COOL_RAMP),
}
METRIC_ORDER = tuple(METRICS)


def cell_reading(gpu: GpuSample, field: str, status: str) -> Reading:
    """`collect.readings.reading_of` for one field, without building the other 23."""
    return reading_of(gpu, field, status, None)


def memory_reading(gpu: GpuSample, status: str) -> Reading:
    """Memory used as a percentage, as a Reading so its state carries through."""
    used, total = gpu.mem_used_mib, gpu.mem_total_mib
    if used is None or not total:
        return cell_reading(gpu, "mem_used_mib", status)
    pct = 100.0 * used / total
    if status != "fresh":
        return Reading("unreachable" if status == "down" else "stale", None, pct)
    return Reading("value", pct, pct)


@cache
def cell_style(background: str | None, dim: bool = False) -> Style:
    if background is None:
        return Style(color="#707070" if dim else "#c0c0c0", dim=dim)
    return Style(color="#000000" if background in ("#6fd3f5",) else "#ffffff", bgcolor=background)


def gpu_cell(
    metric: Metric, gpu: GpuSample, status: str, health: GpuHealth | None
) -> tuple[str, Style]:
    """Three characters and a style for one GPU in the fleet grid."""
    if metric.key == "health":
        level = health.level if health is not None else "unknown"
        return HEALTH_MARKS[level], cell_style(HEALTH_COLOURS[level])
    reading = metric.value(gpu, status)
    if reading.is_live and reading.value is not None:
        value = float(reading.value)
        return f"{value:3.0f}"[-3:], cell_style(metric.colour(value))
    if reading.state == "stale" and reading.last_value is not None:
        # an old number, dimmed and uncoloured: never passes as live
        return f"{float(reading.last_value):3.0f}"[-3:], cell_style(None, dim=True)
    if reading.state == "not_supported":
        return "n/a", cell_style(None, dim=True)
    if reading.state == "unreachable":
        return " — ", cell_style(None, dim=True)
    return "ERR", Style(color="#ff5f5f", bold=True)
