"""Capacity: what limits the fleet now and in the coming weeks, ranked, with the why.

Plain functions over plain data (config, leases tables, minute rollups, live samples);
no Textual, so `opsconsole capacity` and the console's Capacity screen share every
figure. See ARCHITECTURE.md, "Capacity".
"""

from opsconsole.capacity.inputs import Readings, StoreFacts, read_store
from opsconsole.capacity.live import (
    PortErrorRates,
    live_readings,
    node_power_from_state,
    state_hosts,
)
from opsconsole.capacity.model import (
    Bottleneck,
    CapacityReport,
    LeafFabric,
    Occupancy,
    RackPower,
    RunwaySeries,
    Target,
    TenantIdle,
)
from opsconsole.capacity.report import build_report, capacity_report, resolve_site
from opsconsole.errors import CapacityError

__all__ = [
    "Bottleneck",
    "CapacityError",
    "CapacityReport",
    "LeafFabric",
    "Occupancy",
    "PortErrorRates",
    "RackPower",
    "Readings",
    "RunwaySeries",
    "StoreFacts",
    "Target",
    "TenantIdle",
    "build_report",
    "capacity_report",
    "live_readings",
    "node_power_from_state",
    "read_store",
    "resolve_site",
    "state_hosts",
]
