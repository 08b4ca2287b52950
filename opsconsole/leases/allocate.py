"""Allocating a lease: by explicit slots, by GPU count or by whole nodes.

Everything (tenant, window, placement, quota, the inserts and the audit row) happens in
one BEGIN IMMEDIATE transaction: a second console or process allocating at the same time
waits for the write lock, then sees this lease's slots as booked. A refusal raises
LeaseError inside the transaction, which rolls it back, so nothing is written; a crash
(kill -9, power loss) before COMMIT leaves no trace of the lease either.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hostlist
import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases import booking, handover
from opsconsole.leases.audit import append_audit
from opsconsole.leases.model import GpuSlot, Lease, Placement, RequestKind, Tenant
from opsconsole.leases.placement import LOCALITIES, Locality, PlacementHost, place_request
from opsconsole.leases.tenants import read_tenant
from opsconsole.leases.times import format_window
from opsconsole.store.transaction import write_transaction

Booked = Mapping[str, Mapping[int, int]]
"""host → {GPU index: lease id} booked in the window (`booking.booked_slots`)."""
Drained = Mapping[str, Mapping[int | None, int]]
"""host → {GPU index, or None for the node: drain id} (`booking.drained_slots`)."""
Unhealthy = Mapping[str, Mapping[int | None, str]]
"""host → {GPU index, or None for the node: why} (`booking.normalise_health`)."""


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """What the operator asks for; exactly one of `gpus`, `nodes`, `slots`."""

    tenant: str
    start_ts: float
    end_ts: float
    gpus: int | None = None
    nodes: int | None = None
    slots: tuple[GpuSlot, ...] | None = None
    gpu_model: str | None = None
    """Only hosts whose configured model matches (e.g. "H200")."""
    override_reason: str | None = None
    """Lets drained or unhealthy slots be leased; recorded on the lease and in the audit."""
    note: str = ""
    site: str | None = None
    """Only hosts of this site (any case); it must be one the tenant may use."""
    locality: Locality = Locality.ANY
    """The whole lease within one leaf switch, one rack or one node; "any" prefers that."""

    @property
    def kind(self) -> RequestKind:
        given = [
            k
            for k in (RequestKind.GPUS, RequestKind.NODES, RequestKind.SLOTS)
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise LeaseError("ask for exactly one of: a GPU count, a node count, or slots")
        kind = given[0]
        if kind != RequestKind.SLOTS and getattr(self, kind) < 1:
            raise LeaseError(f"the {kind} count must be at least 1")
        return kind


def preview_lease(
    db: sqlite_utils.Database,
    fleet: Fleet,
    request: LeaseRequest,
    *,
    health: booking.Health | None = None,
    now_ts: float | None = None,
) -> Placement:
    """The slots `allocate_lease` would choose now, and why; writes nothing. Raises the
    same LeaseError allocation would."""
    now_ts = time.time() if now_ts is None else now_ts
    with booking.read_snapshot(db) as conn:
        return plan_lease(conn, fleet, request, health, now_ts)[1]


def allocate_lease(
    db: sqlite_utils.Database,
    fleet: Fleet,
    request: LeaseRequest,
    *,
    operator: str,
    health: booking.Health | None = None,
    now_ts: float | None = None,
) -> Lease:
    """Place and book the lease, all or nothing; LeaseError (nothing written) if refused."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"allocating a lease for {request.tenant}") as tx:
        start_ts, placement = plan_lease(tx, fleet, request, health, now_ts)
        cursor = tx.execute(
            "INSERT INTO leases (tenant, start_ts, end_ts, gpu_count, request, placement, note,"
            " override_reason, created_ts, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.tenant,
                start_ts,
                request.end_ts,
                len(placement.slots),
                request.kind,
                placement.explanation,
                request.note,
                request.override_reason,
                now_ts,
                operator,
            ),
        )
        lease_id = int(cursor.lastrowid or 0)
        tx.executemany(
            "INSERT INTO lease_slots (lease_id, host, gpu_index, start_ts, end_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            [(lease_id, s.host, s.gpu_index, start_ts, request.end_ts) for s in placement.slots],
        )
        lease = Lease(
            id=lease_id,
            tenant=request.tenant,
            start_ts=start_ts,
            end_ts=request.end_ts,
            gpu_count=len(placement.slots),
            request=request.kind,
            slots=placement.slots,
            placement=placement.explanation,
            note=request.note,
            override_reason=request.override_reason,
            created_ts=now_ts,
            created_by=operator,
        )
        append_audit(
            tx,
            ts=now_ts,
            operator=operator,
            action="lease.allocate",
            subject=f"lease:{lease_id}",
            after={**audit_record(lease), "warnings": list(placement.warnings)},
        )
    return lease


def audit_record(lease: Lease) -> dict[str, Any]:
    """The lease as the audit log keeps it (no derived fields: they depend on the clock)."""
    return {
        "id": lease.id,
        "tenant": lease.tenant,
        "start_ts": lease.start_ts,
        "end_ts": lease.end_ts,
        "gpu_count": lease.gpu_count,
        "request": lease.request,
        "slots": [str(s) for s in lease.slots],
        "placement": lease.placement,
        "note": lease.note,
        "override_reason": lease.override_reason,
        "released_ts": lease.released_ts,
        "cancelled_ts": lease.cancelled_ts,
    }


