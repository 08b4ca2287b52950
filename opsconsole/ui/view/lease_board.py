"""What the console knows about leases at one moment, built on a worker thread from the
leases layer's records and handed to the UI whole (like a fleet batch): the leases the
table shows, the open ones the calendar draws, and who holds each GPU right now.

Why derive "who holds this GPU" here and not in SQL per host: the fleet grid draws a
thousand host lines; one pass over the open leases on the worker is cheaper than any
per-line lookup on the UI thread.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from opsconsole.config import Fleet
from opsconsole.leases import LEASE_STATES, Lease, LeaseState, Tenant
from opsconsole.leases.handover import NodeHandover
from opsconsole.leases.model import OPEN_STATES
from opsconsole.validate.store import HostRun

STATE_CHOICES: tuple[tuple[LeaseState, ...], ...] = (
    OPEN_STATES,
    *((state,) for state in LEASE_STATES),
    LEASE_STATES,
)
"""What `s` cycles through on the Leases screen: open leases first, then each state, all."""

FALLBACK_COLOURS = ("#5fafff", "#d787ff", "#87d787", "#ffaf5f", "#5fd7d7", "#ff87af", "#d7d75f")
"""For tenants created without a colour: picked by name, so a tenant keeps its colour."""


@dataclass(frozen=True, slots=True)
class LeaseFilter:
    tenant: str | None = None
    states: tuple[LeaseState, ...] = OPEN_STATES

    @property
    def states_label(self) -> str:
        if self.states == LEASE_STATES:
            return "all"
        return " + ".join(self.states)

    def next_states(self) -> LeaseFilter:
        index = STATE_CHOICES.index(self.states) if self.states in STATE_CHOICES else -1
        return LeaseFilter(self.tenant, STATE_CHOICES[(index + 1) % len(STATE_CHOICES)])


@dataclass(frozen=True, slots=True)
class GpuTenant:
    """Who holds one GPU slot now."""

    tenant: str
    lease_id: int
    end_ts: float
    colour: str


@dataclass(frozen=True)
class LeaseBoard:
    now_ts: float
    lease_filter: LeaseFilter
    tenants: tuple[Tenant, ...]
    open_leases: tuple[Lease, ...]
    """Reserved and active leases: what the calendar, the fleet grid and the host view draw."""
    listed: tuple[Lease, ...]
    """The leases the table shows under `lease_filter`."""
    by_host: dict[str, dict[int, GpuTenant]] = field(default_factory=dict)
    """host → {GPU index: holder}, for leases active at `now_ts`."""
    colours: dict[str, str] = field(default_factory=dict)
    total_gpus: int = 0
    handover: dict[str, NodeHandover] = field(default_factory=dict)
    """Nodes validating, cleaning or failed validation (free, leased, drained left out)."""
    validations: dict[str, dict[str, HostRun]] = field(default_factory=dict)
    """host → level → its newest finished validation run."""

    @property
    def leased_gpus(self) -> int:
        return sum(len(gpus) for gpus in self.by_host.values())

    @property
    def free_gpus(self) -> int:
        return max(0, self.total_gpus - self.leased_gpus)

    def colour(self, tenant: str) -> str:
        return self.colours.get(tenant) or fallback_colour(tenant)

    def lease(self, lease_id: int) -> Lease | None:
        for lease in (*self.listed, *self.open_leases):
            if lease.id == lease_id:
                return lease
        return None

    def host_leases(self, host: str) -> list[Lease]:
        """Open leases holding a GPU of `host`, by start."""
        return sorted(
            (lease for lease in self.open_leases if host in lease.hosts),
            key=lambda lease: (lease.start_ts, lease.id),
        )


def fallback_colour(name: str) -> str:
    return FALLBACK_COLOURS[zlib.crc32(name.encode()) % len(FALLBACK_COLOURS)]


def hex_colour(tenant: Tenant) -> str:
    """The tenant's own colour when it is already #rrggbb, else one by name. The console
    passes a resolver that also knows colour names (`gateway.lease_desk.tenant_colour`:
    names are Textual's CSS table, and this module imports no Textual)."""
    if re.fullmatch(r"#[0-9a-fA-F]{6}", tenant.colour or ""):
        return tenant.colour.lower()
    return fallback_colour(tenant.name)


def build_board(
    fleet: Fleet,
    now_ts: float,
    lease_filter: LeaseFilter,
    tenants: list[Tenant],
    open_leases: list[Lease],
    listed: list[Lease],
    handover: dict[str, NodeHandover] | None = None,
    validations: dict[str, dict[str, HostRun]] | None = None,
    colour_of: Callable[[Tenant], str] = hex_colour,
) -> LeaseBoard:
    colours = {tenant.name: colour_of(tenant) for tenant in tenants}
    by_host: dict[str, dict[int, GpuTenant]] = {}
    for lease in open_leases:
        if lease.state(now_ts) != "active":
            continue
        colour = colours.get(lease.tenant) or fallback_colour(lease.tenant)
        holder = GpuTenant(lease.tenant, lease.id, lease.end_ts, colour)
        for slot in lease.slots:
            by_host.setdefault(slot.host, {})[slot.gpu_index] = holder
    return LeaseBoard(
        now_ts=now_ts,
        lease_filter=lease_filter,
        tenants=tuple(tenants),
        open_leases=tuple(open_leases),
        listed=tuple(listed),
        by_host=by_host,
        colours=colours,
        total_gpus=sum(host.expected_gpus for host in fleet.hosts),
        handover=handover or {},
        validations=validations or {},
    )
