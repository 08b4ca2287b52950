"""Handing nodes over between tenants: which nodes a validation run holds, which must be
cleaned after a lease, which failed, and which have passed a recent enough validation to
be leased.

A node's handover state sits beside free / leased / drained:

    leased ──(lease ends or is released)──► cleaning ──(clean run passes)──► free
                                               │
    free ──(validate / scheduled check)──► validating ──(pass)──► free
                                               │
                                     (fail) ──►  failed-validation + drained (run as reason)

`cleaning` after a lease is derived, like a lease's own state: a node whose last booking
ended after its last successful cleaning (and after cleaning was switched on) is cleaning,
so a lease ending by the clock needs no job to flip a flag. `validating` (and a cleaning
run in progress) is a hold written when a run starts and removed when it ends, with a
deadline so a console that died mid-run does not hold a node for ever. A failure leaves
`failed-validation` until a later run passes, and drains the node (drains are lifted only
by an operator).

Tables (migration m0011): `node_handover`, `node_passes`, `handover_epoch`; only this
module queries them. The validation runs themselves belong to `opsconsole.validate`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases import booking
from opsconsole.leases.audit import append_audit
from opsconsole.leases.drains import drain
from opsconsole.leases.times import format_ts
from opsconsole.store.transaction import write_transaction

LEVEL_RANK = {"quick": 1, "clean": 1, "standard": 2, "long": 3}
"""A pass at a higher level proves the lower ones; a cleaning run includes the quick checks."""


CLEANING_MARGIN_S = 900.0
"""A node still to be cleaned is kept out of leases starting within this long; a
reservation further out may have it (the cleaning will be long done)."""


class NodeState(StrEnum):
    FREE = "free"
    LEASED = "leased"
    DRAINED = "drained"
    VALIDATING = "validating"
    CLEANING = "cleaning"
    FAILED = "failed-validation"


HANDOVER_STATES = (NodeState.VALIDATING, NodeState.CLEANING, NodeState.FAILED)


@dataclass(frozen=True, slots=True)
class NodeHandover:
    host: str
    state: NodeState
    detail: str = ""
    """Why, in a few words: "run 12 since 10:02Z", "lease 7 ended 10:00Z"."""
    run_id: int | None = None
    passes: dict[str, float] = field(default_factory=dict)
    """level → when it last passed (UTC epoch seconds)."""
    failed_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": str(self.state),
            "detail": self.detail,
            "run_id": self.run_id,
            "passes": dict(self.passes),
            "failed_reason": self.failed_reason,
        }


@dataclass(frozen=True, slots=True)
class HandoverPolicy:
    """What `[validation]` asks of leasing; `HandoverPolicy.off()` is the old behaviour."""

    required_level: str | None = None
    max_age_s: float = 7 * 86_400.0
    clean_after_lease: bool = False

    @classmethod
    def off(cls) -> HandoverPolicy:
        return cls()

    @classmethod
    def from_fleet(cls, fleet: Fleet) -> HandoverPolicy:
        config = fleet.config.validation
        return cls(config.required_level, config.max_age_h * 3600.0, config.clean_after_lease)


# -- reading -----------------------------------------------------------------------------


def _epoch(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT since_ts FROM handover_epoch WHERE one = 1").fetchone()
    return row[0] if row else None


def _scan_from(conn: sqlite3.Connection) -> tuple[float, float] | None:
    """(epoch, where the scan for ended bookings starts): every node whose latest booking
    ended at or before the watermark was already clean (see `advance_watermark`)."""
    row = conn.execute(
        "SELECT since_ts, coalesce(clean_through_ts, since_ts) FROM handover_epoch WHERE one = 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


HandoverRow = tuple[
    str, str | None, int | None, float | None, float | None, float | None, int | None,
    float | None, str | None,
]  # fmt: skip
"""(host, busy, busy_run_id, busy_since_ts, busy_until_ts, cleaned_ts, failed_run_id,
failed_ts, failed_reason) of `node_handover`."""


def _rows(conn: sqlite3.Connection) -> dict[str, HandoverRow]:
    return {
        row[0]: row
        for row in conn.execute(
            "SELECT host, busy, busy_run_id, busy_since_ts, busy_until_ts, cleaned_ts,"
            " failed_run_id, failed_ts, failed_reason FROM node_handover"
        )
    }


def _passes(conn: sqlite3.Connection) -> dict[str, dict[str, tuple[float, int]]]:
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for host, level, passed_ts, run_id in conn.execute(
        "SELECT host, level, passed_ts, run_id FROM node_passes"
    ):
        out.setdefault(host, {})[level] = (passed_ts, run_id)
    return out


def _last_booking_ends(
    conn: sqlite3.Connection, since_ts: float, now_ts: float
) -> dict[str, tuple[float, int]]:
    """host → (latest booked end in (since, now], its lease): through the covering index."""
    # SQLite gives a bare column (lease_id) from the row that holds max(end_ts).
    return {
        host: (end_ts, lease_id)
        for host, end_ts, lease_id in conn.execute(
            "SELECT host, max(end_ts), lease_id FROM lease_slots"
            " WHERE end_ts > ? AND end_ts <= ? AND end_ts > start_ts GROUP BY host",
            (since_ts, now_ts),
        )
    }


def _held_now(
    conn: sqlite3.Connection, now_ts: float, hosts: Iterable[str] | None = None
) -> set[str]:
    """Hosts with a GPU booked at `now_ts` (of `hosts` only, when given: one index range
    per host instead of every live booking)."""
    if hosts is None:
        return set(booking.booked_slots(conn, now_ts, now_ts + 1e-3))
    held = set()
    for host in hosts:
        row = conn.execute(
            "SELECT 1 FROM lease_slots WHERE host = ? AND end_ts > ? AND start_ts <= ?"
            " AND end_ts > start_ts LIMIT 1",
            (host, now_ts, now_ts),
        ).fetchone()
        if row is not None:
            held.add(host)
    return held


def _cleaning_due(
    conn: sqlite3.Connection, rows: dict[str, HandoverRow], now_ts: float
) -> dict[str, tuple[float, int]]:
    """Hosts whose last lease ended after their last cleaning (and not re-leased since)."""
    scan = _scan_from(conn)
    if scan is None:
        return {}
    epoch, since_ts = scan
    ends = _last_booking_ends(conn, since_ts, now_ts)
    held = _held_now(conn, now_ts, ends)
    due = {}
    for host, (end_ts, lease_id) in ends.items():
        stored = rows[host][5] if host in rows else None
        cleaned = stored if stored is not None else epoch
        if end_ts > cleaned and host not in held:
            due[host] = (end_ts, lease_id)
    return due


def node_states(
    db: sqlite_utils.Database, fleet: Fleet, *, now_ts: float | None = None
) -> dict[str, NodeHandover]:
    """Every configured node's state now, with its last pass per level."""
    now_ts = time.time() if now_ts is None else now_ts
    with booking.read_snapshot(db) as conn:
        return _states(conn, fleet, now_ts)


