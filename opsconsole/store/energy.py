"""Energy of one GPU over a window, the one rule the tenant report and `usage` share:
NVML's energy counter where the host reported it (`recorder.measured_energy`), else the
minute mean board power times 60 s (`queries.gpu_energy`), marked as an estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlite_utils

from opsconsole.store.queries import gpu_energy
from opsconsole.store.recorder import measured_energy


@dataclass(frozen=True, slots=True)
class WindowEnergy:
    joules: float
    measured: bool
    """True when the counter covered some of the window; then `joules` is its rise alone."""
    covered_s: float
    """Seconds with a counter reading (measured) or a minute with a power reading."""
    counted_s: float
    """Seconds `covered_s` is out of: the window, or its whole minutes for an estimate."""


def window_energy(
    db: sqlite_utils.Database, host: str, gpu_index: int, start_ts: float, end_ts: float
) -> WindowEnergy:
    """The GPU's energy over [start, end): measured when the counter has readings inside,
    estimated from minutes starting inside otherwise (minutes without power count 0 J)."""
    counter = measured_energy(db, host, gpu_index, start_ts, end_ts)
    if counter["covered_s"] > 0:
        return WindowEnergy(counter["joules"], True, counter["covered_s"], end_ts - start_ts)
    energy = gpu_energy(db, host, gpu_index, start_ts, end_ts)
    counted_s = max(0, math.ceil(end_ts / 60) - math.ceil(start_ts / 60)) * 60.0
    return WindowEnergy(energy["joules"], False, energy["minutes_with_power"] * 60.0, counted_s)


def energy_source(measured: int, estimated: int) -> str:
    """How a sum of windows was obtained, in one word: measured, estimated, mixed or none."""
    if measured and estimated:
        return "mixed"
    return "measured" if measured else "estimated" if estimated else "none"
