"""Rack power against its budget, and the share of GPU-time spent in power-cap or thermal
clock events, per rack.

Measured rack power is the GPUs' own power plus the rack's configured per-host overhead
(CPUs, NICs, fans), for the hosts that reported; a rack where some hosts did not report
shows the partial sum and says so, since a lower bound over budget is still over. The
clock-event shares come from the minute rollups (`clock_event_share_power` counts SW power
cap, HW power brake and HW slowdown without HW thermal; `_thermal` SW and HW thermal),
weighted by how many samples had known reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opsconsole.capacity.inputs import ClockEvents, Readings
from opsconsole.capacity.model import NO_BUDGET, NO_DATA, RackPower
from opsconsole.config import Host, Rack


def rack_power_rows(
    hosts: Sequence[Host],
    racks: Mapping[str, Rack],
    readings: Readings,
    clock_events: Mapping[str, ClockEvents],
) -> list[RackPower]:
    rows = []
    for rack_name in dict.fromkeys(h.rack for h in hosts):
        rack = racks[rack_name]
        members = [h for h in hosts if h.rack == rack_name]
        total_w, reporting = 0.0, 0
        for host in members:
            reading = readings.hosts.get(host.name)
            if reading is not None and reading.node_power_w is not None:
                reporting += 1
                total_w += reading.node_power_w  # measured at the BMC: overhead included
                continue
            if reading is None or reading.gpu_power_w is None:
                continue
            reporting += 1
            total_w += reading.gpu_power_w + rack.host_overhead_w
        measured_kw = total_w / 1000.0 if reporting else None
        notes = []
        if rack.power_budget_kw is None:
            notes.append(NO_BUDGET)
        if measured_kw is None:
            notes.append(f"{NO_DATA} ({readings.power_source})")
        elif reporting < len(members):
            notes.append(f"partial: {reporting} of {len(members)} hosts reporting")
        use_pct = None
        if measured_kw is not None and rack.power_budget_kw:
            use_pct = 100.0 * measured_kw / rack.power_budget_kw
        samples = power = thermal = 0.0
        for host in members:
            events = clock_events.get(host.name)
            if events is not None:
                samples += events.samples
                power += events.power_samples
                thermal += events.thermal_samples
        if not samples:
            notes.append(f"clock events: {NO_DATA}")
        rows.append(
            RackPower(
                rack=rack_name,
                site=rack.site,
                leaf=rack.leaf,
                hosts=len(members),
                hosts_reporting=reporting,
                measured_kw=measured_kw,
                budget_kw=rack.power_budget_kw,
                use_pct=use_pct,
                power_cap_share_pct=100.0 * power / samples if samples else None,
                thermal_share_pct=100.0 * thermal / samples if samples else None,
                source=readings.power_source,
                note=", ".join(notes),
            )
        )
    return rows
