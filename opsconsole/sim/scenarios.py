"""Named stories the simulated fleet can tell, each driven by the time since the fleet
started: which hosts it touches is drawn once from the seed, and what is wrong with them
at a given second is a pure function of that draw and the elapsed time, so a console that
reconnects mid-scenario sees the same world as one that watched from the start.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

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
    rack_budgets_kw: tuple[tuple[str, float | None], ...] = ()
    """Racks whose power_budget_kw in the simulator's config.toml is not the usual one:
    (rack, kW), None for no budget at all."""
    capacity_settings: tuple[tuple[str, float], ...] = ()
    """`[capacity]` keys the simulator's config.toml sets (to show a finding sooner)."""
    validation_settings: tuple[tuple[str, object], ...] = ()
    """`[validation]` keys the simulator's config.toml sets (required level, cleaning)."""


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


# The capacity scenario: fixed hosts of the default 64-host demo fleet (SG1, racks r01-r04
# on sg1-leaf-01), so the demo's leases (`opsconsole.cli.demo`) land on the same ones.
# Hosts a smaller fleet lacks are skipped.
def rack_nodes(rack: str, first: int, last: int) -> tuple[str, ...]:
    """Nodes first to last of a rack as the simulator names them: sg1-r02-n01, …"""
    return tuple(f"{rack}-n{i:02d}" for i in range(first, last + 1))


CAPACITY_FULL_LOAD = rack_nodes("sg1-r01", 1, 16)
"""Every GPU of rack r01 trains flat out: the rack draws over its budget, GPUs power-cap."""
CAPACITY_IDLE = rack_nodes("sg1-r02", 9, 12)
"""A tenant's job ended but the lease runs on: leased GPUs idle."""
CAPACITY_IB_DEGRADED = dict.fromkeys(
    rack_nodes("sg1-r02", 5, 8) + rack_nodes("sg1-r03", 1, 2), "mlx5_1"
)
"""Optics going bad under two tenants' leases on sg1-leaf-01: half rate, symbol errors."""
CAPACITY_IB_DOWN = {"sg1-r02-n05": "mlx5_3"}
CAPACITY_RACK_BUDGETS_KW = (("sg1-r01", 96.0), ("sg1-r04", None))
"""r01's feed is derated to 96 kW: flat out it draws about 114 kW, and even with a few of
its nodes in a checkpoint dip at once never under 100 kW. r04 has no budget set."""
CAPACITY_SETTINGS = (("idle_hours", 0.05), ("idle_min_coverage", 0.3))
"""The demo's idle window: 3 minutes with one minute of readings (instead of hours), so
idle leased GPUs show a few minutes after it starts."""


