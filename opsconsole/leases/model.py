"""What the leases layer hands to the CLI and the UI: plain frozen records, no SQL.

A lease's state is not stored. It follows from the clock and two markers (`released_ts`,
`cancelled_ts`), so a reservation becomes active at its start and ends at its end without
a background job that could lag, crash or run twice; every reader computes the same state
for the same `now_ts`. See `lease_state`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class LeaseState(StrEnum):
    """Where a lease is in its life (see `lease_state`); compares equal to its text."""

    RESERVED = "reserved"
    ACTIVE = "active"
    ENDED = "ended"
    RELEASED = "released"
    CANCELLED = "cancelled"


LEASE_STATES: tuple[LeaseState, ...] = tuple(LeaseState)
OPEN_STATES: tuple[LeaseState, ...] = (LeaseState.RESERVED, LeaseState.ACTIVE)
"""States in which a lease still holds (or will hold) its slots."""


class RequestKind(StrEnum):
    """What the operator asked for: named slots, a GPU count or a node count."""

    SLOTS = "slots"
    GPUS = "gpus"
    NODES = "nodes"


class GpuSlot(NamedTuple):
    """A GPU position, not a GPU: a swapped card in the same slot stays leased."""

    host: str
    gpu_index: int

    def __str__(self) -> str:
        return f"{self.host}:{self.gpu_index}"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    contact: str
    colour: str
    allowed_sites: tuple[str, ...] | None
    """Sites the contract or regulator allows; None means any site."""
    gpu_quota: int
    """Most GPUs the tenant may hold at any one moment."""
    created_ts: float
    archived_ts: float | None = None

    @property
    def archived(self) -> bool:
        return self.archived_ts is not None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["allowed_sites"] = list(self.allowed_sites) if self.allowed_sites else None
        return out


def lease_state(
    start_ts: float,
    end_ts: float,
    released_ts: float | None,
    cancelled_ts: float | None,
    now_ts: float,
) -> LeaseState:
    """reserved → active → ended by the clock; released / cancelled by an operator."""
    if cancelled_ts is not None:
        return LeaseState.CANCELLED
    if released_ts is not None:
        return LeaseState.RELEASED
    if now_ts < start_ts:
        return LeaseState.RESERVED
    if now_ts < end_ts:
        return LeaseState.ACTIVE
    return LeaseState.ENDED


STATE_SQL = """CASE
    WHEN l.cancelled_ts IS NOT NULL THEN 'cancelled'
    WHEN l.released_ts IS NOT NULL THEN 'released'
    WHEN :now < l.start_ts THEN 'reserved'
    WHEN :now < l.end_ts THEN 'active'
    ELSE 'ended' END"""
"""`lease_state` in SQL, for filtering lists (bind `:now`)."""


@dataclass(frozen=True, slots=True)
class Lease:
    id: int
    tenant: str
    start_ts: float
    end_ts: float
    """The agreed end; an early release keeps it and sets `released_ts`."""
    gpu_count: int
    request: RequestKind
    slots: tuple[GpuSlot, ...]
    placement: str
    """The one-line explanation of why these slots were chosen."""
    note: str
    override_reason: str | None
    created_ts: float
    created_by: str
    released_ts: float | None = None
    cancelled_ts: float | None = None
    affected_by_drains: tuple[int, ...] = ()
    """Drains overlapping this lease's slots and window (derived when read)."""

    def state(self, now_ts: float) -> LeaseState:
        return lease_state(self.start_ts, self.end_ts, self.released_ts, self.cancelled_ts, now_ts)

    @property
    def booked_end_ts(self) -> float:
        """Until when the slots are held: the release time, the start if cancelled."""
        if self.cancelled_ts is not None:
            return self.start_ts
        if self.released_ts is not None:
            return min(self.end_ts, max(self.start_ts, self.released_ts))
        return self.end_ts

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slot.host for slot in self.slots))

    def as_dict(self, now_ts: float) -> dict[str, Any]:
        out = asdict(self)
        out["slots"] = [{"host": s.host, "gpu_index": s.gpu_index} for s in self.slots]
        out["affected_by_drains"] = list(self.affected_by_drains)
        out["state"] = self.state(now_ts)
        return out


@dataclass(frozen=True, slots=True)
class Drain:
    """An operator's cordon of a node (gpu_index None) or one GPU."""

    id: int
    host: str
    gpu_index: int | None
    reason: str
    start_ts: float
    end_ts: float | None
    """When the drain lapses by itself; None means until an operator lifts it."""
    created_ts: float
    created_by: str
    lifted_ts: float | None = None
    lifted_by: str | None = None

    @property
    def until_ts(self) -> float | None:
        """When the drain stops holding: lifted or lapsed, whichever came first."""
        ends = [t for t in (self.end_ts, self.lifted_ts) if t is not None]
        return min(ends) if ends else None

    def in_force(self, now_ts: float) -> bool:
        until = self.until_ts
        return self.start_ts <= now_ts and (until is None or now_ts < until)

    @property
    def target(self) -> str:
        return self.host if self.gpu_index is None else f"{self.host}:{self.gpu_index}"

    def as_dict(self, now_ts: float) -> dict[str, Any]:
        return {**asdict(self), "target": self.target, "in_force": self.in_force(now_ts)}


@dataclass(frozen=True, slots=True)
class Placement:
    """Slots chosen for a request, and why, in one line; what preview shows."""

    slots: tuple[GpuSlot, ...]
    explanation: str
    warnings: tuple[str, ...] = field(default=())
    """Overridden exclusions (drained or unhealthy slots leased anyway)."""

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slot.host for slot in self.slots))

    def as_dict(self) -> dict[str, Any]:
        return {
            "gpu_count": len(self.slots),
            "hosts": list(self.hosts),
            "slots": [{"host": s.host, "gpu_index": s.gpu_index} for s in self.slots],
            "explanation": self.explanation,
            "warnings": list(self.warnings),
        }
