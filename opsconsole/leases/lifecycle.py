"""Reading leases, and changing them after allocation: extend, shorten, release early,
cancel. Each change is one write transaction that moves the lease row, its bookings in
`lease_slots` and appends the audit row together.

Which change fits which state:
  reserved  → extend, shorten, cancel (a reservation that never started)
  active    → extend, shorten, release (end it now)
  ended / released / cancelled → nothing; allocate a new lease.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases import booking
from opsconsole.leases.allocate import audit_record
from opsconsole.leases.audit import append_audit
from opsconsole.leases.model import (
    LEASE_STATES,
    OPEN_STATES,
    STATE_SQL,
    GpuSlot,
    Lease,
    LeaseState,
    RequestKind,
)
from opsconsole.leases.tenants import read_tenant
from opsconsole.leases.times import format_ts, format_window
from opsconsole.store.transaction import write_transaction

_COLUMNS = (
    "l.id, l.tenant, l.start_ts, l.end_ts, l.gpu_count, l.request, l.placement, l.note,"
    " l.override_reason, l.created_ts, l.created_by, l.released_ts, l.cancelled_ts"
)


def _load(conn: sqlite3.Connection, where: str, params: dict[str, Any]) -> list[Lease]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM leases l WHERE {where} ORDER BY l.id", params
    ).fetchall()
    if not rows:
        return []
    ids = "[" + ",".join(str(r[0]) for r in rows) + "]"
    slots: dict[int, list[GpuSlot]] = defaultdict(list)
    for lease_id, host, index in conn.execute(
        "SELECT lease_id, host, gpu_index FROM lease_slots WHERE lease_id IN"
        " (SELECT value FROM json_each(?)) ORDER BY lease_id, host, gpu_index",
        (ids,),
    ):
        slots[lease_id].append(GpuSlot(host, index))
    affected: dict[int, list[int]] = defaultdict(list)
    for lease_id, drain_id in conn.execute(
        "SELECT DISTINCT ls.lease_id, d.id FROM lease_slots ls JOIN drains d ON d.host = ls.host"
        " AND (d.gpu_index IS NULL OR d.gpu_index = ls.gpu_index)"
        " WHERE ls.lease_id IN (SELECT value FROM json_each(?)) AND ls.end_ts > ls.start_ts"
        " AND d.start_ts < ls.end_ts AND (d.end_ts IS NULL OR d.end_ts > ls.start_ts)"
        " AND (d.lifted_ts IS NULL OR d.lifted_ts > ls.start_ts) ORDER BY d.id",
        (ids,),
    ):
        affected[lease_id].append(drain_id)
    return [_lease(r, tuple(slots[r[0]]), tuple(affected[r[0]])) for r in rows]


def _lease(row: tuple[Any, ...], slots: tuple[GpuSlot, ...], drains: tuple[int, ...]) -> Lease:
    """A lease from a row of `_COLUMNS`, with its slots and the drains affecting it."""
    (lease_id, tenant, start_ts, end_ts, gpu_count, request, placement, note, override,
     created_ts, created_by, released_ts, cancelled_ts) = row  # fmt: skip
    return Lease(
        lease_id, tenant, start_ts, end_ts, gpu_count, RequestKind(request), slots, placement,
        note, override, created_ts, created_by, released_ts, cancelled_ts, drains,
    )  # fmt: skip


def read_lease(conn: sqlite3.Connection, lease_id: int) -> Lease:
    found = _load(conn, "l.id = :id", {"id": lease_id})
    if not found:
        raise LeaseError(f"no lease {lease_id}", code="not_found")
    return found[0]


def get_lease(db: sqlite_utils.Database, lease_id: int) -> Lease:
    with booking.read_snapshot(db) as conn:
        return read_lease(conn, lease_id)


def list_leases(
    db: sqlite_utils.Database,
    *,
    tenant: str | None = None,
    states: Iterable[LeaseState] | None = None,
    host: str | None = None,
    now_ts: float | None = None,
) -> list[Lease]:
    """Leases by id, optionally one tenant's, in some states, or holding a slot on a host."""
    now_ts = time.time() if now_ts is None else now_ts
    where: list[str] = ["1"]
    params: dict[str, float | str] = {"now": now_ts}
    if tenant is not None:
        where.append("l.tenant = :tenant")
        params["tenant"] = tenant
    if states is not None:
        wanted = list(states)
        unknown = [s for s in wanted if s not in LEASE_STATES]
        if unknown:
            raise LeaseError(f'unknown lease state "{unknown[0]}" ({", ".join(LEASE_STATES)})')
        marks = [f":state{i}" for i in range(len(wanted))]
        params.update({mark[1:]: str(state) for mark, state in zip(marks, wanted, strict=True)})
        where.append(f"{STATE_SQL} IN ({', '.join(marks) or 'NULL'})")
    if host is not None:
        where.append("l.id IN (SELECT lease_id FROM lease_slots WHERE host = :host)")
        params["host"] = host
    with booking.read_snapshot(db) as conn:
        return _load(conn, " AND ".join(where), params)


