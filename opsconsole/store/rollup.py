"""Per-GPU, per-minute rollups built in memory from samples and written as one row each.

The accumulator keeps counts, sums, minima and maxima, so a minute written in two pieces
(a console restarted mid-minute, a host whose clock runs behind) merges exactly in SQL:
each averaged metric carries the number of readings behind its average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from opsconsole.wire import GpuSample

# NVML clock event reason bits (nvmlClocksEventReason*).
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SYNC_BOOST = 0x10
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80

THERMAL_BITS = SW_THERMAL | HW_THERMAL
POWER_BITS = SW_POWER_CAP | HW_POWER_BRAKE
"""HW slowdown (0x8) alone also counts as power: NVML sets it with HW thermal for heat,
and without it for power brake or the fast power trigger. Sync boost is not a throttle."""


def is_power_capped(reasons: int) -> bool:
    return bool(reasons & POWER_BITS) or reasons & (HW_SLOWDOWN | HW_THERMAL) == HW_SLOWDOWN


def is_thermal_slowdown(reasons: int) -> bool:
    return bool(reasons & THERMAL_BITS)


INF = math.inf


class MinuteAccumulator:
    """One GPU's readings within one minute. Plain attributes in slots: this is updated for
    every GPU of every sample, so no dicts and no per-sample allocation."""

    __slots__ = (
        "clock_n",
        "clock_power",
        "clock_thermal",
        "gpu_index",
        "host",
        "mem_max",
        "mem_n",
        "mem_sum",
        "minute_ts",
        "n",
        "power_max",
        "power_min",
        "power_n",
        "power_sum",
        "temp_max",
        "temp_min",
        "temp_n",
        "temp_sum",
        "util_max",
        "util_min",
        "util_n",
        "util_sum",
    )

    def __init__(self, host: str, gpu_index: int, minute_ts: int) -> None:
        self.host = host
        self.gpu_index = gpu_index
        self.minute_ts = minute_ts
        self.n = 0
        self.util_n = self.temp_n = self.power_n = self.mem_n = 0
        self.util_sum = self.temp_sum = self.power_sum = self.mem_sum = 0.0
        self.util_min = self.temp_min = self.power_min = INF
        self.util_max = self.temp_max = self.power_max = self.mem_max = -INF
        self.clock_n = self.clock_power = self.clock_thermal = 0

    def row(self) -> tuple[object, ...]:
        """The gpu_minute row, in COLUMNS order."""
        return (
            self.host,
            self.gpu_index,
            self.minute_ts,
            self.n,
            *_stats(self.util_n, self.util_sum, self.util_min, self.util_max),
            *_stats(self.temp_n, self.temp_sum, self.temp_min, self.temp_max),
            *_stats(self.power_n, self.power_sum, self.power_min, self.power_max),
            self.mem_n,
            self.mem_sum / self.mem_n if self.mem_n else None,
            self.mem_max if self.mem_n else None,
            self.clock_n,
            self.clock_power / self.clock_n if self.clock_n else None,
            self.clock_thermal / self.clock_n if self.clock_n else None,
        )


def _stats(
    n: int, total: float, low: float, high: float
) -> tuple[int, float | None, float | None, float | None]:
    if not n:
        return (0, None, None, None)
    return (n, low, total / n, high)


def accumulate(
    open_minutes: dict[int, MinuteAccumulator],
    host: str,
    minute_ts: int,
    gpus: Iterable[GpuSample],
    finished: list[MinuteAccumulator],
) -> None:
    """Fold one sample's GPU readings into `open_minutes` (by GPU index); a GPU whose
    minute changed has its previous accumulator moved to `finished`.

    The hot path: 8,000 calls' worth of GPUs every poll cycle, hence the inlined updates.
    """
    for gpu in gpus:
        acc = open_minutes.get(gpu.index)
        if acc is None or acc.minute_ts != minute_ts:
            if acc is not None:
                finished.append(acc)
            acc = open_minutes[gpu.index] = MinuteAccumulator(host, gpu.index, minute_ts)
        acc.n += 1
        v = gpu.util_gpu_pct
        if v is not None:
            acc.util_n += 1
            acc.util_sum += v
            if v < acc.util_min:
                acc.util_min = v
            if v > acc.util_max:
                acc.util_max = v
        v = gpu.temp_c
        if v is not None:
            acc.temp_n += 1
            acc.temp_sum += v
            if v < acc.temp_min:
                acc.temp_min = v
            if v > acc.temp_max:
                acc.temp_max = v
        v = gpu.power_w
        if v is not None:
            acc.power_n += 1
            acc.power_sum += v
            if v < acc.power_min:
                acc.power_min = v
            if v > acc.power_max:
                acc.power_max = v
        v = gpu.mem_used_mib
        if v is not None:
            acc.mem_n += 1
            acc.mem_sum += v
            if v > acc.mem_max:
                acc.mem_max = v
        reasons = gpu.clock_event_reasons
        if reasons is not None:
            acc.clock_n += 1
            if reasons & THERMAL_BITS:
                acc.clock_thermal += 1
            if reasons & POWER_BITS or reasons & (HW_SLOWDOWN | HW_THERMAL) == HW_SLOWDOWN:
                acc.clock_power += 1


COLUMNS = (
    "host",
    "gpu_index",
    "minute_ts",
    "n",
    "util_pct_n",
    "util_pct_min",
    "util_pct_avg",
    "util_pct_max",
    "temp_c_n",
    "temp_c_min",
    "temp_c_avg",
    "temp_c_max",
    "power_w_n",
    "power_w_min",
    "power_w_avg",
    "power_w_max",
    "mem_used_mib_n",
    "mem_used_mib_avg",
    "mem_used_mib_max",
    "clock_event_n",
    "clock_event_share_power",
    "clock_event_share_thermal",
)


def _merge_sql() -> str:
    """The upsert that folds a second piece of a minute into the stored row.

    In DO UPDATE a bare column is the stored value and `excluded.` the new piece; every
    right-hand side sees the stored row as it was, so counts may be updated alongside.
    """

    def weighted(col: str, n: str) -> str:
        return (
            f"{col} = CASE WHEN {n} + excluded.{n} = 0 THEN NULL ELSE "
            f"(coalesce({col}, 0) * {n} + coalesce(excluded.{col}, 0) * excluded.{n})"
            f" / ({n} + excluded.{n}) END"
        )

    def extreme(fn: str, col: str) -> str:
        return f"{col} = {fn}(coalesce({col}, excluded.{col}), coalesce(excluded.{col}, {col}))"

    sets = ["n = n + excluded.n"]
    for metric in ("util_pct", "temp_c", "power_w"):
        sets += [
            extreme("min", f"{metric}_min"),
            weighted(f"{metric}_avg", f"{metric}_n"),
            extreme("max", f"{metric}_max"),
        ]
    sets += [
        weighted("mem_used_mib_avg", "mem_used_mib_n"),
        extreme("max", "mem_used_mib_max"),
        weighted("clock_event_share_power", "clock_event_n"),
        weighted("clock_event_share_thermal", "clock_event_n"),
    ]
    sets += [f"{n} = {n} + excluded.{n}" for n in COLUMNS if n.endswith("_n")]
    return (
        f"INSERT INTO gpu_minute ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) "
        f"ON CONFLICT (host, gpu_index, minute_ts) DO UPDATE SET {', '.join(sets)}"
    )


UPSERT_SQL = _merge_sql()
