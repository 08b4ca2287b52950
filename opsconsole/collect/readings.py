"""What the screen may say about one GPU metric, and the sparkline history behind it.

Why a Reading and not a bare number: "0 W", "not supported", "the driver hung" and "the
host stopped answering 40 s ago" must never look alike. A Reading carries its state; a
number is only `value` when the host is fresh. When the host is stale or down the last
number moves to `last_value`, so a dimmed old figure can be shown but never passes as live.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Literal

from opsconsole.collect.bounds import INVALID
from opsconsole.wire import GpuSample

ReadingState = Literal["value", "not_supported", "error", "invalid", "stale", "unreachable"]
"""`invalid`: the host sent a number outside its bounds (`opsconsole.collect.bounds`); the
number itself is gone, `detail` says what it was and why it was refused."""

GPU_METRICS: tuple[str, ...] = (
    "util_gpu_pct",
    "util_mem_pct",
    "mem_used_mib",
    "mem_total_mib",
    "temp_c",
    "power_w",
    "power_limit_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "clock_event_reasons",
    "ecc_volatile_corrected",
    "ecc_volatile_uncorrected",
    "ecc_aggregate_corrected",
    "ecc_aggregate_uncorrected",
    "remap_corrected",
    "remap_uncorrected",
    "remap_pending",
    "remap_failed",
    "retired_pages_sbe",
    "retired_pages_dbe",
    "retired_pages_pending",
    "pcie_replay",
    "fan_pct",
    "recovery_action",
)
"""Scalar GPU fields of the protocol, in display order."""

HISTORY_METRICS: tuple[str, ...] = ("util_gpu_pct", "temp_c", "power_w")
"""Metrics kept as in-memory history for sparklines."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One metric of one GPU. `value` is set only in state "value"; `detail` says why not
    (the agent's reason such as "lost", "unresponsive", "error: <text>")."""

    state: ReadingState
    value: float | int | bool | None = None
    last_value: float | int | bool | None = None
    as_of_ts: float | None = None
    detail: str = ""

    @property
    def is_live(self) -> bool:
        return self.state == "value"


def reading_of(gpu: GpuSample, field: str, host_status: str, as_of_ts: float | None) -> Reading:
    """The Reading of `field` in `gpu` given the host's status ("fresh", "stale", ...)."""
    value = getattr(gpu, field)
    if host_status != "fresh":
        state: ReadingState = "unreachable" if host_status == "down" else "stale"
        return Reading(state, None, value, as_of_ts, f"host is {host_status}")
    if value is not None:
        return Reading("value", value, value, as_of_ts)
    why = gpu.na.get(field, "")
    if why == "not_supported":
        return Reading("not_supported", as_of_ts=as_of_ts)
    if why.startswith(INVALID):
        return Reading("invalid", as_of_ts=as_of_ts, detail=why)
    if not why and gpu.state != "ok":
        why = gpu.state
    return Reading("error", as_of_ts=as_of_ts, detail=why or "not reported")


@dataclass(frozen=True, slots=True)
class GpuView:
    """One GPU as the UI shows it: identity, state, and every metric as a Reading."""

    index: int
    uuid: str | None
    state: str  # the agent's GPU state, or "stale"/"unreachable" when the host is
    readings: dict[str, Reading]
    nvlink_errors: dict[int, dict[str, bool | int | None]]  # by link number
    mig: list[dict[str, object]]
    processes: list[dict[str, object]]


def gpu_view(gpu: GpuSample, host_status: str, as_of_ts: float | None) -> GpuView:
    readings = {f: reading_of(gpu, f, host_status, as_of_ts) for f in GPU_METRICS}
    state: str = gpu.state
    if host_status == "down":
        state = "unreachable"
    elif host_status != "fresh":
        state = "stale"
    return GpuView(
        index=gpu.index,
        uuid=gpu.uuid,
        state=state,
        readings=readings,
        nvlink_errors=nvlink_by_link(gpu),
        mig=[
            {
                "gi": m.gi,
                "ci": m.ci,
                "uuid": m.uuid,
                "mem_used_mib": m.mem_used_mib,
                "mem_total_mib": m.mem_total_mib,
            }
            for m in gpu.mig
        ],
        processes=[
            {"pid": p.pid, "mem_used_mib": p.mem_used_mib, "name": p.name} for p in gpu.processes
        ],
    )


def nvlink_by_link(gpu: GpuSample) -> dict[int, dict[str, bool | int | None]]:
    """{link number: {"up", "replay_errors", ...}} from the protocol's per-GPU columns
    (the decoder checked that they are the same length)."""
    nvlink = gpu.nvlink
    return {
        link: {
            "up": up,
            "replay_errors": replay,
            "recovery_errors": recovery,
            "crc_flit_errors": crc_flit,
            "crc_data_errors": crc_data,
        }
        for link, (up, replay, recovery, crc_flit, crc_data) in enumerate(
            zip(
                nvlink.up,
                nvlink.replay_errors,
                nvlink.recovery_errors,
                nvlink.crc_flit_errors,
                nvlink.crc_data_errors,
                strict=True,
            )
        )
    }


class HistoryRing:
    """Fixed-size float32 rings, one per (gpu index, metric), all advanced together so the
    series of one host stay aligned; NaN marks "no reading". float32 because a sparkline
    needs no more and 1,000 hosts x 24 series x 300 points is then ~29 MiB."""

    __slots__ = ("_count", "_pos", "_series", "_ts", "points")

    def __init__(self, points: int):
        self.points = points
        self._series: dict[tuple[int, str], array[float]] = {}
        self._ts = array("d", [math.nan]) * points
        self._pos = 0
        self._count = 0

    def append(self, ts: float, values: dict[tuple[int, str], float | None]) -> None:
        pos = self._pos
        self._ts[pos] = ts
        for key in values.keys() - self._series.keys():
            self._series[key] = array("f", [math.nan]) * self.points
        for key, series in self._series.items():
            value = values.get(key)
            series[pos] = math.nan if value is None else value
        self._pos = (pos + 1) % self.points
        self._count = min(self._count + 1, self.points)

    def series(self, gpu_index: int, metric: str) -> list[float | None]:
        """Oldest to newest; None where there was no reading."""
        ring = self._series.get((gpu_index, metric))
        if ring is None:
            return []
        return [None if math.isnan(v) else v for v in self._ordered(ring)]

    def timestamps(self) -> list[float]:
        return list(self._ordered(self._ts))

    def _ordered(self, ring: array[float]) -> array[float]:
        if self._count < self.points:
            return ring[: self._count]
        return ring[self._pos :] + ring[: self._pos]

    def __len__(self) -> int:
        return self._count