def _changed(
    tx: sqlite3.Connection,
    lease: Lease,
    action: str,
    operator: str,
    now_ts: float,
    **extra: object,
) -> Lease:
    after = read_lease(tx, lease.id)
    append_audit(
        tx,
        ts=now_ts,
        operator=operator,
        action=action,
        subject=f"lease:{lease.id}",
        before=audit_record(lease),
        after={**audit_record(after), **extra},
    )
    return after


def _require(
    lease: Lease, now_ts: float, allowed: tuple[LeaseState, ...], doing: str, hint: str
) -> None:
    state = lease.state(now_ts)
    if state not in allowed:
        raise LeaseError(f"lease {lease.id} is {state}; cannot {doing} it{hint}")


def extend_lease(
    db: sqlite_utils.Database,
    fleet: Fleet,
    lease_id: int,
    end_ts: float | None = None,
    *,
    by_s: float | None = None,
    operator: str,
    health: booking.Health | None = None,
    override_reason: str | None = None,
    now_ts: float | None = None,
) -> Lease:
    """Move the end later, keeping the same slots: they must be free, undrained and
    healthy (or overridden) from the old end to the new one, and the quota must hold.

    `by_s` instead of `end_ts`: that much later than the end read inside the write
    transaction, so two concurrent "one more day" extensions add two days, not one."""
    now_ts = time.time() if now_ts is None else now_ts
    if (end_ts is None) == (by_s is None):
        raise LeaseError("give either a new end or how much to extend by")
    if by_s is not None and by_s <= 0:
        raise LeaseError("extend by a positive duration; to end a lease earlier, shorten it")
    with write_transaction(db, f"extending lease {lease_id}") as tx:
        lease = read_lease(tx, lease_id)
        _require(lease, now_ts, OPEN_STATES, "extend", "; allocate a new lease")
        if by_s is not None:
            end_ts = lease.end_ts + by_s
        assert end_ts is not None
        if end_ts <= lease.end_ts:
            raise LeaseError(
                f"lease {lease_id} already ends {format_ts(lease.end_ts)}; to end it"
                f" earlier, shorten it"
            )
        window = (lease.end_ts, end_ts)
        booked = booking.booked_slots(tx, *window, exclude_lease=lease_id)
        drained = booking.drained_slots(tx, *window)
        unhealthy = booking.normalise_health(health)
        warnings = []
        for slot in lease.slots:
            other = booked.get(slot.host, {}).get(slot.gpu_index)
            if other is not None:
                owner = booking.lease_tenants(tx, {other}).get(other, "?")
                raise LeaseError(
                    f"cannot extend lease {lease_id} to {format_ts(end_ts)}: {slot} is leased"
                    f" by lease {other} ({owner}) in {format_window(*window)}"
                )
            why = booking.slot_exclusion(slot.host, slot.gpu_index, drained, unhealthy)
            if why and override_reason is None:
                raise LeaseError(
                    f"cannot extend lease {lease_id}: {slot} is {why} in {format_window(*window)};"
                    " give an override reason to extend anyway"
                )
            if why:
                warnings.append(f"{slot}: {why}")
        tenant = read_tenant(tx, lease.tenant)
        outside = _outside_allowed_sites(fleet, lease.slots, tenant.allowed_sites)
        if outside and override_reason is None:
            raise LeaseError(
                f"cannot extend lease {lease_id}: {tenant.name} may use"
                f" {', '.join(tenant.allowed_sites or ())} only, and {outside} is outside;"
                " give an override reason to extend anyway"
            )
        if outside:
            warnings.append(f"{outside}: outside {tenant.name}'s allowed sites")
        peak = booking.tenant_peak_gpus(tx, tenant.name, *window, exclude_lease=lease_id)
        if peak + lease.gpu_count > tenant.gpu_quota:
            raise LeaseError(
                f"quota exceeded: {tenant.name} may hold {tenant.gpu_quota} GPUs at once and"
                f" holds up to {peak} in {format_window(*window)}; extending lease {lease_id}"
                f" ({lease.gpu_count} GPUs) would make {peak + lease.gpu_count}"
            )
        _move_end(tx, lease_id, end_ts, override_reason)
        extra = {"warnings": warnings}
        return _changed(tx, lease, "lease.extend", operator, now_ts, **extra)


