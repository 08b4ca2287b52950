"""Node handover in the leases layer: the state machine (free → validating → free,
leased → cleaning → free, failure → failed-validation + drained), refusals on leased GPUs
and the required-validation rule for new leases, all against a real SQLite file."""

from __future__ import annotations

import json

import pytest

from opsconsole.config import fleet_from_dict
from opsconsole.errors import LeaseError
from opsconsole.leases import LeaseRequest, allocate_lease, list_drains, release_lease
from opsconsole.leases.audit import audit_entries, verify_audit
from opsconsole.leases.handover import (
    HostOutcome,
    NodeState,
    enable_cleaning,
    finish_run,
    hold_for_run,
    node_states,
    nodes_to_clean,
)
from opsconsole.leases.slotspec import parse_slots
from tests.leases.fleet import FLEET, HOUR, NOW
from tests.support.leases import OPERATOR

N1 = "sg1-r01-n01"


@pytest.fixture
def fleet(tmp_path):
    """The lease tests' fleet with validation required and cleaning after leases."""
    raw = {**FLEET, "validation": {"required_level": "quick", "max_age_h": 24.0,
                                   "clean_after_lease": True}}  # fmt: skip
    return fleet_from_dict(raw, tmp_path / "opsconsole.toml")


def state(db, fleet, host, now_ts):
    return node_states(db, fleet, now_ts=now_ts)[host]


def validate_all(db, fleet, now_ts, run_id=1, level="quick", hosts=None):
    names = hosts or [h.name for h in fleet.hosts]
    hold_for_run(db, fleet, names, kind="validating", run_id=run_id, operator=OPERATOR,
                 expected_s=600, now_ts=now_ts)  # fmt: skip
    finish_run(db, fleet, run_id, level, [HostOutcome(n, "passed") for n in names],
               operator=OPERATOR, now_ts=now_ts + 60)  # fmt: skip


def lease_n1(db, fleet, now_ts, **kw):
    request = LeaseRequest(
        "globex", now_ts, now_ts + 4 * HOUR, slots=tuple(parse_slots([N1], fleet)), **kw
    )
    return allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=now_ts)


def test_validating_holds_the_node_then_frees_it(db, fleet, tenants):
    hold_for_run(db, fleet, [N1], kind="validating", run_id=7, operator=OPERATOR,
                 expected_s=600, now_ts=NOW)  # fmt: skip
    s = state(db, fleet, N1, NOW + 1)
    assert (s.state, s.run_id) == (NodeState.VALIDATING, 7)
    with pytest.raises(LeaseError, match="already under test"):
        hold_for_run(db, fleet, [N1], kind="validating", run_id=8, operator=OPERATOR,
                     expected_s=600, now_ts=NOW + 2)  # fmt: skip
    with pytest.raises(LeaseError, match="validating"):
        lease_n1(db, fleet, NOW + 3, override_reason="urgent")
    finish_run(db, fleet, 7, "quick", [HostOutcome(N1, "passed")], operator=OPERATOR,
               now_ts=NOW + 60)  # fmt: skip
    s = state(db, fleet, N1, NOW + 61)
    assert s.state == NodeState.FREE and s.passes == {"quick": NOW + 60}


def test_a_hold_lapses_if_its_run_never_finishes(db, fleet):
    hold_for_run(db, fleet, [N1], kind="validating", run_id=7, operator=OPERATOR,
                 expected_s=600, now_ts=NOW)  # fmt: skip
    assert state(db, fleet, N1, NOW + 601).state == NodeState.FREE