def _states(conn: sqlite3.Connection, fleet: Fleet, now_ts: float) -> dict[str, NodeHandover]:
    rows = _rows(conn)
    passes = _passes(conn)
    due = _cleaning_due(conn, rows, now_ts)
    held = _held_now(conn, now_ts)
    drained = booking.drained_slots(conn, now_ts, now_ts + 1e-3)
    out = {}
    for host in fleet.hosts:
        name = host.name
        row = rows.get(name)
        host_passes = {level: ts for level, (ts, _run) in passes.get(name, {}).items()}
        state, detail, run_id = NodeState.FREE, "", None
        failed_reason = row[8] if row and row[6] is not None else None
        if name in held:
            state = NodeState.LEASED
        elif row and row[1] and (row[4] or 0) > now_ts:
            state = NodeState(row[1])
            run_id = row[2]
            detail = f"run {row[2]} since {format_ts(row[3])}"
        elif name in due:
            end_ts, lease_id = due[name]
            state, detail = NodeState.CLEANING, f"lease {lease_id} ended {format_ts(end_ts)}"
        elif failed_reason is not None and row is not None:
            state, run_id = NodeState.FAILED, row[6]
            detail = f"run {row[6]} failed {format_ts(row[7])}"
        elif None in drained.get(name, {}):
            state, detail = NodeState.DRAINED, f"drain {drained[name][None]}"
        out[name] = NodeHandover(name, state, detail, run_id, host_passes, failed_reason)
    return out


