"""InfiniBand ports that hold jobs back, grouped by the leaf switch they hang off, with the
tenants whose leases hold GPUs behind them.

A port is an issue when it is not ACTIVE, trained below the host class's `ib_rate_gbps`,
its summed error counters rise faster than `[capacity] ib_errors_per_s`, or the host
reports fewer ports than its class expects. Live readings judge all four; without them
only the stored `link_down` events are known, and the report says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from opsconsole.capacity.inputs import PortReading, Readings
from opsconsole.capacity.model import LeafFabric, PortIssue
from opsconsole.capacity.occupancy import placement_host
from opsconsole.config import Host
from opsconsole.leases.reader import Booking


def port_issues(
    host: Host, ports: Sequence[PortReading], errors_per_s_max: float, live: bool
) -> list[PortIssue]:
    out = []
    expected = host.expected_ib_rate_gbps
    for port in ports:
        state = (port.state or "").upper()
        if port.state is not None and state != "ACTIVE":
            out.append(PortIssue(host.name, host.rack, port.port, "down", port.detail or state))
            continue
        if expected is not None and port.rate_gbps is not None and port.rate_gbps < expected:
            out.append(
                PortIssue(
                    host.name,
                    host.rack,
                    port.port,
                    "below rate",
                    f"{port.rate_gbps:g} of {expected:g} Gb/s",
                    rate_gbps=port.rate_gbps,
                    expected_rate_gbps=expected,
                )
            )
        if port.errors_per_s is not None and port.errors_per_s > errors_per_s_max:
            out.append(
                PortIssue(
                    host.name,
                    host.rack,
                    port.port,
                    "errors",
                    f"{port.errors_per_s:.2f} errors/s",
                    errors_per_s=port.errors_per_s,
                )
            )
    if live and host.expected_ib_ports is not None and len(ports) < host.expected_ib_ports:
        missing = host.expected_ib_ports - len(ports)
        out.append(
            PortIssue(
                host.name,
                host.rack,
                "-",
                "missing",
                f"{len(ports)} of {host.expected_ib_ports} ports reported ({missing} missing)",
            )
        )
    return out


def leaf_fabric_rows(
    hosts: Sequence[Host],
    readings: Readings | None,
    stored_link_down: Mapping[str, tuple[PortReading, ...]],
    holders: Mapping[tuple[str, int], Booking],
    errors_per_s_max: float,
) -> list[LeafFabric]:
    """One row per leaf switch (racks without a leaf are their own), config order."""
    live = readings is not None
    by_leaf: dict[str, list[Host]] = defaultdict(list)
    for host in hosts:
        by_leaf[placement_host(host).group("leaf")].append(host)
    held_by_host: dict[str, list[Booking]] = defaultdict(list)
    for (holder_host, _index), booking in holders.items():
        held_by_host[holder_host].append(booking)
    rows = []
    for leaf, members in by_leaf.items():
        issues: list[PortIssue] = []
        unknown = 0
        for host in members:
            if readings is not None:
                reading = readings.hosts.get(host.name)
                if reading is None or reading.ports is None:
                    unknown += 1
                    continue
                ports = reading.ports
            else:
                unknown += 1  # only link_down events are known; rates and errors are not
                ports = stored_link_down.get(host.name, ())
            issues.extend(port_issues(host, ports, errors_per_s_max, live))
        affected_hosts = {i.host for i in issues}
        bookings = [b for h in sorted(affected_hosts) for b in held_by_host.get(h, ())]
        gpus = sum(h.expected_gpus for h in members if h.name in affected_hosts)
        rows.append(
            LeafFabric(
                leaf=leaf,
                site=members[0].site,
                hosts=len(members),
                hosts_unknown=unknown,
                ports_down=sum(1 for i in issues if i.problem in ("down", "missing")),
                ports_below_rate=sum(1 for i in issues if i.problem == "below rate"),
                ports_with_errors=sum(1 for i in issues if i.problem == "errors"),
                issues=tuple(issues),
                tenants=tuple(sorted({b.tenant for b in bookings})),
                leases=tuple(sorted({b.lease_id for b in bookings})),
                affected_gpus=gpus,
            )
        )
    return rows