def _outside_allowed_sites(
    fleet: Fleet, slots: Iterable[GpuSlot], allowed: tuple[str, ...] | None
) -> str:
    """The first host of `slots` on a site the tenant may no longer use ("" if none): a
    tenant's sites can be narrowed after a lease was placed, and extending it is a new
    commitment on that site (existing windows stand, as `update_tenant` says)."""
    if allowed is None:
        return ""
    for slot in slots:
        try:
            site = fleet.host(slot.host).site
        except KeyError:
            continue  # a host gone from the config: its site is unknown, not disallowed
        if site not in allowed:
            return f"{slot.host} ({site})"
    return ""


def shorten_lease(
    db: sqlite_utils.Database,
    lease_id: int,
    end_ts: float,
    *,
    operator: str,
    now_ts: float | None = None,
) -> Lease:
    """Move the end earlier, but not into the past (to end it now, release it)."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"shortening lease {lease_id}") as tx:
        lease = read_lease(tx, lease_id)
        _require(lease, now_ts, OPEN_STATES, "shorten", "")
        if end_ts >= lease.end_ts:
            raise LeaseError(
                f"lease {lease_id} ends {format_ts(lease.end_ts)}; to end it later, extend it"
            )
        if end_ts <= max(now_ts, lease.start_ts):
            raise LeaseError(
                f"the new end {format_ts(end_ts)} is not after"
                f" {'the start' if lease.start_ts > now_ts else 'now'}; release or cancel instead"
            )
        _move_end(tx, lease_id, end_ts, None)
        return _changed(tx, lease, "lease.shorten", operator, now_ts)


def release_lease(
    db: sqlite_utils.Database, lease_id: int, *, operator: str, now_ts: float | None = None
) -> Lease:
    """End an active lease now; its slots are free from this moment."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"releasing lease {lease_id}") as tx:
        lease = read_lease(tx, lease_id)
        hint = "; cancel it instead" if lease.state(now_ts) == LeaseState.RESERVED else ""
        _require(lease, now_ts, (LeaseState.ACTIVE,), "release", hint)
        tx.execute("UPDATE leases SET released_ts = ? WHERE id = ?", (now_ts, lease_id))
        tx.execute("UPDATE lease_slots SET end_ts = ? WHERE lease_id = ?", (now_ts, lease_id))
        return _changed(tx, lease, "lease.release", operator, now_ts)


def cancel_lease(
    db: sqlite_utils.Database, lease_id: int, *, operator: str, now_ts: float | None = None
) -> Lease:
    """Withdraw a reservation before it starts; its bookings become empty."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"cancelling lease {lease_id}") as tx:
        lease = read_lease(tx, lease_id)
        hint = "; release it instead" if lease.state(now_ts) == LeaseState.ACTIVE else ""
        _require(lease, now_ts, (LeaseState.RESERVED,), "cancel", hint)
        tx.execute("UPDATE leases SET cancelled_ts = ? WHERE id = ?", (now_ts, lease_id))
        tx.execute("UPDATE lease_slots SET end_ts = start_ts WHERE lease_id = ?", (lease_id,))
        return _changed(tx, lease, "lease.cancel", operator, now_ts)


def _move_end(tx: sqlite3.Connection, lease_id: int, end_ts: float, override: str | None) -> None:
    tx.execute(
        "UPDATE leases SET end_ts = ?, override_reason = coalesce(?, override_reason) WHERE id = ?",
        (end_ts, override, lease_id),
    )
    tx.execute("UPDATE lease_slots SET end_ts = ? WHERE lease_id = ?", (end_ts, lease_id))