def exclusions(
    conn: sqlite3.Connection,
    fleet: Fleet,
    policy: HandoverPolicy,
    now_ts: float,
    start_ts: float,
) -> tuple[dict[str, str], dict[str, str]]:
    """(hard, soft) host → why, for placement. Hard: a run holds the node or it is being
    cleaned (never leased over). Soft: failed validation, or no pass of the required level
    within the age (leased only with an override reason, which is audited)."""
    hard: dict[str, str] = {}
    soft: dict[str, str] = {}
    rows = _rows(conn)
    if policy.clean_after_lease and start_ts < now_ts + CLEANING_MARGIN_S:
        for host, (end_ts, lease_id) in _cleaning_due(conn, rows, now_ts).items():
            hard[host] = f"cleaning after lease {lease_id} (ended {format_ts(end_ts)})"
    for host, row in rows.items():
        until = row[4]
        held = row[1] and until is not None and until > now_ts
        if (
            held
            and row[3] is not None
            and row[3] <= now_ts
            and until is not None
            and until > start_ts
        ):  # a reservation after the run's deadline may have it
            hard[host] = f"{row[1]} (run {row[2]})"
        elif row[6] is not None:
            soft.setdefault(host, f"failed validation (run {row[6]}: {row[8]})")
    if policy.required_level is not None:
        passes = _passes(conn)
        rank = LEVEL_RANK[policy.required_level]
        oldest = now_ts - policy.max_age_s
        for fleet_host in fleet.hosts:
            best = max(
                (ts for level, (ts, _r) in passes.get(fleet_host.name, {}).items()
                 if LEVEL_RANK.get(level, 0) >= rank),
                default=None,
            )  # fmt: skip
            if best is None or best < oldest:
                last = "never" if best is None else f"last {format_ts(best)}"
                soft.setdefault(
                    fleet_host.name,
                    f"not validated at {policy.required_level} within"
                    f" {policy.max_age_s / 3600:g} h ({last})",
                )
    return hard, soft


# -- writing -------------------------------------------------------------------------------