def test_run_on_leased_gpus_is_refused_and_override_is_audited(db, fleet, tenants):
    validate_all(db, fleet, NOW)
    lease = lease_n1(db, fleet, NOW + 120)
    with pytest.raises(
        LeaseError, match=rf"refused: GPUs leased.*{N1} \(lease {lease.id} globex\)"
    ):
        hold_for_run(db, fleet, [N1], kind="validating", run_id=2, operator=OPERATOR,
                     expected_s=600, now_ts=NOW + 200)  # fmt: skip
    assert state(db, fleet, N1, NOW + 201).state == NodeState.LEASED
    # A reservation starting inside the run's window refuses it too.
    n2 = tuple(parse_slots(["sg1-r01-n02"], fleet))
    request = LeaseRequest("globex", NOW + 500, NOW + HOUR, slots=n2)
    allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW + 150)
    with pytest.raises(LeaseError, match="refused"):
        hold_for_run(db, fleet, ["sg1-r01-n02"], kind="validating", run_id=3,
                     operator=OPERATOR, expected_s=600, now_ts=NOW + 200)  # fmt: skip
    hold_for_run(db, fleet, [N1], kind="validating", run_id=4, operator=OPERATOR,
                 expected_s=600, override_reason="tenant asked for a check",
                 now_ts=NOW + 210)  # fmt: skip
    [entry] = [e for e in audit_entries(db) if e["action"] == "validate.override"]
    assert entry["subject"] == "validation:4"
    assert "tenant asked for a check" in json.dumps(entry["after"])
    assert verify_audit(db).ok


def test_lease_needs_a_recent_pass_or_an_audited_override(db, fleet, tenants):
    validate_all(db, fleet, NOW - 30 * HOUR)  # older than max_age_h = 24
    with pytest.raises(LeaseError, match=r"not validated at quick within 24 h \(last "):
        lease_n1(db, fleet, NOW)
    request = LeaseRequest("globex", NOW, NOW + HOUR, gpus=8)
    with pytest.raises(LeaseError, match="not validated"):
        allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW)
    lease = lease_n1(db, fleet, NOW, override_reason="validated by hand")
    [entry] = [e for e in audit_entries(db) if e["subject"] == f"lease:{lease.id}"]
    after = json.dumps(entry["after"])
    assert "not validated at quick" in after and "validated by hand" in after


def test_placement_prefers_validated_nodes(db, fleet, tenants):
    validate_all(db, fleet, NOW - 30 * HOUR)
    validate_all(db, fleet, NOW, run_id=2, hosts=["sg1-r03-n02", "sg1-r03-n03"])
    request = LeaseRequest("globex", NOW + 120, NOW + HOUR, nodes=2)
    lease = allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=NOW + 120)
    assert lease.hosts == ("sg1-r03-n02", "sg1-r03-n03")


def test_ended_lease_cleans_then_frees(db, fleet, tenants):
    enable_cleaning(db, now_ts=NOW - HOUR)
    validate_all(db, fleet, NOW)
    lease = lease_n1(db, fleet, NOW + 120)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 600)
    s = state(db, fleet, N1, NOW + 601)
    assert s.state == NodeState.CLEANING and f"lease {lease.id}" in s.detail
    assert nodes_to_clean(db, fleet, now_ts=NOW + 601) == [N1]
    with pytest.raises(LeaseError, match="cleaning after lease"):
        lease_n1(db, fleet, NOW + 602, override_reason="cannot skip cleaning")
    hold_for_run(db, fleet, [N1], kind="cleaning", run_id=9, operator=OPERATOR,
                 expected_s=600, now_ts=NOW + 610)  # fmt: skip
    assert nodes_to_clean(db, fleet, now_ts=NOW + 611) == []
    finish_run(db, fleet, 9, "clean", [HostOutcome(N1, "passed")], operator=OPERATOR,
               now_ts=NOW + 640)  # fmt: skip
    assert state(db, fleet, N1, NOW + 641).state == NodeState.FREE
    assert lease_n1(db, fleet, NOW + 650).hosts == (N1,)  # a clean pass counts as quick


def test_a_lease_ending_by_the_clock_also_cleans(db, fleet, tenants):
    enable_cleaning(db, now_ts=NOW - HOUR)
    validate_all(db, fleet, NOW)
    lease = lease_n1(db, fleet, NOW + 120)
    assert state(db, fleet, N1, lease.end_ts - 1).state == NodeState.LEASED
    assert state(db, fleet, N1, lease.end_ts + 1).state == NodeState.CLEANING


