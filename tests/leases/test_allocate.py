"""Allocation by GPU count, whole nodes and explicit slots; each refusal is one line and
writes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from opsconsole.errors import LeaseError
from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, preview_lease
from tests.leases.fleet import DAY, HOUR, NOW
from tests.support.leases import OPERATOR, table_counts

pytestmark = pytest.mark.usefixtures("tenants")


def allocate(db, fleet, request, **kwargs):
    return allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW, **kwargs)


def refused(db, fleet, request, match: str, **kwargs) -> str:
    before = table_counts(db)
    with pytest.raises(LeaseError, match=match) as info:
        allocate(db, fleet, request, **kwargs)
    assert table_counts(db) == before
    message = str(info.value)
    assert "\n" not in message
    return message


def test_whole_nodes_fill_the_best_fitting_rack(db, fleet):
    # Use 2 nodes of sg1-r02 so it becomes the smallest rack that still fits 2 nodes.
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_node("sg1-r02-n01")))
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_node("sg1-r02-n02")))
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, nodes=2, gpu_model="H200"))
    assert lease.hosts == ("sg1-r02-n03", "sg1-r02-n04")
    assert lease.gpu_count == 16 and lease.request == "nodes"
    assert "rack sg1-r02" in lease.placement


def test_nodes_beyond_one_rack_stay_on_one_leaf_and_one_model(db, fleet):
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, nodes=6))
    racks = {h.rsplit("-", 1)[0] for h in lease.hosts}
    # leaf-02 has exactly 6 whole nodes, but 2 of them are L40S: a lease takes one model.
    assert racks == {"sg1-r01", "sg1-r02"}
    assert "H200: 6 whole node(s) in leaf leaf-01" in lease.placement


def test_small_requests_best_fit_the_smaller_model_pool(db, fleet):
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=4))
    assert lease.hosts == ("sg1-r04-n01",) and lease.placement.startswith("L40S: 4 GPU(s)")


def test_small_requests_take_the_most_fragmented_node(db, fleet):
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_slots("sg1-r03-n02", 0, 5)))
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=3, gpu_model="H200"))
    assert lease.slots == tuple(GpuSlot("sg1-r03-n02", i) for i in (5, 6, 7))
    assert "exact fit" in lease.placement


def test_two_part_used_nodes_before_breaking_a_whole_one(db, fleet):
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_slots("sg1-r01-n01", 0, 2)))
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_slots("sg1-r01-n02", 0, 2)))
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=12))
    assert lease.hosts == ("sg1-r01-n01", "sg1-r01-n02")


def test_preview_matches_allocate_and_writes_nothing(db, fleet):
    request = LeaseRequest("acme", NOW + HOUR, NOW + DAY, gpus=10)
    before = table_counts(db)
    placement = preview_lease(db, fleet, request, now_ts=NOW)
    assert table_counts(db) == before
    assert allocate(db, fleet, request).slots == placement.slots


def test_reservations_in_the_future_do_not_block_now(db, fleet):
    allocate(db, fleet, LeaseRequest("globex", NOW + 2 * DAY, NOW + 3 * DAY, gpus=112))
    allocate(db, fleet, LeaseRequest("globex", NOW + 2 * DAY, NOW + 3 * DAY, gpus=8))
    now_lease = allocate(db, fleet, LeaseRequest("globex", NOW, NOW + 2 * DAY, gpus=112))
    assert now_lease.gpu_count == 112
    refused(db, fleet, LeaseRequest("globex", NOW + DAY, NOW + 4 * DAY, gpus=1), "only 0 free")


def test_unknown_tenant(db, fleet):
    refused(db, fleet, LeaseRequest("nobody", NOW, NOW + DAY, gpus=1), 'unknown tenant "nobody"')


def test_end_not_after_start(db, fleet):
    refused(db, fleet, LeaseRequest("acme", NOW + DAY, NOW + DAY, gpus=1), "end must be after")


def test_window_in_the_past(db, fleet):
    refused(db, fleet, LeaseRequest("acme", NOW - 2 * DAY, NOW - DAY, gpus=1), "in the past")
    refused(db, fleet, LeaseRequest("acme", NOW - DAY, NOW + DAY, gpus=1), "starts in the past")


def test_a_start_moments_ago_is_taken_as_now(db, fleet):
    lease = allocate(db, fleet, LeaseRequest("acme", NOW - 5, NOW + DAY, gpus=1))
    assert lease.start_ts == NOW


def test_more_gpus_than_can_be_placed_says_how_many_and_where(db, fleet):
    message = refused(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, gpus=500), "only 112 free")
    assert "sg1-r01 32" in message and "H200, the model with most free" in message
    message = refused(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, nodes=20), "whole node")
    assert "only 14 whole node(s) free (my1-r01-n[01-02],sg1-r[01-03]-n[01-04])" in message


def test_quota_counts_concurrent_gpus_over_the_window(db, fleet):
    allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=40))
    allocate(db, fleet, LeaseRequest("acme", NOW + DAY, NOW + 2 * DAY, gpus=64))  # after: fine
    message = refused(db, fleet, LeaseRequest("acme", NOW, NOW + 3 * DAY, gpus=1), "quota")
    assert "up to 64" in message and "64 GPUs at once" in message


def test_allowed_sites_limit_placement_and_explicit_slots(db, fleet):
    refused(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, slots=_node("my1-r01-n01")), "MY1")
    lease = allocate(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=64))
    assert not any(h.startswith("my1") for h in lease.hosts)


def test_a_site_limits_placement_to_its_hosts(db, fleet):
    lease = allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, gpus=16, site="my1"))
    assert {h[:3] for h in lease.hosts} == {"my1"}  # any case; both MY1 nodes
    message = refused(
        db, fleet, LeaseRequest("globex", NOW, NOW + DAY, gpus=1, site="MY1"), "only 0 free"
    )
    assert "(site MY1)" in message
    refused(
        db,
        fleet,
        LeaseRequest("globex", NOW, NOW + DAY, gpus=1, site="XX1"),
        'unknown site "XX1" \\(the config has: SG1, MY1\\)',
    )
    refused(  # a site the tenant may not use: the allowed-sites refusal
        db,
        fleet,
        LeaseRequest("acme", NOW, NOW + DAY, gpus=1, site="MY1"),
        "site MY1: acme may use SG1 only",
    )
    refused(
        db,
        fleet,
        LeaseRequest("acme", NOW, NOW + DAY, slots=_node("sg1-r01-n01"), site="MY1"),
        "site MY1: acme may use SG1 only",
    )


def test_locality_is_applied_by_placement_and_checked_on_explicit_slots(db, fleet):
    lease = allocate(
        db, fleet, LeaseRequest("globex", NOW, NOW + DAY, gpus=20, site="SG1", locality="rack")
    )
    assert len({h.rsplit("-", 1)[0] for h in lease.hosts}) == 1
    message = refused(
        db,
        fleet,
        LeaseRequest("globex", NOW, NOW + DAY, nodes=6, gpu_model="H200", locality="leaf"),
        "cannot place 6 whole node",
    )
    assert "within one leaf: at most 5 whole node(s) free in one leaf (leaf leaf-01: " in message
    slots = _node("sg1-r01-n02") + _node("sg1-r02-n02")
    refused(
        db,
        fleet,
        LeaseRequest("globex", NOW + DAY, NOW + 2 * DAY, slots=slots, locality="rack"),
        "the slots span 2 racks",
    )
    allocate(
        db, fleet, LeaseRequest("globex", NOW + DAY, NOW + 2 * DAY, slots=slots, locality="leaf")
    )


def test_explicit_slot_already_leased_names_the_lease(db, fleet):
    first = allocate(
        db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_slots("sg1-r01-n01", 0, 4))
    )
    message = refused(
        db,
        fleet,
        LeaseRequest("acme", NOW + HOUR, NOW + DAY, slots=_slots("sg1-r01-n01", 2, 2)),
        f"already leased in that window by lease {first.id} \\(globex\\)",
    )
    assert "1 more slot" in message


def test_back_to_back_windows_do_not_overlap(db, fleet):
    allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_node("sg1-r01-n01")))
    allocate(db, fleet, LeaseRequest("acme", NOW + DAY, NOW + 2 * DAY, slots=_node("sg1-r01-n01")))


def test_exactly_one_kind_of_request(db, fleet):
    refused(db, fleet, LeaseRequest("acme", NOW, NOW + DAY), "exactly one")
    refused(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=1, nodes=1), "exactly one")
    refused(db, fleet, LeaseRequest("acme", NOW, NOW + DAY, gpus=0), "at least 1")
    refused(
        db,
        fleet,
        LeaseRequest("acme", NOW, NOW + DAY, slots=(GpuSlot("sg1-r01-n01", 0),) * 2),
        "twice",
    )


def test_unhealthy_slots_are_skipped_and_overridable(db, fleet):
    health = {"sg1-r03-n01": "down", ("sg1-r03-n02", 3): "critical", "sg1-r03-n03": "ok"}
    request = LeaseRequest("acme", NOW, NOW + DAY, slots=_slots("sg1-r03-n02", 3, 1))
    refused(db, fleet, request, "is critical; give an override", health=health)
    every_h200 = LeaseRequest("globex", NOW, NOW + DAY, gpus=112, gpu_model="H200")
    message = refused(db, fleet, every_h200, "only 103 free", health=health)
    assert "9 more GPU(s) are drained or unhealthy" in message
    forced = LeaseRequest(
        "globex", NOW, NOW + DAY, gpus=112, gpu_model="h200", override_reason="ok'd"
    )
    lease = allocate(db, fleet, forced, health=health)
    assert lease.gpu_count == 112 and lease.override_reason == "ok'd"


def test_the_trigger_refuses_an_overlap_even_from_raw_sql(db, fleet):
    """The last guard: a bug in the Python checks, or another program, cannot double-book."""
    first = allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=_node("sg1-r01-n01")))
    later = LeaseRequest("globex", NOW + DAY, NOW + 2 * DAY, slots=_node("sg1-r01-n01"))
    second = allocate(db, fleet, later)
    with pytest.raises(sqlite3.IntegrityError, match="already leased"):
        db.conn.execute(
            "INSERT INTO lease_slots (lease_id, host, gpu_index, start_ts, end_ts)"
            " VALUES (?, 'sg1-r01-n01', 3, ?, ?)",
            (first.id, NOW + DAY - HOUR, NOW + DAY + HOUR),
        )
    db.conn.rollback()  # sqlite3 opened a transaction for the raw statement
    with pytest.raises(sqlite3.IntegrityError, match="already leased"):
        db.conn.execute(
            "UPDATE lease_slots SET start_ts = ? WHERE lease_id = ?", (NOW + HOUR, second.id)
        )
    db.conn.rollback()


def _node(host: str) -> tuple[GpuSlot, ...]:
    return _slots(host, 0, 8)


def _slots(host: str, first: int, count: int) -> tuple[GpuSlot, ...]:
    return tuple(GpuSlot(host, i) for i in range(first, first + count))
