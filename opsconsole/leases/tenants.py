"""Tenants: the AI labs GPUs are leased to, with their contract limits (sites, quota).

Tenants are archived, never deleted: leases and the audit log keep referring to them.
Every change is audited in its own write transaction.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from opsconsole.errors import LeaseError
from opsconsole.leases.audit import append_audit
from opsconsole.leases.model import OPEN_STATES, STATE_SQL, Tenant
from opsconsole.store.transaction import write_transaction

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{6}|[a-z]{3,20})$")
_UNSET = object()


def _row_tenant(row: sqlite3.Row | tuple[Any, ...]) -> Tenant:
    name, contact, colour, sites, quota, created_ts, archived_ts = row
    allowed = tuple(json.loads(sites)) if sites is not None else None
    return Tenant(name, contact, colour, allowed, quota, created_ts, archived_ts)


_SELECT = (
    "SELECT name, contact, colour, allowed_sites, gpu_quota, created_ts, archived_ts FROM tenants"
)


def read_tenant(conn: sqlite3.Connection, name: str) -> Tenant:
    """The tenant, or LeaseError naming it (for use inside a transaction)."""
    row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise LeaseError(f'unknown tenant "{name}" (see: opsconsole tenant list)', code="not_found")
    return _row_tenant(row)


def get_tenant(db: sqlite_utils.Database, name: str) -> Tenant:
    return read_tenant(db.conn, name)


def list_tenants(db: sqlite_utils.Database, *, include_archived: bool = False) -> list[Tenant]:
    where = "" if include_archived else " WHERE archived_ts IS NULL"
    return [_row_tenant(r) for r in db.conn.execute(f"{_SELECT}{where} ORDER BY name")]


def _check_sites(
    sites: Iterable[str] | None, known_sites: Iterable[str] | None
) -> tuple[str, ...] | None:
    if sites is None:
        return None
    named = tuple(dict.fromkeys(s.strip() for s in sites if s.strip()))
    if not named:
        raise LeaseError('allowed sites is empty: name at least one site, or "any"')
    if known_sites is not None:
        unknown = [s for s in named if s not in set(known_sites)]
        if unknown:
            raise LeaseError(
                f'unknown site "{unknown[0]}" (the config has: {", ".join(known_sites)})',
                code="not_found",
            )
    return named


def _check_fields(contact: str, colour: str, quota: int) -> None:
    if colour and not _COLOUR.match(colour):
        raise LeaseError(f'colour "{colour}" is not a colour: use a name such as teal or #rrggbb')
    if quota < 1:
        raise LeaseError(
            f"GPU quota must be at least 1, got {quota} (to stop new leases, archive the tenant)"
        )
    if "\n" in contact:
        raise LeaseError("contact must be one line")


def create_tenant(
    db: sqlite_utils.Database,
    name: str,
    *,
    gpu_quota: int,
    contact: str = "",
    colour: str = "",
    allowed_sites: Iterable[str] | None = None,
    known_sites: Iterable[str] | None = None,
    operator: str,
    now_ts: float | None = None,
) -> Tenant:
    """Create a tenant. `allowed_sites` None means any site; `known_sites` (the config's)
    catches a mistyped site name before it silently blocks every placement."""
    now_ts = time.time() if now_ts is None else now_ts
    if not _NAME.match(name):
        raise LeaseError(
            f'tenant name "{name}" is not allowed: letters, digits, ".", "_", "-" (up to 64)'
        )
    _check_fields(contact, colour, gpu_quota)
    sites = _check_sites(allowed_sites, known_sites)
    tenant = Tenant(name, contact, colour, sites, gpu_quota, now_ts)
    with write_transaction(db, f"creating tenant {name}") as tx:
        if tx.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone():
            raise LeaseError(f'tenant "{name}" already exists')
        tx.execute(
            "INSERT INTO tenants (name, contact, colour, allowed_sites, gpu_quota, created_ts)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, contact, colour, json.dumps(sites) if sites else None, gpu_quota, now_ts),
        )
        append_audit(
            tx,
            ts=now_ts,
            operator=operator,
            action="tenant.create",
            subject=f"tenant:{name}",
            after=tenant.as_dict(),
        )
    return tenant


def update_tenant(
    db: sqlite_utils.Database,
    name: str,
    *,
    operator: str,
    contact: str | None = None,
    colour: str | None = None,
    gpu_quota: int | None = None,
    allowed_sites: Iterable[str] | object | None = _UNSET,
    known_sites: Iterable[str] | None = None,
    now_ts: float | None = None,
) -> Tenant:
    """Change what is given; `allowed_sites=None` lifts the site limit. Existing leases
    stand even if they fall outside the new limits: the contract change applies to new
    allocations, and an operator moves old ones deliberately."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"updating tenant {name}") as tx:
        before = read_tenant(tx, name)
        if before.archived:
            raise LeaseError(f'tenant "{name}" is archived')
        sites = (
            before.allowed_sites
            if allowed_sites is _UNSET
            else _check_sites(allowed_sites, known_sites)  # type: ignore[arg-type]
        )
        after = Tenant(
            name,
            before.contact if contact is None else contact,
            before.colour if colour is None else colour,
            sites,
            before.gpu_quota if gpu_quota is None else gpu_quota,
            before.created_ts,
        )
        _check_fields(after.contact, after.colour, after.gpu_quota)
        if after == before:
            return before
        tx.execute(
            "UPDATE tenants SET contact = ?, colour = ?, allowed_sites = ?, gpu_quota = ?"
            " WHERE name = ?",
            (
                after.contact,
                after.colour,
                json.dumps(after.allowed_sites) if after.allowed_sites else None,
                after.gpu_quota,
                name,
            ),
        )
        append_audit(
            tx,
            ts=now_ts,
            operator=operator,
            action="tenant.update",
            subject=f"tenant:{name}",
            before=before.as_dict(),
            after=after.as_dict(),
        )
    return after


def archive_tenant(
    db: sqlite_utils.Database, name: str, *, operator: str, now_ts: float | None = None
) -> Tenant:
    """Archive a tenant with no reserved or active leases; it can no longer be allocated."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, f"archiving tenant {name}") as tx:
        before = read_tenant(tx, name)
        if before.archived:
            raise LeaseError(f'tenant "{name}" is already archived')
        open_leases = [
            lease_id
            for (lease_id,) in tx.execute(
                f"SELECT l.id FROM leases l WHERE l.tenant = :name AND {STATE_SQL}"
                " IN (:reserved, :active) ORDER BY l.id",
                {"name": name, "now": now_ts} | {state.value: state.value for state in OPEN_STATES},
            )
        ]
        if open_leases:
            shown = ", ".join(str(i) for i in open_leases[:5])
            raise LeaseError(
                f'tenant "{name}" still has {len(open_leases)} reserved or active lease(s)'
                f" ({shown}); release or cancel them first"
            )
        tx.execute("UPDATE tenants SET archived_ts = ? WHERE name = ?", (now_ts, name))
        after = dataclasses.replace(before, archived_ts=now_ts)
        append_audit(
            tx,
            ts=now_ts,
            operator=operator,
            action="tenant.archive",
            subject=f"tenant:{name}",
            before=before.as_dict(),
            after=after.as_dict(),
        )
    return after
