"""Scheduled checks: due nodes, oldest first, never more than a share of a rack or leaf."""

from __future__ import annotations

from opsconsole.config import fleet_from_dict
from opsconsole.leases.handover import NodeHandover, NodeState
from opsconsole.validate.schedule import due_for_schedule, share_limit
from opsconsole.validate.settings import validation_settings

NOW = 1_800_000_000.0
WEEK = 7 * 86_400.0


def make_fleet(tmp_path, **schedule):
    raw = {
        "sites": [{"name": "SG1"}],
        "racks": [
            {"names": "r[1-2]", "site": "SG1", "leaf": "leaf-a"},
            {"names": "r3", "site": "SG1", "leaf": "leaf-b"},
        ],
        "host_classes": {"h200": {"gpus": 8}},
        "hosts": [
            {"names": "r1-n[1-8]", "rack": "r1", "class": "h200"},
            {"names": "r2-n[1-8]", "rack": "r2", "class": "h200"},
            {"names": "r3-n[1-4]", "rack": "r3", "class": "h200"},
        ],
        "validation": {"schedule": {"enabled": True, "every_h": 168.0, **schedule}},
    }
    return fleet_from_dict(raw, tmp_path / "c.toml")


def states(fleet, passed_ts=None, **special):
    out = {}
    for host in fleet.hosts:
        state = special.get(host.name.replace("-", "_"), NodeState.FREE)
        passes = {} if passed_ts is None else {"standard": passed_ts}
        out[host.name] = NodeHandover(host.name, state, passes=passes)
    return out


def test_share_limit_is_at_least_one():
    assert share_limit(8, 0.25) == 2 and share_limit(3, 0.25) == 1


def test_due_nodes_respect_rack_and_leaf_shares(tmp_path):
    fleet = make_fleet(tmp_path, max_share_per_rack=0.25, max_share_per_leaf=0.25)
    picked = due_for_schedule(fleet, states(fleet), validation_settings(fleet), NOW)
    racks = [name.split("-")[0] for name in picked]
    # leaf-a (16 nodes) allows 4 at once, each rack 2; r3 (leaf-b, 4 nodes) allows 1.
    assert racks.count("r1") == 2 and racks.count("r2") == 2 and racks.count("r3") == 1


def test_nodes_already_under_test_count_against_the_share(tmp_path):
    fleet = make_fleet(tmp_path, max_share_per_rack=0.25, max_share_per_leaf=1.0)
    busy = states(fleet, r1_n1=NodeState.VALIDATING, r1_n2=NodeState.CLEANING)
    picked = due_for_schedule(fleet, busy, validation_settings(fleet), NOW)
    assert not any(name.startswith("r1-") for name in picked)


def test_recent_pass_leased_and_drained_nodes_are_not_due(tmp_path):
    fleet = make_fleet(tmp_path, max_share_per_rack=1.0, max_share_per_leaf=1.0)
    fresh = states(fleet, passed_ts=NOW - WEEK + 3600, r3_n1=NodeState.LEASED)
    assert due_for_schedule(fleet, fresh, validation_settings(fleet), NOW) == []
    stale = states(fleet, passed_ts=NOW - WEEK - 1, r3_n1=NodeState.LEASED, r3_n2=NodeState.DRAINED)
    picked = due_for_schedule(fleet, stale, validation_settings(fleet), NOW)
    assert "r3-n1" not in picked and "r3-n2" not in picked and len(picked) == 18


def test_schedule_off_picks_nothing(tmp_path):
    fleet = make_fleet(tmp_path, enabled=False)
    assert due_for_schedule(fleet, states(fleet), validation_settings(fleet), NOW) == []


def test_capacity_counts_nodes_in_handover_apart(tmp_path):
    from opsconsole.capacity.report import handover_counts

    fleet = make_fleet(tmp_path)
    node_states = states(
        fleet, r1_n1=NodeState.VALIDATING, r1_n2=NodeState.CLEANING, r3_n4=NodeState.FAILED,
        r2_n1=NodeState.LEASED,
    )  # fmt: skip
    counts = handover_counts(fleet, node_states, None)
    assert counts == {"SG1": {"validating": 1, "cleaning": 1, "failed-validation": 1}}
