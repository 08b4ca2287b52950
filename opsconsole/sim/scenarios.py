"""Named stories the simulated fleet can tell, each driven by the time since the fleet
started: which hosts it touches is drawn once from the seed, and what is wrong with them
at a given second is a pure function of that draw and the elapsed time, so a console that
reconnects mid-scenario sees the same world as one that watched from the start.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsconsole.sim.hardware import IB_DEVICES

if TYPE_CHECKING:
    from opsconsole.sim.world import SimHost

ONSET_S = 30.0
"""Scenarios start this long after the fleet does, so the console first sees a calm fleet."""
FLAP_PERIOD_S = 30.0

FaultList = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Scenario:
    description: str
    pick: Callable[[Sequence[SimHost], random.Random], dict[str, dict[str, Any]]]
    """Choose the hosts involved and each one's parameters: {host name: params}."""
    faults_at: Callable[[dict[str, Any], float], FaultList]
    """The faults a chosen host has at elapsed_s after the start."""


def _none(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    return {}


def _no_faults(params: dict[str, Any], elapsed_s: float) -> FaultList:
    return []


def _one_rack(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    rack = rng.choice(sorted({h.rack for h in hosts}))
    members = [h for h in hosts if h.rack == rack]
    # The cooling failure spreads along the rack, one host every few seconds.
    return {h.name: {"onset_s": ONSET_S + 4.0 * i} for i, h in enumerate(members)}


def _thermal(params: dict[str, Any], elapsed_s: float) -> FaultList:
    return [("thermal_runaway", {})] if elapsed_s >= params["onset_s"] else []


def _one_node_xid79(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    host = rng.choice(list(hosts))
    return {host.name: {"gpu": rng.randrange(len(host.gpus)), "onset_s": ONSET_S}}


def _xid79(params: dict[str, Any], elapsed_s: float) -> FaultList:
    return [("xid79", {"gpu": params["gpu"]})] if elapsed_s >= params["onset_s"] else []


def _one_leaf(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    """Optics on one leaf switch going bad: every host's link to it degrades to half rate
    over a couple of minutes, and every fourth host loses a port outright later on."""
    leaf = rng.choice(sorted({h.leaf for h in hosts}))
    members = [h for h in hosts if h.leaf == leaf]
    picks = {}
    for i, host in enumerate(members):
        degraded = rng.choice(IB_DEVICES)
        down = rng.choice([d for d in IB_DEVICES if d != degraded]) if i % 4 == 0 else None
        picks[host.name] = {
            "degraded_port": degraded,
            "degraded_onset_s": ONSET_S + rng.uniform(0, 120),
            "down_port": down,
            "down_onset_s": ONSET_S + 90 + rng.uniform(0, 120),
        }
    return picks


def _fabric(params: dict[str, Any], elapsed_s: float) -> FaultList:
    faults: FaultList = []
    if elapsed_s >= params["degraded_onset_s"]:
        faults.append(("ib_degraded", {"port": params["degraded_port"]}))
    if params["down_port"] and elapsed_s >= params["down_onset_s"]:
        faults.append(("ib_port_down", {"port": params["down_port"]}))
    return faults


def _one_host(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    return {rng.choice(list(hosts)).name: {"onset_s": ONSET_S}}


def _flapping(params: dict[str, Any], elapsed_s: float) -> FaultList:
    """Unreachable for FLAP_PERIOD_S, reachable for FLAP_PERIOD_S, and so on."""
    if elapsed_s < params["onset_s"]:
        return []
    down = int((elapsed_s - params["onset_s"]) // FLAP_PERIOD_S) % 2 == 0
    return [("host_unreachable", {})] if down else []


SCENARIOS: dict[str, Scenario] = {
    "calm": Scenario("no faults: workloads, diurnal load and noise only", _none, _no_faults),
    "thermal-runaway": Scenario("cooling fails along one rack", _one_rack, _thermal),
    "xid79": Scenario("one GPU of one node falls off the bus", _one_node_xid79, _xid79),
    "fabric-degradation": Scenario("InfiniBand links of one leaf degrade", _one_leaf, _fabric),
    "host-flapping": Scenario("one host toggles unreachable every 30 s", _one_host, _flapping),
}
