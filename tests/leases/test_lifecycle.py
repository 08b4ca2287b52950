"""States move with the clock; extend, shorten, release and cancel fit only the states
they make sense in, keep the bookings in step, and are audited."""

from __future__ import annotations

import pytest

from opsconsole.errors import LeaseError
from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    audit_entries,
    cancel_lease,
    extend_lease,
    get_lease,
    lease_state,
    list_leases,
    release_lease,
    shorten_lease,
    update_tenant,
)
from tests.leases.fleet import DAY, HOUR, NOW
from tests.support.leases import OPERATOR, table_counts

pytestmark = pytest.mark.usefixtures("tenants")
NODE = tuple(GpuSlot("sg1-r01-n01", i) for i in range(8))
NODE_2 = tuple(GpuSlot("sg1-r02-n01", i) for i in range(8))


def book(db, fleet, start=NOW, end=NOW + DAY, tenant="acme", slots=NODE):
    request = LeaseRequest(tenant, start, end, slots=slots)
    return allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)


def bookings(db, lease_id):
    return db.conn.execute(
        "SELECT DISTINCT start_ts, end_ts FROM lease_slots WHERE lease_id = ?", (lease_id,)
    ).fetchall()


def test_state_follows_the_clock_and_the_markers():
    assert lease_state(10, 20, None, None, 5) == "reserved"
    assert lease_state(10, 20, None, None, 10) == "active"
    assert lease_state(10, 20, None, None, 20) == "ended"
    assert lease_state(10, 20, 15, None, 16) == "released"
    assert lease_state(10, 20, None, 8, 9) == "cancelled"


def test_a_reservation_becomes_active_then_ends_without_any_job(db, fleet):
    lease = book(db, fleet, start=NOW + DAY, end=NOW + 2 * DAY)
    states = [get_lease(db, lease.id).state(t) for t in (NOW, NOW + DAY, NOW + 2 * DAY)]
    assert states == ["reserved", "active", "ended"]
    assert [x.id for x in list_leases(db, states=["reserved"], now_ts=NOW)] == [lease.id]
    assert [x.id for x in list_leases(db, states=["active"], now_ts=NOW + DAY)] == [lease.id]
    assert list_leases(db, states=["reserved", "active"], now_ts=NOW + 3 * DAY) == []


def test_extend_keeps_the_slots_and_checks_what_follows(db, fleet):
    lease = book(db, fleet)
    blocker = book(db, fleet, start=NOW + 2 * DAY, end=NOW + 3 * DAY, tenant="globex")
    longer = extend_lease(db, fleet, lease.id, NOW + 2 * DAY, operator=OPERATOR, now_ts=NOW)
    assert longer.end_ts == NOW + 2 * DAY and longer.slots == lease.slots
    assert bookings(db, lease.id) == [(NOW, NOW + 2 * DAY)]
    before = table_counts(db)
    with pytest.raises(LeaseError, match=f"leased by lease {blocker.id} \\(globex\\)"):
        extend_lease(db, fleet, lease.id, NOW + 2 * DAY + 1, operator=OPERATOR, now_ts=NOW)
    with pytest.raises(LeaseError, match="shorten it"):
        extend_lease(db, fleet, lease.id, NOW + DAY, operator=OPERATOR, now_ts=NOW)
    assert table_counts(db) == before


def test_extend_refuses_a_site_the_tenant_may_no_longer_use(db, fleet):
    lease = book(db, fleet, tenant="globex", slots=NODE)  # globex: any site, then SG1 is cut
    update_tenant(db, "globex", allowed_sites=["MY1"], operator=OPERATOR, now_ts=NOW)
    before = table_counts(db)
    with pytest.raises(LeaseError, match=r"globex may use MY1 only, and sg1-r01-n01 \(SG1\)"):
        extend_lease(db, fleet, lease.id, NOW + 2 * DAY, operator=OPERATOR, now_ts=NOW)
    assert table_counts(db) == before
    longer = extend_lease(
        db, fleet, lease.id, NOW + 2 * DAY, operator=OPERATOR, override_reason="INC-7: move",
        now_ts=NOW,
    )  # fmt: skip
    assert longer.end_ts == NOW + 2 * DAY


