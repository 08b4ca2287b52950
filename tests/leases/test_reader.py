"""The leases layer's `LeaseReader`: the lease facts alerts and capacity read through it
instead of their own SQL on the lease tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    cancel_lease,
    create_tenant,
    drain,
    release_lease,
    undrain,
)
from opsconsole.leases.reader import Booking, DrainRow, lease_reader
from opsconsole.store.inventory import sync_inventory
from tests.leases.fleet import DAY, HOUR, NOW, make_fleet

N1, N2 = "sg1-r01-n01", "sg1-r01-n02"


@pytest.fixture
def booked(db, tmp_path: Path):
    """acme: lease 1 on N1 GPUs 0-1 for 10 h, lease 2 on N2 GPU 0 released after an hour,
    lease 3 on N2 GPU 1 reserved from tomorrow then cancelled."""
    fleet = make_fleet(tmp_path / "opsconsole.toml")
    sync_inventory(db, fleet)
    create_tenant(db, "globex", gpu_quota=8, operator="t", now_ts=NOW)
    create_tenant(db, "acme", gpu_quota=8, operator="t", now_ts=NOW)

    def book(host: str, gpus: list[int], start: float, end: float) -> int:
        slots = tuple(GpuSlot(host, i) for i in gpus)
        request = LeaseRequest("acme", start, end, slots=slots)
        return allocate_lease(db, fleet, request, operator="t", now_ts=NOW).id

    assert book(N1, [0, 1], NOW, NOW + 10 * HOUR) == 1
    assert book(N2, [0], NOW, NOW + DAY) == 2
    release_lease(db, 2, operator="t", now_ts=NOW + HOUR)
    assert book(N2, [1], NOW + DAY, NOW + 2 * DAY) == 3
    cancel_lease(db, 3, operator="t", now_ts=NOW + 60)
    return db, fleet


def test_held_slots_are_the_open_leases_slots_now(booked):
    db, _fleet = booked
    reader = lease_reader(db.conn)
    held = reader.held_slots(NOW + 2 * HOUR)
    assert [(s.host, s.gpu_index, s.lease_id, s.tenant) for s in held] == [
        (N1, 0, 1, "acme"),
        (N1, 1, 1, "acme"),
    ]
    assert held[0].end_ts == NOW + 10 * HOUR
    assert reader.held_slots(NOW + 11 * HOUR) == []  # lease 1 ended


def test_bookings_are_cut_on_release_and_gone_on_cancel(booked):
    db, _fleet = booked
    bookings = lease_reader(db.conn).bookings(NOW, NOW + 3 * DAY)
    assert bookings == (
        Booking(1, "acme", N1, 0, NOW, NOW + 10 * HOUR),
        Booking(1, "acme", N1, 1, NOW, NOW + 10 * HOUR),
        Booking(2, "acme", N2, 0, NOW, NOW + HOUR),
    )
    assert lease_reader(db.conn).bookings(NOW + 2 * HOUR, NOW + 3 * HOUR) == bookings[:2]


def test_tenant_names_sorted(booked):
    db, _fleet = booked
    assert lease_reader(db.conn).tenant_names() == ("acme", "globex")


def test_drains_before_a_time_include_lifted_ones(booked):
    db, fleet = booked
    drain(db, fleet, N2, reason="fan", operator="t", now_ts=NOW)
    undrain(db, N2, operator="t", now_ts=NOW + HOUR)
    drain(db, fleet, N1, 3, reason="ecc", operator="t", start_ts=NOW + DAY, now_ts=NOW)
    reader = lease_reader(db.conn)
    assert reader.drains_before(NOW + 2 * HOUR) == (
        DrainRow(1, N2, None, NOW, None, NOW + HOUR, "fan"),
    )
    assert [d.drain_id for d in reader.drains_before(NOW + 2 * DAY)] == [1, 2]


def test_the_change_mark_moves_with_every_lease_change(booked):
    db, fleet = booked
    reader = lease_reader(db.conn)
    before = reader.change_mark()
    assert before > 0
    drain(db, fleet, N2, reason="fan", operator="t", now_ts=NOW)
    assert reader.change_mark() > before


def test_the_mark_of_an_empty_store_is_zero(db):
    assert lease_reader(db.conn).change_mark() == 0
    assert lease_reader(db.conn).held_slots(NOW) == []
