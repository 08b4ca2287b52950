"""Drains (cordons): an operator takes a node or one GPU out of placement, with a reason
and optionally an end time.

A drain is lifted only by an operator (`undrain`) or by reaching its end time; health
(a host down, a critical fault) is a separate exclusion supplied by the caller, so a host
that recovers does not silently undo an operator's drain, and lifting a drain does not
make a broken GPU placeable. Existing leases are not moved: a drain overlapping a lease
marks it affected (`Lease.affected_by_drains`, derived on read) and `drain` returns them
so the operator can talk to the tenant.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict
from typing import NamedTuple

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases import booking
from opsconsole.leases.audit import append_audit
from opsconsole.leases.model import Drain
from opsconsole.leases.times import format_ts
from opsconsole.store.transaction import write_transaction

_COLUMNS = (
    "id, host, gpu_index, reason, start_ts, end_ts, created_ts, created_by, lifted_ts, lifted_by"
)
_IN_FORCE = "start_ts <= :now AND (end_ts IS NULL OR end_ts > :now) AND lifted_ts IS NULL"


class Drained(NamedTuple):
    drain: Drain
    affected_lease_ids: tuple[int, ...]
    """Reserved or active leases holding the drained slots during the drain."""


def drain(
    db: sqlite_utils.Database,
    fleet: Fleet,
    host: str,
    gpu_index: int | None = None,
    *,
    reason: str,
    operator: str,
    start_ts: float | None = None,
    end_ts: float | None = None,
    now_ts: float | None = None,
) -> Drained:
    """Drain a node (gpu_index None) or one GPU from `start_ts` (default now) until
    `end_ts` (default: until lifted)."""
    now_ts = time.time() if now_ts is None else now_ts
    start_ts = now_ts if start_ts is None else max(start_ts, now_ts)
    reason = " ".join(reason.split())
    if not reason:
        raise LeaseError("a drain needs a reason")
    try:
        expected = fleet.host(host).expected_gpus
    except KeyError:
        raise LeaseError(f'unknown host "{host}"', code="not_found") from None
    if gpu_index is not None and not 0 <= gpu_index < expected:
        raise LeaseError(f"{host} has {expected} GPU(s); there is no GPU {gpu_index}")
    if end_ts is not None and end_ts <= start_ts:
        raise LeaseError(f"the drain's end {format_ts(end_ts)} is not after its start")
    target = host if gpu_index is None else f"{host}:{gpu_index}"
    with write_transaction(db, f"draining {target}") as tx:
        same = tx.execute(
            "SELECT id, reason FROM drains WHERE host = :host AND gpu_index IS :gpu"
            " AND lifted_ts IS NULL AND (end_ts IS NULL OR end_ts > :start)"
            " AND (:end IS NULL OR start_ts < :end)",
            {"host": host, "gpu": gpu_index, "start": start_ts, "end": end_ts},
        ).fetchone()
        if same is not None:
            raise LeaseError(f"{target} is already drained (drain {same[0]}: {same[1]})")
        cursor = tx.execute(
            "INSERT INTO drains (host, gpu_index, reason, start_ts, end_ts, created_ts,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (host, gpu_index, reason, start_ts, end_ts, now_ts, operator),
        )
        record = Drain(
            int(cursor.lastrowid or 0), host, gpu_index, reason, start_ts, end_ts, now_ts, operator
        )
        affected = tuple(
            lease_id
            for (lease_id,) in tx.execute(
                "SELECT DISTINCT lease_id FROM lease_slots WHERE host = :host"
                " AND (:gpu IS NULL OR gpu_index = :gpu) AND end_ts > start_ts"
                " AND end_ts > :start AND (:end IS NULL OR start_ts < :end) ORDER BY lease_id",
                {"host": host, "gpu": gpu_index, "start": start_ts, "end": end_ts},
            )
        )
        append_audit(
            tx,
            ts=now_ts,
            operator=operator,
            action="drain.create",
            subject=f"drain:{record.id}",
            after={**asdict(record), "affected_lease_ids": list(affected)},
        )
    return Drained(record, affected)


def undrain(
    db: sqlite_utils.Database,
    host: str,
    gpu_index: int | None = None,
    *,
    operator: str,
    now_ts: float | None = None,
) -> list[Drain]:
    """Lift drains now: every drain on the host (node and GPUs) when gpu_index is None,
    else that GPU's. Scheduled drains not yet started are lifted too."""
    now_ts = time.time() if now_ts is None else now_ts
    target = host if gpu_index is None else f"{host}:{gpu_index}"
    with write_transaction(db, f"undraining {target}") as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM drains WHERE host = :host"
            " AND (:gpu IS NULL OR gpu_index = :gpu) AND lifted_ts IS NULL"
            " AND (end_ts IS NULL OR end_ts > :now) ORDER BY id",
            {"host": host, "gpu": gpu_index, "now": now_ts},
        ).fetchall()
        if not rows:
            node = tx.execute(
                "SELECT id FROM drains WHERE host = :host AND gpu_index IS NULL AND " + _IN_FORCE,
                {"host": host, "now": now_ts},
            ).fetchone()
            hint = f" (the whole node is drained: drain {node[0]})" if node and gpu_index else ""
            raise LeaseError(f"{target} has no drain to lift{hint}")
        lifted = []
        for row in rows:
            before = Drain(*row)
            after = dataclasses.replace(before, lifted_ts=now_ts, lifted_by=operator)
            tx.execute(
                "UPDATE drains SET lifted_ts = ?, lifted_by = ? WHERE id = ?",
                (now_ts, operator, before.id),
            )
            append_audit(
                tx,
                ts=now_ts,
                operator=operator,
                action="drain.lift",
                subject=f"drain:{before.id}",
                before=asdict(before),
                after=asdict(after),
            )
            lifted.append(after)
    return lifted


def list_drains(
    db: sqlite_utils.Database,
    *,
    now_ts: float | None = None,
    include_past: bool = False,
    host: str | None = None,
) -> list[Drain]:
    """Drains in force now or scheduled (all of them with include_past), by id."""
    now_ts = time.time() if now_ts is None else now_ts
    where = ["1"]
    if not include_past:
        where.append("lifted_ts IS NULL AND (end_ts IS NULL OR end_ts > :now)")
    if host is not None:
        where.append("host = :host")
    with booking.read_snapshot(db) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM drains WHERE {' AND '.join(where)} ORDER BY id",
            {"now": now_ts, "host": host},
        )
        return [Drain(*row) for row in rows]
