"""Placement invariants over generated fleets and occupancy: chosen slots are free and
distinct, counts are exact, whole-node requests get whole free nodes, partial requests
use the fewest nodes possible, and a refusal means the capacity really is not there."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole.errors import LeaseError
from opsconsole.leases.placement import (
    PlacementHost,
    free_map,
    place_gpus,
    place_nodes,
    place_request,
)
from tests.support.profiles import examples


@st.composite
def fleets(draw) -> list[PlacementHost]:
    """1-3 sites, racks spread over leaves (some with no known leaf), 2/4/8-GPU hosts, and
    one GPU model per rack (sometimes unknown)."""
    hosts = []
    for site in range(draw(st.integers(1, 3))):
        for rack in range(draw(st.integers(1, 4))):
            leaf = draw(st.sampled_from([None, f"s{site}-leaf0", f"s{site}-leaf1"]))
            size = draw(st.sampled_from([8, 8, 8, 4, 2]))
            model = draw(st.sampled_from(["H200", "H200", "B200", None]))
            for node in range(draw(st.integers(1, 6))):
                name = f"s{site}-r{rack}-n{node}"
                hosts.append(PlacementHost(name, f"S{site}", f"s{site}-r{rack}", leaf, size, model))
    return hosts


@st.composite
def occupancy(draw, hosts: list[PlacementHost]) -> dict[str, set[int]]:
    """Random GPUs already leased, drained or unhealthy."""
    taken: dict[str, set[int]] = {}
    for host in hosts:
        mode = draw(st.sampled_from(["free", "full", "some"]))
        if mode == "full":
            taken[host.name] = set(range(host.gpus))
        elif mode == "some":
            taken[host.name] = set(draw(st.sets(st.integers(0, host.gpus - 1))))
    return taken


scenarios = fleets().flatmap(lambda hosts: st.tuples(st.just(hosts), occupancy(hosts)))


def _check_slots(placement, hosts, taken) -> None:
    by_name = {h.name: h for h in hosts}
    assert len(set(placement.slots)) == len(placement.slots)  # no slot twice
    for slot in placement.slots:
        assert slot.host in by_name
        assert 0 <= slot.gpu_index < by_name[slot.host].gpus
        assert slot.gpu_index not in taken.get(slot.host, set())  # never overlaps
    assert placement.explanation and "\n" not in placement.explanation


@settings(max_examples=examples(300), deadline=None)
@given(scenarios, st.integers(1, 80))
def test_gpu_requests_are_exact_free_and_on_the_fewest_nodes(scenario, gpus):
    hosts, taken = scenario
    free = free_map(hosts, taken)
    total = sum(len(v) for v in free.values())
    try:
        placement = place_gpus(free, gpus)
    except LeaseError as exc:
        assert total < gpus  # refused only when the GPUs are not there
        assert f"only {total} free" in str(exc)
        return
    _check_slots(placement, hosts, taken)
    assert len(placement.slots) == gpus
    counts = sorted((len(v) for v in free.values()), reverse=True)
    fewest = next(k for k in range(1, len(counts) + 1) if sum(counts[:k]) >= gpus)
    assert len(placement.hosts) == fewest


@settings(max_examples=examples(300), deadline=None)
@given(scenarios, st.integers(1, 12))
def test_node_requests_get_whole_free_nodes(scenario, nodes):
    hosts, taken = scenario
    free = free_map(hosts, taken)
    whole = [h for h in hosts if not taken.get(h.name)]
    try:
        placement = place_nodes(free, nodes)
    except LeaseError:
        assert len(whole) < nodes
        return
    _check_slots(placement, hosts, taken)
    assert len(placement.hosts) == nodes
    per_host = Counter(slot.host for slot in placement.slots)
    by_name = {h.name: h for h in hosts}
    assert all(n == by_name[name].gpus for name, n in per_host.items())  # every GPU of each


@settings(max_examples=examples(200), deadline=None)
@given(scenarios, st.integers(1, 8))
def test_topology_one_rack_when_a_rack_can_take_it(scenario, nodes):
    hosts, taken = scenario
    free = free_map(hosts, taken)
    try:
        placement = place_nodes(free, nodes)
    except LeaseError:
        return
    whole_per_rack = Counter(h.rack for h in hosts if not taken.get(h.name))
    racks_used = {slot.host.rsplit("-", 1)[0] for slot in placement.slots}
    if max(whole_per_rack.values()) >= nodes:
        assert len(racks_used) == 1
        # best fit: no rack that fits has fewer whole nodes free than the one chosen
        (rack,) = racks_used
        assert whole_per_rack[rack] == min(n for n in whole_per_rack.values() if n >= nodes)


@settings(max_examples=examples(200), deadline=None)
@given(scenarios, st.integers(1, 7))
def test_small_requests_keep_whole_nodes_free_when_a_part_used_node_fits(scenario, gpus):
    hosts, taken = scenario
    free = free_map(hosts, taken)
    part_used_fits = [h for h, idx in free.items() if h.gpus > len(idx) >= gpus]
    if not part_used_fits:
        return
    placement = place_gpus(free, gpus)
    (host_name,) = placement.hosts
    chosen = next(h for h in free if h.name == host_name)
    assert chosen in part_used_fits  # no whole node broken while a part-used one fits
    assert len(free[chosen]) == min(len(free[h]) for h in part_used_fits)  # best fit


@settings(max_examples=examples(200), deadline=None)
@given(scenarios, st.integers(1, 40), st.booleans())
def test_a_placed_lease_takes_one_gpu_model(scenario, count, whole):
    hosts, taken = scenario
    kwargs = {"nodes": max(1, count // 8)} if whole else {"gpus": count}
    try:
        placement = place_request(hosts, taken, **kwargs)
    except LeaseError as exc:
        assert "\n" not in str(exc)
        return
    _check_slots(placement, hosts, taken)
    by_name = {h.name: h for h in hosts}
    assert len({by_name[name].model for name in placement.hosts}) == 1


def _fits_in_one_rack(hosts, taken, gpus: int | None, nodes: int | None) -> bool:
    """Brute force, independent of placement: some rack holds the request on one model."""
    free = free_map(hosts, taken)
    pools: dict[tuple, list] = {}
    for host, idx in free.items():
        pools.setdefault((host.rack, host.model or "unknown model"), []).append((host, idx))
    for members in pools.values():
        if nodes is not None:
            if sum(1 for h, idx in members if len(idx) == h.gpus) >= nodes:
                return True
        elif sum(len(idx) for _h, idx in members) >= gpus:
            return True
    return False


@settings(max_examples=examples(300), deadline=None)
@given(scenarios, st.integers(1, 40), st.booleans())
def test_rack_locality_keeps_every_slot_in_one_rack_and_never_refuses_a_fit(scenario, count, whole):
    hosts, taken = scenario
    gpus, nodes = (None, max(1, count // 8)) if whole else (count, None)
    fits = _fits_in_one_rack(hosts, taken, gpus, nodes)
    try:
        placement = place_request(hosts, taken, gpus=gpus, nodes=nodes, locality="rack")
    except LeaseError as exc:
        assert not fits, f"refused a rack-feasible request: {exc}"
        assert "\n" not in str(exc)
        return
    assert fits
    _check_slots(placement, hosts, taken)
    by_name = {h.name: h for h in hosts}
    assert len({by_name[name].rack for name in placement.hosts}) == 1
    assert len(placement.slots) == (
        gpus if nodes is None else sum(by_name[name].gpus for name in placement.hosts)
    )


@settings(max_examples=examples(200), deadline=None)
@given(scenarios, st.integers(1, 40))
def test_leaf_and_node_locality_stay_within_one_group(scenario, gpus):
    hosts, taken = scenario
    by_name = {h.name: h for h in hosts}
    for level in ("leaf", "node"):
        try:
            placement = place_request(hosts, taken, gpus=gpus, locality=level)
        except LeaseError as exc:
            assert f"within one {level}" in str(exc) or "only" in str(exc)
            continue
        assert len(placement.slots) == gpus
        assert len({by_name[name].group(level) for name in placement.hosts}) == 1


def test_a_refusal_names_the_largest_placement_at_that_level():
    hosts = [
        PlacementHost(f"r{r}-n{n}", "S0", f"r{r}", "leaf0", 8, "H200")
        for r in range(2)
        for n in range(2)
    ]
    taken = {"r0-n0": {0, 1, 2}}
    with pytest.raises(LeaseError) as exc:
        place_request(hosts, taken, gpus=20, locality="rack")
    assert str(exc.value) == (
        "cannot place 20 GPU(s) within one rack: at most 16 free in one rack (rack r1: r1-n[0-1])"
    )
    with pytest.raises(LeaseError, match=r"at most 8 free in one node \(r0-n1\)"):
        place_request(hosts, taken, gpus=9, locality="node")
    with pytest.raises(LeaseError, match=r"at most 1 whole node\(s\) free in one rack \(rack r0"):
        place_request(hosts, {"r1-n0": {0}, **taken}, nodes=2, locality="rack")


def test_rack_locality_uses_more_nodes_when_only_that_fits_in_one_rack():
    hosts = [
        PlacementHost(f"r{r}-n{n}", "S0", f"r{r}", "leaf0", 8, "H200")
        for r in range(2)
        for n in range(3)
    ]
    # free: 6, 4, 4 in each rack; 12 GPUs take 2 nodes (6 + 6) only across the racks
    taken = {f"r{r}-n{n}": set(range(2 if n == 0 else 4)) for r in range(2) for n in range(3)}
    assert len(place_request(hosts, taken, gpus=12).hosts) == 2
    placement = place_request(hosts, taken, gpus=12, locality="rack")
    assert len(placement.slots) == 12 and len(placement.hosts) == 3
    assert len({name.split("-")[0] for name in placement.hosts}) == 1
    assert "in rack r0" in placement.explanation