def enable_cleaning(db: sqlite_utils.Database, *, now_ts: float | None = None) -> float:
    """Ended leases send their nodes to cleaning from now on (idempotent); returns since."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, "switching on cleaning after leases") as tx:
        tx.execute("INSERT OR IGNORE INTO handover_epoch (one, since_ts) VALUES (1, ?)", (now_ts,))
        return _epoch(tx) or now_ts


def advance_watermark(db: sqlite_utils.Database, *, now_ts: float | None = None) -> float:
    """Move the scan's start past bookings whose nodes are all clean, so finding the nodes
    to clean reads recent bookings, not the whole history (146 ms → a few ms on 52,000
    bookings). Safe because bookings are never back-dated: one made later ends later
    than now. Called by the cleaner each pass; returns the watermark."""
    now_ts = time.time() if now_ts is None else now_ts
    with write_transaction(db, "advancing the cleaning watermark") as tx:
        scan = _scan_from(tx)
        if scan is None:
            return now_ts
        due = _cleaning_due(tx, _rows(tx), now_ts)
        mark = min([now_ts, *(end_ts - 1e-3 for end_ts, _lease in due.values())])
        mark = max(mark, scan[1])
        tx.execute("UPDATE handover_epoch SET clean_through_ts = ? WHERE one = 1", (mark,))
        return mark


def hold_for_run(
    db: sqlite_utils.Database,
    fleet: Fleet,
    hosts: Iterable[str],
    *,
    kind: str,
    run_id: int,
    operator: str,
    expected_s: float,
    override_reason: str | None = None,
    now_ts: float | None = None,
) -> None:
    """Hold nodes for a run, or LeaseError (nothing written): a node with any GPU booked
    in [now, now + expected_s) is refused unless an override reason is given, which is
    audited; a node already held by another run is always refused. `kind` is
    "validating" or "cleaning" (a cleaning run may hold a node whose lease just ended)."""
    now_ts = time.time() if now_ts is None else now_ts
    hosts = list(dict.fromkeys(hosts))
    for name in hosts:
        try:
            fleet.host(name)
        except KeyError:
            raise LeaseError(f'unknown host "{name}"') from None
    until_ts = now_ts + expected_s
    with write_transaction(db, f"holding {len(hosts)} node(s) for validation run {run_id}") as tx:
        rows = _rows(tx)
        busy = [
            f"{h} ({rows[h][1]}, run {rows[h][2]})"
            for h in hosts
            if h in rows and rows[h][1] and (rows[h][4] or 0) > now_ts
        ]
        if busy:
            raise LeaseError(f"already under test: {', '.join(busy)}")
        booked = booking.booked_slots(tx, now_ts, until_ts)
        leased = {h: sorted(set(booked[h].values())) for h in hosts if h in booked}
        if leased:
            tenants = booking.lease_tenants(tx, {i for ids in leased.values() for i in ids})
            parts = []
            for h, ids in leased.items():
                named = ", ".join(f"{i} {tenants.get(i, '')}".strip() for i in ids)
                parts.append(f"{h} (lease {named})")
            words = ", ".join(parts)
            if override_reason is None:
                raise LeaseError(
                    f"refused: GPUs leased during the run's window ({format_ts(now_ts)} to"
                    f" {format_ts(until_ts)}): {words}; give an override reason to run anyway"
                )
            append_audit(
                tx,
                ts=now_ts,
                operator=operator,
                action="validate.override",
                subject=f"validation:{run_id}",
                after={"hosts": hosts, "leased": words, "reason": override_reason, "kind": kind},
            )
        tried = now_ts if kind == "cleaning" else None
        tx.executemany(
            "INSERT INTO node_handover (host, busy, busy_run_id, busy_since_ts, busy_until_ts,"
            " clean_tried_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(host) DO UPDATE SET"
            " busy = excluded.busy, busy_run_id = excluded.busy_run_id,"
            " busy_since_ts = excluded.busy_since_ts, busy_until_ts = excluded.busy_until_ts,"
            " clean_tried_ts = coalesce(excluded.clean_tried_ts, clean_tried_ts)",
            [(h, kind, run_id, now_ts, until_ts, tried) for h in hosts],
        )


@dataclass(frozen=True, slots=True)
class HostOutcome:
    host: str
    verdict: str
    """"passed", "failed" or "error" (could not tell: the node stays as it was)."""
    reason: str = ""


def finish_run(
    db: sqlite_utils.Database,
    fleet: Fleet,
    run_id: int,
    level: str,
    outcomes: Iterable[HostOutcome],
    *,
    operator: str,
    now_ts: float | None = None,
) -> list[int]:
    """Release the run's hold and record each node's outcome: a pass updates its last pass
    at `level` (a clean pass also marks it cleaned) and clears an earlier failure; a
    failure marks it failed-validation and drains it with the run as reason. Returns the
    drain ids made."""
    now_ts = time.time() if now_ts is None else now_ts
    outcomes = list(outcomes)
    failed = []
    with write_transaction(db, f"recording validation run {run_id}") as tx:
        tx.execute(
            "UPDATE node_handover SET busy = NULL, busy_run_id = NULL, busy_since_ts = NULL,"
            " busy_until_ts = NULL WHERE busy_run_id = ?",
            (run_id,),
        )
        for outcome in outcomes:
            tx.execute("INSERT OR IGNORE INTO node_handover (host) VALUES (?)", (outcome.host,))
            if outcome.verdict == "passed":
                tx.execute(
                    "INSERT INTO node_passes (host, level, passed_ts, run_id) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(host, level) DO UPDATE SET passed_ts = excluded.passed_ts,"
                    " run_id = excluded.run_id",
                    (outcome.host, level, now_ts, run_id),
                )
                cleaned = now_ts if level == "clean" else None
                tx.execute(
                    "UPDATE node_handover SET failed_run_id = NULL, failed_ts = NULL,"
                    " failed_reason = NULL, cleaned_ts = coalesce(?, cleaned_ts) WHERE host = ?",
                    (cleaned, outcome.host),
                )
            elif outcome.verdict == "failed":
                # A failed cleaning ends the cleaning too: the node is failed-validation
                # (and drained) until an operator repairs it and a run passes.
                tx.execute(
                    "UPDATE node_handover SET failed_run_id = ?, failed_ts = ?, failed_reason = ?,"
                    " cleaned_ts = CASE WHEN ? THEN ? ELSE cleaned_ts END WHERE host = ?",
                    (run_id, now_ts, outcome.reason, level == "clean", now_ts, outcome.host),
                )
                failed.append(outcome)
    drains = []
    for outcome in failed:
        try:
            made = drain(
                db,
                fleet,
                outcome.host,
                reason=f"validation run {run_id} ({level}) failed: {outcome.reason}"[:500],
                operator=operator,
                now_ts=now_ts,
            )
        except LeaseError:
            continue  # already drained: the operator's drain stands, the failure is recorded
        drains.append(made.drain.id)
    return drains


CLEAN_RETRY_S = 120.0
"""A cleaning that could not tell (host unreachable) is tried again after this long."""


def nodes_to_clean(
    db: sqlite_utils.Database, fleet: Fleet, *, now_ts: float | None = None
) -> list[str]:
    """Nodes whose lease ended, that no run holds now and that were not tried in the last
    CLEAN_RETRY_S: what the cleaner should run on."""
    now_ts = time.time() if now_ts is None else now_ts
    states = node_states(db, fleet, now_ts=now_ts)
    with booking.read_snapshot(db) as conn:
        tried = dict(
            conn.execute("SELECT host, clean_tried_ts FROM node_handover WHERE clean_tried_ts > ?",
                         (now_ts - CLEAN_RETRY_S,))
        )  # fmt: skip
        # A node whose next lease starts within the margin cannot be held for a run (the
        # run would be refused and stored as such every pass): it goes to that tenant.
        soon = booking.booked_slots(conn, now_ts, now_ts + CLEANING_MARGIN_S)
    states = {name: s for name, s in states.items() if name not in tried and name not in soon}
    return [
        name for name, s in states.items() if s.state == NodeState.CLEANING and s.run_id is None
    ]