def _capacity_hosts(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    names = {h.name for h in hosts}
    picks: dict[str, list[Any]] = {}
    for name in CAPACITY_FULL_LOAD:
        picks.setdefault(name, []).append(("full_load", {}))
    for name in CAPACITY_IDLE:
        picks.setdefault(name, []).append(("job_ended", {}))
    for name, port in CAPACITY_IB_DEGRADED.items():
        picks.setdefault(name, []).append(("ib_degraded", {"port": port}))
    for name, port in CAPACITY_IB_DOWN.items():
        picks.setdefault(name, []).append(("ib_port_down", {"port": port}))
    return {
        name: {"faults": faults, "onset_s": ONSET_S}
        for name, faults in picks.items()
        if name in names
    }


def _capacity(params: dict[str, Any], elapsed_s: float) -> FaultList:
    return list(params["faults"]) if elapsed_s >= params["onset_s"] else []


# The incident scenario, for watching alerts: a few faults on fixed hosts of the demo
# fleet that start and clear on an 8-minute cycle, so within a few minutes a new user sees
# alerts fire, can acknowledge and silence them, and watches condition alerts resolve on
# their own while the XID waits for a person (and comes back as #2 the next cycle).
INCIDENT_PERIOD_S = 480.0
INCIDENT_FAULTS: tuple[tuple[str, str, dict[str, Any], float, float], ...] = (
    # host, fault, parameters, on and off (seconds into each cycle)
    ("sg1-r01-n01", "xid79", {"gpu": 3}, 0.0, 240.0),
    ("sg1-r01-n02", "full_load", {}, 0.0, INCIDENT_PERIOD_S),  # busy, so it heats up
    ("sg1-r01-n02", "thermal_runaway", {}, 20.0, 200.0),
    ("sg1-r02-n03", "ib_port_down", {"port": "mlx5_2"}, 40.0, 160.0),
    ("sg1-r02-n04", "nvlink_down", {"gpu": 1, "link": 4}, 60.0, 180.0),
)
INCIDENT_LEASES = (("aurora-labs", ("sg1-r01-n01", "sg1-r01-n02")),
                   ("kestrel-ai", ("sg1-r02-n03", "sg1-r02-n04")))  # fmt: skip
"""Who the demo leases the faulty hosts to, so every alert names a tenant."""


def _incident_hosts(hosts: Sequence[SimHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    names = {h.name for h in hosts}
    picks: dict[str, dict[str, Any]] = {}
    for host, fault, params, on_s, off_s in INCIDENT_FAULTS:
        if host in names:
            picks.setdefault(host, {"faults": []})["faults"].append((fault, params, on_s, off_s))
    return picks


def _incident(params: dict[str, Any], elapsed_s: float) -> FaultList:
    if elapsed_s < ONSET_S:
        return []
    into_cycle = (elapsed_s - ONSET_S) % INCIDENT_PERIOD_S
    return [(f, dict(p)) for f, p, on_s, off_s in params["faults"] if on_s <= into_cycle < off_s]


HANDOVER_FAULTS = (
    ("ib_slow", {"port": "mlx5_3"}),
    ("hbm_fail", {"gpu": 5}),
    ("dirty_node", {"gpu": 2}),
    ("nvlink_slow", {"gpu": 6}),
)
HANDOVER_SETTINGS: tuple[tuple[str, object], ...] = (
    ("required_level", "quick"),
    ("max_age_h", 24.0),
    ("clean_after_lease", True),
    # Scheduled standard checks every 6 minutes (weekly on a real fleet), a quarter of a
    # rack at a time: they find the HBM fault and the slow NVLinks within a minute or two.
    ("schedule", {"enabled": True, "level": "standard", "every_h": 0.1}),
)


class RackedHost(Protocol):
    """What picking handover hosts reads: a simulated host or a configured one."""

    @property
    def name(self) -> str: ...
    @property
    def rack(self) -> str: ...


def handover_hosts(hosts: Sequence[RackedHost], rng: random.Random) -> dict[str, dict[str, Any]]:
    """One fault each on the last node of the first racks (the one before it when there
    are fewer racks than faults); `opsconsole demo` leases none of these at the start."""
    racks = sorted({h.rack for h in hosts})
    members = {rack: [h for h in hosts if h.rack == rack] for rack in racks}
    picked = {}
    for i, (fault, params) in enumerate(HANDOVER_FAULTS):
        rack = members[racks[i % len(racks)]]
        position = len(rack) - 1 - i // len(racks)
        if position >= 0:
            picked[rack[position].name] = {"fault": (fault, params)}
    return picked


def _handover(params: dict[str, Any], elapsed_s: float) -> FaultList:
    """From the usual onset: the demo's first validation finds a healthy fleet, and the
    faults appear later, as they do, where only an active check will see them."""
    if elapsed_s < ONSET_S:
        return []
    fault, kw = params["fault"]
    return [(fault, dict(kw))]


SCENARIOS: dict[str, Scenario] = {
    "calm": Scenario("no faults: workloads, diurnal load and noise only", _none, _no_faults),
    "thermal-runaway": Scenario("cooling fails along one rack", _one_rack, _thermal),
    "xid79": Scenario("one GPU of one node falls off the bus", _one_node_xid79, _xid79),
    "fabric-degradation": Scenario("InfiniBand links of one leaf degrade", _one_leaf, _fabric),
    "host-flapping": Scenario("one host toggles unreachable every 30 s", _one_host, _flapping),
    "incident": Scenario(
        "for alerts: an XID 79, a hot node, an IB port and an NVLink down, clearing and"
        " returning every 8 minutes (with `opsconsole demo`: on leased hosts)",
        _incident_hosts,
        _incident,
    ),
    "capacity": Scenario(
        "capacity bottlenecks: a rack over its power budget, degraded IB under two tenants,"
        " idle leased GPUs (with `opsconsole demo`: scattered free GPUs, an over-committed day)",
        _capacity_hosts,
        _capacity,
        rack_budgets_kw=CAPACITY_RACK_BUDGETS_KW,
        capacity_settings=CAPACITY_SETTINGS,
    ),
    "handover": Scenario(
        "faults only active validation finds: a slow IB port (mlx5_3), an HBM fault, a"
        " leftover process that survives kill, a GPU's NVLinks at half speed; leases need a"
        " quick pass within 24 h and ended leases are cleaned",
        handover_hosts,
        _handover,
        validation_settings=HANDOVER_SETTINGS,
    ),
}
