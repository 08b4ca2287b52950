"""`[capacity]`: the thresholds the capacity report ranks bottlenecks against, and the
windows it reads telemetry over. Every key has a default; an unknown key is refused."""

from __future__ import annotations

from pydantic import Field

from opsconsole.config.base import Section
from opsconsole.counters import IB_ERROR_COUNTERS

DEFAULT_IB_ERROR_COUNTERS = IB_ERROR_COUNTERS


class CapacityConfig(Section):
    runway_days: int = Field(28, ge=1, le=366)
    """Days of the lease calendar the runway covers (the CLI's --days overrides it)."""
    placement_window_h: float = Field(24.0, gt=0)
    """A lease placed now is assumed to run at least this long: GPUs booked or drained
    within it are not counted free now."""
    target_lease_gpus: int = Field(64, ge=1)
    """The whole-node lease a leaf switch should always be able to take (a typical
    distributed-training job); a leaf that cannot, while GPUs lie scattered, is ranked."""
    fragmented_gpus_min: int = Field(16, ge=1)
    """Scattered free GPUs (on part-used nodes) in one leaf at which fragmentation is ranked."""
    power_budget_pct: float = Field(90.0, gt=0)
    """Rack power at or above this share of its budget is ranked (over 100 %: critical)."""
    power_window_min: float = Field(5.0, gt=0)
    """Without live readings, rack power is the average of the minute rollups this recent."""
    throttle_share_pct: float = Field(10.0, ge=0, le=100)
    """Share of a rack's GPU-time in power-cap or thermal clock events that is ranked."""
    throttle_window_h: float = Field(1.0, gt=0)
    """Hours of minute rollups the clock-event shares are read over."""
    ib_errors_per_s: float = Field(0.1, ge=0)
    """A port whose summed error counters rise faster than this is ranked."""
    ib_error_counters: list[str] = Field(default_factory=lambda: list(DEFAULT_IB_ERROR_COUNTERS))
    """The IB counters summed for the error rate (sysfs names)."""
    ib_link_lookback_h: float = Field(168.0, gt=0)
    """Without live readings, ports whose last stored link event this recent is a
    link_down count as down."""
    idle_util_pct: float = Field(5.0, ge=0, le=100)
    """A leased GPU whose every minute averaged below this utilisation is idle..."""
    idle_hours: float = Field(4.0, gt=0)
    """...for this many hours (its lease must have held it that long)."""
    idle_min_coverage: float = Field(0.8, gt=0, le=1)
    """Share of the idle window's minutes that must have a reading: no data is not idle."""
    idle_gpus_min: int = Field(8, ge=1)
    """Idle leased GPUs of one tenant at which it is ranked."""
    runway_soon_days: int = Field(7, ge=0)
    """An over-committed day this close is critical; later ones are warnings."""