def test_extend_respects_health_then_quota(db, fleet):
    lease = book(db, fleet)  # acme holds 8 until NOW + DAY
    health = {("sg1-r01-n01", 2): "critical"}
    with pytest.raises(LeaseError, match="sg1-r01-n01:2 is critical"):
        extend_lease(
            db, fleet, lease.id, NOW + DAY + HOUR, operator=OPERATOR, health=health, now_ts=NOW
        )
    extended = extend_lease(
        db,
        fleet,
        lease.id,
        NOW + DAY + HOUR,
        operator=OPERATOR,
        health=health,
        override_reason="tenant accepts",
        now_ts=NOW,
    )
    assert extended.override_reason == "tenant accepts"
    update_tenant(db, "acme", gpu_quota=14, operator=OPERATOR)
    book(db, fleet, start=NOW + DAY, end=NOW + 2 * DAY, slots=NODE_2[:6])  # 6 + 8 = 14: fits
    book(db, fleet, start=NOW + DAY + HOUR, end=NOW + 2 * DAY, slots=NODE_2[6:7])
    with pytest.raises(LeaseError, match=r"quota exceeded: acme may hold 14 .* would make 15"):
        extend_lease(db, fleet, lease.id, NOW + 2 * DAY, operator=OPERATOR, now_ts=NOW)


def test_shorten_not_into_the_past(db, fleet):
    lease = book(db, fleet)
    shorter = shorten_lease(db, lease.id, NOW + HOUR, operator=OPERATOR, now_ts=NOW)
    assert shorter.end_ts == NOW + HOUR and bookings(db, lease.id) == [(NOW, NOW + HOUR)]
    with pytest.raises(LeaseError, match="not after now"):
        shorten_lease(db, lease.id, NOW + 60, operator=OPERATOR, now_ts=NOW + 120)
    # The freed time is bookable by someone else.
    book(db, fleet, start=NOW + HOUR, end=NOW + DAY, tenant="globex")


def test_release_frees_the_slots_from_now_and_keeps_the_agreed_end(db, fleet):
    lease = book(db, fleet)
    released = release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + HOUR)
    assert released.state(NOW + HOUR) == "released"
    assert released.end_ts == NOW + DAY and released.released_ts == NOW + HOUR
    assert bookings(db, lease.id) == [(NOW, NOW + HOUR)]
    with pytest.raises(LeaseError, match="is released; cannot release"):
        release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 2 * HOUR)
    book(db, fleet, start=NOW + HOUR, end=NOW + DAY, tenant="globex")


def test_cancel_only_before_the_start(db, fleet):
    reserved = book(db, fleet, start=NOW + DAY, end=NOW + 2 * DAY)
    active = book(db, fleet, start=NOW, end=NOW + HOUR, slots=(GpuSlot("sg1-r01-n02", 0),))
    with pytest.raises(LeaseError, match="active; cannot cancel it; release it instead"):
        cancel_lease(db, active.id, operator=OPERATOR, now_ts=NOW)
    with pytest.raises(LeaseError, match="reserved; cannot release it; cancel it instead"):
        release_lease(db, reserved.id, operator=OPERATOR, now_ts=NOW)
    cancelled = cancel_lease(db, reserved.id, operator=OPERATOR, now_ts=NOW)
    assert cancelled.state(NOW + DAY) == "cancelled"
    assert bookings(db, reserved.id) == [(NOW + DAY, NOW + DAY)]  # empty: matches nothing
    book(db, fleet, start=NOW + DAY, end=NOW + 2 * DAY, tenant="globex")
    with pytest.raises(LeaseError, match="cancelled; cannot extend"):
        extend_lease(db, fleet, reserved.id, NOW + 3 * DAY, operator=OPERATOR, now_ts=NOW)


def test_every_change_is_audited_with_before_and_after(db, fleet):
    lease = book(db, fleet)
    extend_lease(db, fleet, lease.id, NOW + 2 * DAY, operator="bob", now_ts=NOW)
    release_lease(db, lease.id, operator="carol", now_ts=NOW + HOUR)
    entries = audit_entries(db, subject=f"lease:{lease.id}")
    assert [(e["action"], e["operator"]) for e in entries] == [
        ("lease.release", "carol"),
        ("lease.extend", "bob"),
        ("lease.allocate", OPERATOR),
    ]
    assert entries[1]["before"]["end_ts"] == NOW + DAY
    assert entries[1]["after"]["end_ts"] == NOW + 2 * DAY
    assert entries[0]["after"]["released_ts"] == NOW + HOUR
    assert entries[2]["before"] is None and len(entries[2]["after"]["slots"]) == 8


def test_unknown_lease(db):
    with pytest.raises(LeaseError, match="no lease 99"):
        get_lease(db, 99)
    with pytest.raises(LeaseError, match="no lease 99"):
        release_lease(db, 99, operator=OPERATOR, now_ts=NOW)