def test_failure_drains_with_the_run_as_reason(db, fleet, tenants):
    validate_all(db, fleet, NOW)
    hold_for_run(db, fleet, [N1], kind="validating", run_id=5, operator=OPERATOR,
                 expected_s=600, now_ts=NOW + 100)  # fmt: skip
    why = "ib_write_bw: mlx5_3 181.2 Gb/s, expected >= 360 Gb/s"
    drains = finish_run(db, fleet, 5, "standard", [HostOutcome(N1, "failed", why)],
                        operator=OPERATOR, now_ts=NOW + 200)  # fmt: skip
    s = state(db, fleet, N1, NOW + 201)
    assert s.state == NodeState.FAILED and s.failed_reason == why
    [d] = list_drains(db, now_ts=NOW + 201)
    assert d.id == drains[0] and d.reason.startswith("validation run 5 (standard) failed: ib_")
    with pytest.raises(LeaseError, match=r"drained \(drain"):
        lease_n1(db, fleet, NOW + 300)
    # A later pass clears the failure mark; the drain stays until an operator lifts it.
    validate_all(db, fleet, NOW + 400, run_id=6, hosts=[N1])
    assert state(db, fleet, N1, NOW + 500).state == NodeState.DRAINED


def test_without_validation_config_nothing_changes(db, tmp_path, tenants):
    plain = fleet_from_dict(FLEET, tmp_path / "plain.toml")
    request = LeaseRequest("globex", NOW, NOW + HOUR, slots=tuple(parse_slots([N1], plain)))
    lease = allocate_lease(db, plain, request, operator=OPERATOR, now_ts=NOW)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 60)
    assert state(db, plain, N1, NOW + 61).state == NodeState.FREE


def test_a_cleaning_that_could_not_tell_is_retried_later(db, fleet, tenants):
    enable_cleaning(db, now_ts=NOW - HOUR)
    validate_all(db, fleet, NOW)
    lease = lease_n1(db, fleet, NOW + 120)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 600)
    hold_for_run(db, fleet, [N1], kind="cleaning", run_id=9, operator=OPERATOR,
                 expected_s=600, now_ts=NOW + 610)  # fmt: skip
    finish_run(db, fleet, 9, "clean", [HostOutcome(N1, "error")], operator=OPERATOR,
               now_ts=NOW + 640)  # fmt: skip
    assert state(db, fleet, N1, NOW + 641).state == NodeState.CLEANING
    assert nodes_to_clean(db, fleet, now_ts=NOW + 641) == []
    assert nodes_to_clean(db, fleet, now_ts=NOW + 610 + 121) == [N1]


def test_the_watermark_never_hides_a_node_still_to_clean(db, fleet, tenants):
    from opsconsole.leases.handover import advance_watermark

    enable_cleaning(db, now_ts=NOW - HOUR)
    validate_all(db, fleet, NOW)
    first = lease_n1(db, fleet, NOW + 120)
    release_lease(db, first.id, operator=OPERATOR, now_ts=NOW + 600)
    assert advance_watermark(db, now_ts=NOW + 700) < NOW + 600  # n01 still to clean
    assert nodes_to_clean(db, fleet, now_ts=NOW + 701) == [N1]
    hold_for_run(db, fleet, [N1], kind="cleaning", run_id=9, operator=OPERATOR,
                 expected_s=600, now_ts=NOW + 710)  # fmt: skip
    finish_run(db, fleet, 9, "clean", [HostOutcome(N1, "passed")], operator=OPERATOR,
               now_ts=NOW + 720)  # fmt: skip
    assert advance_watermark(db, now_ts=NOW + 800) == NOW + 800
    second = lease_n1(db, fleet, NOW + 900)
    release_lease(db, second.id, operator=OPERATOR, now_ts=NOW + 1000)
    assert state(db, fleet, N1, NOW + 1001).state == NodeState.CLEANING


def test_a_reservation_after_the_run_or_cleaning_may_have_the_node(db, fleet, tenants):
    enable_cleaning(db, now_ts=NOW - HOUR)
    validate_all(db, fleet, NOW)
    lease = lease_n1(db, fleet, NOW + 120)
    release_lease(db, lease.id, operator=OPERATOR, now_ts=NOW + 600)
    with pytest.raises(LeaseError, match="cleaning after lease"):
        lease_n1(db, fleet, NOW + 610)
    later = LeaseRequest("globex", NOW + 2 * HOUR, NOW + 3 * HOUR,
                         slots=tuple(parse_slots([N1], fleet)))  # fmt: skip
    assert allocate_lease(db, fleet, later, operator=OPERATOR, now_ts=NOW + 610).hosts == (N1,)
