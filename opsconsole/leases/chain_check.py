"""Do the tenant, lease and drain tables say what the audit chain says?

The chain proves the audit rows were not changed; it says nothing of the tables it
describes, which have no triggers and can be edited with any SQLite tool. Every change to
them appends its audit row in the same transaction, with the record as it was left
(`after`), so the newest audit row of each subject must equal the table's row today, and
every row in the tables must have one. The bookings (`lease_slots`) must hold exactly
the lease's booked window. Anything else is an edit made outside opsconsole.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import sqlite_utils

from opsconsole.leases import booking
from opsconsole.leases.allocate import audit_record
from opsconsole.leases.drains import list_drains
from opsconsole.leases.lifecycle import _load
from opsconsole.leases.tenants import list_tenants


def _latest_after(db: sqlite_utils.Database) -> dict[str, tuple[int, dict[str, Any] | None]]:
    """subject → (audit id, `after` record) of the newest row about it."""
    out: dict[str, tuple[int, dict[str, Any] | None]] = {}
    for row_id, subject, after in db.conn.execute(
        "SELECT id, subject, after FROM audit_log ORDER BY id"
    ):
        out[subject] = (row_id, json.loads(after) if after else None)
    return out


def _differs(
    kind: str, key: object, table: dict[str, Any], chain: dict[str, Any] | None, row_id: int
) -> str | None:
    if chain is None:
        return f"{kind} {key}: audit row {row_id} records no state to compare"
    for field, value in table.items():
        if chain.get(field) != value:
            return (
                f"{kind} {key}: {field} is {value!r} in the table but {chain.get(field)!r}"
                f" in audit row {row_id} (edited outside opsconsole)"
            )
    return None


def tables_match_chain(db: sqlite_utils.Database) -> list[str]:
    """Every disagreement between the tables and the chain, one line each (empty: they
    agree)."""
    latest = _latest_after(db)
    problems: list[str] = []
    seen: set[str] = set()
    with booking.read_snapshot(db) as conn:
        leases = _load(conn, "1", {})
        windows = conn.execute(
            "SELECT lease_id, host, gpu_index, start_ts, end_ts FROM lease_slots"
        ).fetchall()
    for tenant in list_tenants(db, include_archived=True):
        subject = f"tenant:{tenant.name}"
        seen.add(subject)
        if subject not in latest:
            problems.append(f"tenant {tenant.name}: no audit row (written outside opsconsole)")
            continue
        row_id, after = latest[subject]
        found = _differs("tenant", tenant.name, tenant.as_dict(), after, row_id)
        if found:
            problems.append(found)
    by_id = {lease.id: lease for lease in leases}
    for lease in leases:
        subject = f"lease:{lease.id}"
        seen.add(subject)
        if subject not in latest:
            problems.append(f"lease {lease.id}: no audit row (written outside opsconsole)")
            continue
        row_id, after = latest[subject]
        found = _differs("lease", lease.id, audit_record(lease), after, row_id)
        if found:
            problems.append(found)
    for lease_id, host, index, start_ts, end_ts in windows:
        booked = by_id.get(lease_id)
        if booked is None:
            problems.append(f"booking {host}:{index} names lease {lease_id}, which is not there")
        elif (start_ts, end_ts) != (booked.start_ts, booked.booked_end_ts):
            problems.append(
                f"lease {lease_id}: booking {host}:{index} holds {start_ts}..{end_ts}, not the"
                f" lease's booked {booked.start_ts}..{booked.booked_end_ts} (edited outside"
                " opsconsole)"
            )
    for drain in list_drains(db, include_past=True):
        subject = f"drain:{drain.id}"
        seen.add(subject)
        if subject not in latest:
            problems.append(f"drain {drain.id}: no audit row (written outside opsconsole)")
            continue
        row_id, after = latest[subject]
        found = _differs("drain", drain.id, asdict(drain), after, row_id)
        if found:
            problems.append(found)
    for subject in sorted(set(latest) - seen):
        kind, _, key = subject.partition(":")
        if kind in ("tenant", "lease", "drain"):
            problems.append(
                f"{kind} {key}: in audit row {latest[subject][0]} but not in the table (deleted)"
            )
    return problems
