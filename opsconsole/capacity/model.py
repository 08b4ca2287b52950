"""What the capacity report hands to the CLI and the console: plain frozen records, each
figure in its unit, and `None` (with a note saying why) where nothing was measured, never
a made-up 0."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from opsconsole.config import Severity

SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1}
"""Findings are critical or warning (the alerts' `Severity`; no info findings), worst first."""
NO_DATA = "no data"
NO_BUDGET = "no budget set"


@dataclass(frozen=True, slots=True)
class LargestLease:
    """The largest lease one group of `level` could take now (one GPU model per lease)."""

    level: str
    """"node", "rack", "leaf" or "site"."""
    gpus: int
    """Most free GPUs in one group (part-used nodes included)."""
    where: str
    """The group holding them ("" when nothing is free)."""
    whole_nodes: int
    """Most fully free nodes in one group."""
    whole_nodes_where: str
    explanation: str = ""
    """The leases layer's own placement of `gpus` there (`place_within`)."""


@dataclass(frozen=True, slots=True)
class Consolidation:
    """Packing the part-used nodes of one rack: what it would free."""

    rack: str
    part_used_nodes: int
    gpus_in_use: int
    whole_nodes_freed: int


@dataclass(frozen=True, slots=True)
class Occupancy:
    """GPUs of one site, leaf switch or rack. Headline counts overlap (a leased GPU can
    also be drained); `bar` splits the total into parts that add up to it."""

    level: str
    """"site", "leaf" or "rack"."""
    name: str
    site: str
    hosts: int
    total_gpus: int
    healthy_gpus: int
    leased_gpus: int
    """Booked at this moment."""
    reserved_gpus: int
    """Booked later inside the placement window, not now."""
    drained_gpus: int
    """Drained now or within the placement window."""
    free_gpus: int
    """Healthy, not drained, not booked within the placement window: placeable now."""
    free_whole_nodes: int
    scattered_free_gpus: int
    """Free GPUs on part-used nodes: not usable for whole-node leases."""
    fragmentation_pct: float | None
    """Scattered share of the free GPUs; None when nothing is free."""
    largest: tuple[LargestLease, ...]
    bar: dict[str, int]
    """leased, unhealthy, drained, reserved, free: each GPU counted once, in that order."""
    unknown_model_hosts: int = 0
    consolidation: Consolidation | None = None


@dataclass(frozen=True, slots=True)
class RackPower:
    rack: str
    site: str
    leaf: str | None
    hosts: int
    hosts_reporting: int
    measured_kw: float | None
    """GPU power plus the configured per-host overhead of the reporting hosts."""
    budget_kw: float | None
    use_pct: float | None
    power_cap_share_pct: float | None
    """Share of GPU-time in power-cap clock events over the throttle window."""
    thermal_share_pct: float | None
    source: str
    note: str
    """"no budget set", "no data", "partial: 12 of 16 hosts reporting" (comma separated)."""


@dataclass(frozen=True, slots=True)
class PortIssue:
    host: str
    rack: str
    port: str
    problem: str
    """"down", "below rate", "errors", "missing"."""
    detail: str
    rate_gbps: float | None = None
    expected_rate_gbps: float | None = None
    errors_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class LeafFabric:
    leaf: str
    site: str
    hosts: int
    hosts_unknown: int
    """Hosts whose ports are not known now (not fresh, or no live readings)."""
    ports_down: int
    ports_below_rate: int
    ports_with_errors: int
    issues: tuple[PortIssue, ...]
    tenants: tuple[str, ...]
    """Tenants whose leases hold GPUs on a host with a port issue now."""
    leases: tuple[int, ...]
    affected_gpus: int


@dataclass(frozen=True, slots=True)
class TenantIdle:
    tenant: str
    leased_gpus: int
    idle_gpus: int
    busy_gpus: int
    no_data_gpus: int
    """Leased long enough, but without enough readings to judge: not called idle."""
    too_new_gpus: int
    """Leased more recently than the idle window: not judged."""
    idle_hosts: tuple[str, ...]
    leases: tuple[int, ...]
    """Leases holding the idle GPUs."""


@dataclass(frozen=True, slots=True)
class RunwayDay:
    date: str
    """UTC date, YYYY-MM-DD."""
    start_ts: float
    committed_gpus: int
    """Most GPUs booked at one moment of the day (active + reserved leases)."""
    capacity_gpus: int
    """Fewest GPUs healthy (as now) and not drained at one moment of the day."""
    over_by: int
    """Most GPUs booked beyond what is available at one moment; 0 when none."""


@dataclass(frozen=True, slots=True)
class RunwayWeek:
    start_date: str
    whole_nodes: int
    """Nodes healthy, undrained and without any booking for the whole week."""


@dataclass(frozen=True, slots=True)
class RunwaySeries:
    kind: str
    """"site" or "model"."""
    name: str
    total_gpus: int
    days: tuple[RunwayDay, ...]
    weeks: tuple[RunwayWeek, ...]
    first_over_committed: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """What Enter on a bottleneck opens: a rack, leaf, site, host, lease or tenant."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Bottleneck:
    rank: int
    kind: str
    """power, throttle, fabric, idle, fragmentation, runway."""
    severity: Severity
    subject: str
    title: str
    measured: str
    measured_value: float
    threshold: str
    threshold_value: float
    why: str
    action: str
    gpus_affected: int
    target: Target


@dataclass(frozen=True)
class CapacityReport:
    now_ts: float
    site: str | None
    days: int
    sources: dict[str, str]
    occupancy: tuple[Occupancy, ...]
    power: tuple[RackPower, ...]
    fabric: tuple[LeafFabric, ...]
    idle: tuple[TenantIdle, ...]
    free_healthy: dict[str, int]
    """Site → free healthy GPUs (unsold capacity)."""
    runway: tuple[RunwaySeries, ...]
    bottlenecks: tuple[Bottleneck, ...]
    thresholds: dict[str, float]
    notes: tuple[str, ...] = field(default=())
    handover: dict[str, dict[str, int]] = field(default_factory=dict)
    """Site → nodes validating / cleaning / failed-validation now (counted apart: they
    are neither sold nor sellable until their run ends)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def site_rows(self) -> list[Occupancy]:
        return [o for o in self.occupancy if o.level == "site"]

    def series(self, kind: str) -> list[RunwaySeries]:
        return [s for s in self.runway if s.kind == kind]