def plan_lease(
    conn: sqlite3.Connection,
    fleet: Fleet,
    request: LeaseRequest,
    health: booking.Health | None,
    now_ts: float,
) -> tuple[float, Placement]:
    """Check the request and choose its slots against the database as `conn` sees it;
    returns the (possibly clamped) start and the placement."""
    kind = request.kind
    if request.locality not in LOCALITIES:
        raise LeaseError(f'locality "{request.locality}" is not one of {", ".join(LOCALITIES)}')
    tenant = read_tenant(conn, request.tenant)
    if tenant.archived:
        raise LeaseError(f'tenant "{tenant.name}" is archived')
    site = resolve_site(fleet, request.site)
    if site is not None and tenant.allowed_sites is not None and site not in tenant.allowed_sites:
        raise LeaseError(
            f"site {site}: {tenant.name} may use {', '.join(sorted(tenant.allowed_sites))} only"
        )
    start_ts, end_ts = booking.check_window(request.start_ts, request.end_ts, now_ts)
    window = format_window(start_ts, end_ts)
    if kind == RequestKind.GPUS:
        _check_quota(conn, tenant, start_ts, end_ts, request.gpus or 0, window)
    booked = booking.booked_slots(conn, start_ts, end_ts)
    drained = booking.drained_slots(conn, start_ts, end_ts)
    unhealthy = booking.normalise_health(health)
    # Handover: nodes a run holds or that are being cleaned are never placed on; nodes
    # that failed validation or lack a recent enough pass are excluded like unhealthy
    # ones (an override reason uses them, listed in the audit row).
    policy = handover.HandoverPolicy.from_fleet(fleet)
    busy, unvalidated = handover.exclusions(conn, fleet, policy, now_ts, start_ts)
    for host, why in unvalidated.items():
        if not unhealthy.get(host):
            unhealthy[host][None] = why
    if kind == RequestKind.SLOTS:
        placement = _explicit(conn, fleet, tenant, request, booked, drained, unhealthy, busy)
    else:
        placement = _placed(fleet, tenant, request, booked, drained, unhealthy, window, busy)
    if kind != RequestKind.GPUS:
        _check_quota(conn, tenant, start_ts, end_ts, len(placement.slots), window)
    return start_ts, placement


def _check_quota(
    conn: sqlite3.Connection, tenant: Tenant, start_ts: float, end_ts: float, gpus: int, window: str
) -> None:
    peak = booking.tenant_peak_gpus(conn, tenant.name, start_ts, end_ts)
    if peak + gpus > tenant.gpu_quota:
        raise LeaseError(
            f"quota exceeded: {tenant.name} may hold {tenant.gpu_quota} GPUs at once and already"
            f" holds up to {peak} in {window}; {gpus} more would make {peak + gpus}"
        )


def resolve_site(fleet: Fleet, text: str | None) -> str | None:
    """The config's spelling of a site named in any case; None for none (or "any")."""
    text = (text or "").strip()
    if not text or text.lower() == "any":
        return None
    for name in fleet.sites:
        if name.lower() == text.lower():
            return name
    raise LeaseError(
        f'unknown site "{text}" (the config has: {", ".join(fleet.sites)})', code="not_found"
    )


def _eligible(fleet: Fleet, tenant: Tenant, request: LeaseRequest) -> tuple[PlacementHost, ...]:
    hosts = booking.placement_hosts(fleet)
    if tenant.allowed_sites is not None:
        allowed = set(tenant.allowed_sites)
        hosts = tuple(h for h in hosts if h.site in allowed)
    site = resolve_site(fleet, request.site)
    if site is not None:
        hosts = tuple(h for h in hosts if h.site == site)
    if request.gpu_model is not None:
        hosts = tuple(h for h in hosts if (h.model or "").lower() == request.gpu_model.lower())
    return hosts


