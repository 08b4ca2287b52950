"""Tenants (create, update, archive) and drains (node or GPU, with an end, lifted only by
an operator or the clock, marking the leases they touch)."""

from __future__ import annotations

import pytest

from opsconsole.errors import LeaseError
from opsconsole.leases import (
    GpuSlot,
    LeaseRequest,
    allocate_lease,
    archive_tenant,
    create_tenant,
    drain,
    get_lease,
    list_drains,
    list_tenants,
    preview_lease,
    release_lease,
    undrain,
    update_tenant,
)
from tests.leases.fleet import DAY, HOUR, NOW
from tests.support.leases import OPERATOR, table_counts


def test_create_update_archive_tenant(db):
    tenant = create_tenant(
        db,
        "acme",
        gpu_quota=8,
        contact="noc@acme.ai",
        colour="#00aa88",
        allowed_sites=["SG1"],
        known_sites=["SG1", "MY1"],
        operator=OPERATOR,
        now_ts=NOW,
    )
    assert tenant.allowed_sites == ("SG1",)
    changed = update_tenant(db, "acme", gpu_quota=16, allowed_sites=None, operator=OPERATOR)
    assert changed.gpu_quota == 16 and changed.allowed_sites is None
    assert changed.contact == "noc@acme.ai"
    archive_tenant(db, "acme", operator=OPERATOR, now_ts=NOW)
    assert list_tenants(db) == [] and list_tenants(db, include_archived=True)[0].archived


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "bad name"}, "not allowed"),
        ({"colour": "rgb(1,2,3)"}, "not a colour"),
        ({"gpu_quota": -1}, "at least 1"),
        ({"gpu_quota": 0}, "at least 1"),
        ({"allowed_sites": ["XX9"]}, 'unknown site "XX9"'),
        ({"allowed_sites": []}, "empty"),
    ],
)
def test_bad_tenant_fields_are_refused(db, kwargs, match):
    args = {"name": "acme", "gpu_quota": 8, "known_sites": ["SG1"], **kwargs}
    with pytest.raises(LeaseError, match=match):
        create_tenant(db, args.pop("name"), operator=OPERATOR, **args)
    assert table_counts(db)["tenants"] == 0


@pytest.mark.usefixtures("tenants")
def test_archive_refused_while_leases_are_open_and_allocation_refused_after(db, fleet):
    request = LeaseRequest("acme", NOW, NOW + DAY, gpus=1)
    lease = allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)
    with pytest.raises(LeaseError, match="still has 1 reserved or active"):
        archive_tenant(db, "acme", operator=OPERATOR, now_ts=NOW)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + HOUR)
    archive_tenant(db, "acme", operator=OPERATOR, now_ts=NOW + HOUR)
    with pytest.raises(LeaseError, match="archived"):
        allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW + HOUR)
    with pytest.raises(LeaseError, match="already exists"):
        create_tenant(db, "acme", gpu_quota=1, operator=OPERATOR)


def allocate(db, fleet, request):
    return allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)


@pytest.mark.usefixtures("tenants")
def test_drained_node_is_skipped_and_its_leases_are_marked(db, fleet):
    slots = tuple(GpuSlot("sg1-r04-n01", i) for i in range(2))
    lease = allocate(db, fleet, LeaseRequest("globex", NOW, NOW + DAY, slots=slots))
    result = drain(db, fleet, "sg1-r04-n01", reason="PSU swap", operator="bob", now_ts=NOW)
    assert result.affected_lease_ids == (lease.id,)
    assert get_lease(db, lease.id).affected_by_drains == (result.drain.id,)
    two_l40s = LeaseRequest("acme", NOW, NOW + DAY, gpus=2, gpu_model="L40S")
    assert preview_lease(db, fleet, two_l40s, now_ts=NOW).hosts == ("sg1-r04-n02",)
    gpu3 = LeaseRequest("acme", NOW, NOW + DAY, slots=(GpuSlot("sg1-r04-n01", 3),))
    with pytest.raises(LeaseError, match="sg1-r04-n01:3 is drained \\(drain 1\\)"):
        allocate(db, fleet, gpu3)
    with pytest.raises(LeaseError, match="already drained"):
        drain(db, fleet, "sg1-r04-n01", reason="again", operator="bob", now_ts=NOW)
    overridden = LeaseRequest(
        "acme", NOW, NOW + DAY, slots=gpu3.slots, override_reason="burn-in by tenant"
    )
    assert allocate(db, fleet, overridden).override_reason == "burn-in by tenant"


@pytest.mark.usefixtures("tenants")
def test_a_drain_lapses_at_its_end_and_is_lifted_only_by_an_operator(db, fleet):
    drain(db, fleet, "sg1-r04-n01", 2, reason="ECC", operator="bob", end_ts=NOW + HOUR, now_ts=NOW)
    gpu2 = LeaseRequest("acme", NOW + HOUR, NOW + DAY, slots=(GpuSlot("sg1-r04-n01", 2),))
    allocate_lease(db, fleet, gpu2, operator=OPERATOR, now_ts=NOW)  # after its end: fine
    drain(db, fleet, "sg1-r04-n02", reason="cabling", operator="bob", now_ts=NOW)
    assert [d.target for d in list_drains(db, now_ts=NOW)] == ["sg1-r04-n01:2", "sg1-r04-n02"]
    assert [d.target for d in list_drains(db, now_ts=NOW + 2 * HOUR)] == ["sg1-r04-n02"]
    with pytest.raises(LeaseError, match="sg1-r04-n02:1 has no drain to lift \\(the whole node"):
        undrain(db, "sg1-r04-n02", 1, operator="carol", now_ts=NOW)
    (lifted,) = undrain(db, "sg1-r04-n02", operator="carol", now_ts=NOW + HOUR)
    assert lifted.lifted_by == "carol" and not lifted.in_force(NOW + HOUR)
    assert list_drains(db, now_ts=NOW + 2 * HOUR) == []
    assert len(list_drains(db, now_ts=NOW + 2 * HOUR, include_past=True)) == 2


def test_drain_input_errors(db, fleet):
    with pytest.raises(LeaseError, match="needs a reason"):
        drain(db, fleet, "sg1-r01-n01", reason="  ", operator=OPERATOR)
    with pytest.raises(LeaseError, match='unknown host "nope"'):
        drain(db, fleet, "nope", reason="x", operator=OPERATOR)
    with pytest.raises(LeaseError, match="there is no GPU 8"):
        drain(db, fleet, "sg1-r01-n01", 8, reason="x", operator=OPERATOR)
    assert table_counts(db)["drains"] == 0
