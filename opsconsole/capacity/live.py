"""Live readings for the capacity report, from the decoded samples the collector holds.

Only immutable things are read: a host's status string and its latest `Sample` (the
collector replaces the reference, never mutates the object), so the console can build
these on its UI thread while the poller runs on another. Error-counter rates are worked
out here, between two looks at a port's raw counters (`PortErrorRates`), rather than
read from the collector's own rate windows, which the poller mutates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from opsconsole.capacity.inputs import HostReadings, PortReading, Readings
from opsconsole.collect.state import FleetState
from opsconsole.leases.booking import SlotHealth
from opsconsole.wire import Sample

LIVE = "live"


class PortErrorRates:
    """Remembers each port's summed error counters and the sample time they were read at;
    `rate()` gives the increase per second since the previous look at an older sample.
    A counter that went backwards (reset, reboot) restarts the port's baseline."""

    def __init__(self, counters: Sequence[str]):
        self.counters = tuple(counters)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._rates: dict[tuple[str, str], float] = {}

    def rate(self, host: str, port: str, ts: float, counters: dict[str, int]) -> float | None:
        total = sum(int(counters.get(name, 0)) for name in self.counters)
        key = (host, port)
        previous = self._seen.get(key)
        if previous is None or ts < previous[0] or total < previous[1]:
            self._seen[key] = (ts, total)
            self._rates.pop(key, None)
            return None
        if ts == previous[0]:  # the same sample again: keep the last rate
            return self._rates.get(key)
        rate = (total - previous[1]) / (ts - previous[0])
        self._seen[key] = (ts, total)
        self._rates[key] = rate
        return rate


def host_readings(
    status: str, sample: Sample | None, rates: PortErrorRates | None, host: str
) -> HostReadings:
    """Power and ports of one host. Nothing of a host that is not fresh counts as live."""
    if status != "fresh" or sample is None:
        return HostReadings(status, None, 0, None)
    powers = [g.power_w for g in sample.gpus if g.power_w is not None]
    ports = []
    for port in sample.ib:
        name = f"{port.device}/{port.port}"
        errors = rates.rate(host, name, sample.ts, port.counters) if rates is not None else None
        ports.append(PortReading(name, port.state, port.rate_gbps, errors))
    return HostReadings(status, sum(powers) if powers else None, len(powers), tuple(ports))


def live_readings(
    hosts: Iterable[tuple[str, str, Sample | None]],
    rates: PortErrorRates | None,
    node_power_w: Mapping[str, float] | None = None,
) -> Readings:
    """From (host name, status, latest sample) for every host, and the node power read
    from BMCs by a collector plugin where there is one (`node_power_from_state`)."""
    out = {name: host_readings(status, sample, rates, name) for name, status, sample in hosts}
    for name, watts in (node_power_w or {}).items():
        reading = out.get(name)
        if reading is not None and reading.status == "fresh":
            out[name] = dataclasses.replace(reading, node_power_w=watts)
    known = rates is not None and any(
        p.errors_per_s is not None for h in out.values() for p in h.ports or ()
    )
    return Readings(out, LIVE, LIVE, known)


def node_power_from_state(state: FleetState) -> dict[str, float]:
    """BMC node power of the fresh hosts of a `FleetState` (duck-typed)."""
    out: dict[str, float] = {}
    for name, h in state.hosts.items():
        watts = getattr(h, "node_power_w", None)
        if watts is not None:
            out[name] = watts
    return out


def state_hosts(state: FleetState) -> list[tuple[str, str, Sample | None]]:
    """(name, status, sample) of every host of a `FleetState` (duck-typed)."""
    return [(name, h.status, h.sample) for name, h in state.hosts.items()]


def health_from_samples(
    hosts: Iterable[tuple[str, str, Sample | None]], expected_gpus: dict[str, int]
) -> dict[object, str]:
    """Live health in the leases layer's words: a down host is "down"; on a fresh host a
    GPU that is not "ok", or one the sample lacks, is "critical". Stale and pending hosts
    are left out: "cannot see it" is not "broken"."""
    health: dict[object, str] = {}
    for name, status, sample in hosts:
        if status == "down":
            health[name] = SlotHealth.DOWN
            continue
        if status != "fresh" or sample is None:
            continue
        seen = set()
        for gpu in sample.gpus:
            seen.add(gpu.index)
            if gpu.state != "ok":
                health[(name, gpu.index)] = SlotHealth.CRITICAL
        for index in range(expected_gpus.get(name, 0)):
            if index not in seen:
                health[(name, index)] = SlotHealth.CRITICAL
    return health
