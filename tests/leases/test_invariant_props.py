"""Random sequences of lease operations against a real store: after every step no slot is
in two overlapping bookings, every lease holds exactly its GPU count, no tenant exceeds
its quota or leaves its sites, no new lease lands on a drained slot without an override,
and a refused operation writes nothing (not even an audit row)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from opsconsole.errors import LeaseError
from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    cancel_lease,
    create_tenant,
    drain,
    extend_lease,
    release_lease,
    shorten_lease,
    undrain,
    verify_audit,
)
from opsconsole.leases.booking import tenant_peak_gpus
from opsconsole.store import open_store
from tests.leases.fleet import HOUR, NOW, make_fleet
from tests.support.leases import overlapping_bookings, table_counts
from tests.support.profiles import examples

FLEET = make_fleet()
HOSTS = [h.name for h in FLEET.hosts]
QUOTAS = {"acme": 40, "globex": 90}
SITES = {"acme": ("SG1",), "globex": None}

hours = st.integers(0, 12)
tenant_names = st.sampled_from(list(QUOTAS))
lengths = st.integers(1, 30)
lease_ids = st.integers(1, 6)
operations = st.one_of(
    st.tuples(st.just("gpus"), tenant_names, hours, lengths, st.integers(1, 40)),
    st.tuples(st.just("nodes"), tenant_names, hours, lengths, st.integers(1, 4)),
    st.tuples(
        st.just("slots"),
        tenant_names,
        hours,
        lengths,
        st.sampled_from(HOSTS),
        st.integers(0, 3),
        st.integers(1, 4),
        st.booleans(),
    ),
    st.tuples(st.just("extend"), lease_ids, st.integers(1, 20)),
    st.tuples(st.just("shorten"), lease_ids, st.integers(1, 20)),
    st.tuples(st.just("release"), lease_ids),
    st.tuples(st.just("cancel"), lease_ids),
    st.tuples(st.just("drain"), st.sampled_from(HOSTS), st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("undrain"), st.sampled_from(HOSTS)),
    st.tuples(st.just("tick"), st.integers(1, 6)),
)


def _apply(db, op, now: float) -> None:
    kind = op[0]
    if kind in ("gpus", "nodes", "slots"):
        tenant, start_h, length_h = op[1], op[2], op[3]
        start, end = NOW + start_h * HOUR, NOW + (start_h + length_h) * HOUR
        if kind == "slots":
            host, first, count, override = op[4], op[5], op[6], op[7]
            slots = tuple(GpuSlot(host, i) for i in range(first, first + count))
            request = LeaseRequest(
                tenant, start, end, slots=slots, override_reason="test" if override else None
            )
        else:
            request = LeaseRequest(tenant, start, end, **{kind: op[4]})
        _check_not_drained(db, allocate_lease(db, FLEET, request, operator="prop", now_ts=now))
    elif kind == "extend":
        lease_end = db.conn.execute("SELECT end_ts FROM leases WHERE id = ?", (op[1],)).fetchone()
        target = (lease_end[0] if lease_end else NOW) + op[2] * HOUR
        extend_lease(db, FLEET, op[1], target, operator="prop", now_ts=now)
    elif kind == "shorten":
        lease_end = db.conn.execute("SELECT end_ts FROM leases WHERE id = ?", (op[1],)).fetchone()
        target = (lease_end[0] if lease_end else NOW) - op[2] * HOUR
        shorten_lease(db, op[1], target, operator="prop", now_ts=now)
    elif kind == "release":
        release_lease(db, op[1], operator="prop", now_ts=now)
    elif kind == "cancel":
        cancel_lease(db, op[1], operator="prop", now_ts=now)
    elif kind == "drain":
        drain(db, FLEET, op[1], op[2], reason="prop", operator="prop", now_ts=now)
    elif kind == "undrain":
        undrain(db, op[1], operator="prop", now_ts=now)


def _check(db, now: float) -> None:
    conn = db.conn
    assert overlapping_bookings(db) == 0
    short = conn.execute(
        "SELECT count(*) FROM leases l WHERE gpu_count !="
        " (SELECT count(*) FROM lease_slots s WHERE s.lease_id = l.id)"
    ).fetchone()[0]
    assert short == 0
    for tenant, quota in QUOTAS.items():
        assert tenant_peak_gpus(conn, tenant, NOW - 100 * HOUR, NOW + 1000 * HOUR) <= quota
    outside = conn.execute(
        "SELECT count(*) FROM lease_slots s JOIN leases l ON l.id = s.lease_id"
        " WHERE l.tenant = 'acme' AND s.host LIKE 'my1-%'"
    ).fetchone()[0]
    assert outside == 0


def _check_not_drained(db, lease) -> None:
    """A lease allocated without an override has no slot under a drain holding in its window."""
    if lease.override_reason is not None:
        return
    for slot in lease.slots:
        hit = db.conn.execute(
            "SELECT id FROM drains WHERE host = ? AND (gpu_index IS NULL OR gpu_index = ?)"
            " AND lifted_ts IS NULL AND start_ts < ? AND (end_ts IS NULL OR end_ts > ?)",
            (slot.host, slot.gpu_index, lease.end_ts, lease.start_ts),
        ).fetchone()
        assert hit is None, f"{slot} placed under drain {hit}"


@pytest.mark.slow
@settings(max_examples=examples(300), deadline=None)
@given(st.lists(operations, min_size=5, max_size=40))
def test_random_operations_keep_every_invariant(ops):
    db = open_store(":memory:")
    for tenant, quota in QUOTAS.items():
        sites = SITES[tenant]
        create_tenant(db, tenant, gpu_quota=quota, allowed_sites=sites, operator="p", now_ts=NOW)
    now = NOW
    done: Counter[str] = Counter()
    for op in ops:
        if op[0] == "tick":
            now += op[1] * HOUR
            continue
        before = (table_counts(db), db.conn.execute("SELECT * FROM audit_head").fetchone())
        try:
            _apply(db, op, now)
            done[op[0]] += 1
        except LeaseError as exc:
            assert "\n" not in str(exc)
            after = (table_counts(db), db.conn.execute("SELECT * FROM audit_head").fetchone())
            assert after == before  # refused: nothing written
        _check(db, now)
    for kind, count in done.items():
        event(f"{kind} succeeded {'0' if not count else '1+'}")
    assert verify_audit(db).ok
    db.close()