def _placed(
    fleet: Fleet,
    tenant: Tenant,
    request: LeaseRequest,
    booked: Booked,
    drained: Drained,
    unhealthy: Unhealthy,
    window: str,
    busy: Mapping[str, str],
) -> Placement:
    """Placement by count; with an override, drained or unhealthy GPUs are used only when
    the request cannot be met without them (and each one used is listed as a warning)."""
    hosts = _eligible(fleet, tenant, request)
    under_test = {h.name: set(range(h.gpus)) for h in hosts if h.name in busy}
    excluded = booking.excluded_map(hosts, drained, unhealthy)
    site = resolve_site(fleet, request.site)
    limits = f" (site {site})" if site else ""
    if not limits and tenant.allowed_sites:
        limits = f" (sites {', '.join(tenant.allowed_sites)})"

    def place(unavailable: Mapping[str, Iterable[int]]) -> Placement:
        try:
            return place_request(
                hosts,
                unavailable,
                gpus=request.gpus,
                nodes=request.nodes,
                locality=request.locality,
            )
        except LeaseError as exc:
            raise LeaseError(f"{tenant.name}, {window}{limits}: {exc}") from None

    try:
        return place(booking.merge(booked, excluded, under_test))
    except LeaseError as exc:
        held = sum(len(idx - booked.get(host, {}).keys()) for host, idx in excluded.items())
        testing = (
            f"; {len(under_test)} node(s) are being validated or cleaned"
            f" ({hostlist.collect_hostlist(sorted(under_test))})"
            if under_test
            else ""
        )
        if not held:
            if testing:
                raise LeaseError(f"{exc}{testing}") from None
            raise
        if request.override_reason is None:
            try:
                place(booking.merge(booked))
            except LeaseError:  # even those GPUs would not make it fit: no override hint
                raise LeaseError(
                    f"{exc}; {held} more GPU(s) are drained or unhealthy, but using them"
                    " would not be enough either"
                ) from None
            raise LeaseError(
                f"{exc}; {held} more GPU(s) are {_held_words(excluded, drained, unhealthy)}"
                f" (an override reason would let them be used){testing}"
            ) from None
    placement = place(booking.merge(booked, under_test))
    overridden = sorted(
        f"{s}: {booking.slot_exclusion(s.host, s.gpu_index, drained, unhealthy)}"
        for s in placement.slots
        if s.gpu_index in excluded.get(s.host, ())
    )
    return Placement(placement.slots, placement.explanation, tuple(overridden))


def _held_words(excluded: Iterable[str], drained: Drained, unhealthy: Unhealthy) -> str:
    """ "drained or unhealthy", or naming validation when that is (part of) the reason."""
    validation = any(
        why.startswith(("not validated", "failed validation"))
        for host in excluded
        for why in unhealthy.get(host, {}).values()
    )
    if not validation:
        return "drained or unhealthy"
    example = next(
        f"{host}: {why}"
        for host in sorted(excluded)
        for why in unhealthy.get(host, {}).values()
        if why.startswith(("not validated", "failed validation"))
    )
    return f"drained, unhealthy or not validated (e.g. {example})"


def _explicit(
    conn: sqlite3.Connection,
    fleet: Fleet,
    tenant: Tenant,
    request: LeaseRequest,
    booked: Booked,
    drained: Drained,
    unhealthy: Unhealthy,
    busy: Mapping[str, str],
) -> Placement:
    slots: Sequence[GpuSlot] = request.slots or ()
    if len(set(slots)) != len(slots):
        dupe = next(s for i, s in enumerate(slots) if s in slots[:i])
        raise LeaseError(f"slot {dupe} is named twice")
    allowed = set(tenant.allowed_sites) if tenant.allowed_sites is not None else None
    site = resolve_site(fleet, request.site)
    clashes: dict[GpuSlot, int] = {}
    warnings = []
    for slot in slots:
        try:
            host = fleet.host(slot.host)
        except KeyError:
            raise LeaseError(f'unknown host "{slot.host}"', code="not_found") from None
        if not 0 <= slot.gpu_index < host.expected_gpus:
            raise LeaseError(
                f"{host.name} has {host.expected_gpus} GPU(s); no GPU {slot.gpu_index}"
            )
        if site is not None and host.site != site:
            raise LeaseError(f"{slot} is in site {host.site}, not {site}")
        if allowed is not None and host.site not in allowed:
            raise LeaseError(
                f"{slot} is in site {host.site}; {tenant.name} may use"
                f" {', '.join(sorted(allowed))} only"
            )
        if slot.host in busy:
            raise LeaseError(f"{slot.host} is {busy[slot.host]}; it cannot be leased until then")
        if slot.gpu_index in booked.get(slot.host, {}):
            clashes[slot] = booked[slot.host][slot.gpu_index]
        why = booking.slot_exclusion(slot.host, slot.gpu_index, drained, unhealthy)
        if why and request.override_reason is None:
            raise LeaseError(f"{slot} is {why}; give an override reason to lease it anyway")
        if why:
            warnings.append(f"{slot}: {why}")
    if clashes:
        slot, lease_id = next(iter(clashes.items()))
        owner = booking.lease_tenants(conn, {lease_id}).get(lease_id, "?")
        more = f" (and {len(clashes) - 1} more slot(s))" if len(clashes) > 1 else ""
        raise LeaseError(
            f"{slot} is already leased in that window by lease {lease_id} ({owner}){more}"
        )
    if request.locality != Locality.ANY:
        placed = {h.name: h for h in booking.placement_hosts(fleet)}
        groups = sorted({placed[s.host].group(request.locality) for s in slots})
        if len(groups) > 1:
            raise LeaseError(
                f"the slots span {len(groups)} {request.locality}s ({', '.join(groups)});"
                f" the lease must be within one {request.locality}"
            )
    hosts = hostlist.collect_hostlist(list(dict.fromkeys(s.host for s in slots)))
    return Placement(
        tuple(slots), f"{len(slots)} slot(s) named by the operator on {hosts}", tuple(warnings)
    )
