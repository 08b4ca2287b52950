"""`ipmi_power`: node power from the BMC, read with ipmitool over the host's existing SSH
connection. Its `node_power_w` replaces the GPU-sum estimate (GPU power + the rack's
`host_overhead_w`) in rack power, the rack power alert and the capacity report.

`ipmitool dcmi power reading` is tried first (one figure for the whole node); BMCs without
DCMI fall back to `ipmitool sdr`, summing the power supplies' input readings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import Field

from opsconsole.plugin import PluginConfig, PluginInfo, PluginKind

DCMI = re.compile(r"Instantaneous power reading:\s*(\d+(?:\.\d+)?)\s*Watts", re.IGNORECASE)
SDR_LINE = re.compile(r"^(?P<name>[^|]+)\|\s*(?P<value>\d+(?:\.\d+)?)\s*Watts\s*\|\s*ok", re.I)
NODE_SENSOR = re.compile(r"total|consumption|system|node", re.IGNORECASE)
PSU_SENSOR = re.compile(r"\bPSU?\s*\d+\b.*(input|power|in\b)", re.IGNORECASE)
MAX_NODE_W = 100_000.0
"""Above any real node (a GB200 NVL72 rack is ~130 kW for 18 nodes): a parse gone wrong."""


class Config(PluginConfig):
    command: str = "ipmitool dcmi power reading || ipmitool sdr"
    """Run on each host; prefix with `sudo -n ` where ipmitool needs root."""
    interval_s: float = Field(10.0, ge=1.0, le=3600)
    timeout_s: float = Field(10.0, gt=0, le=120)


def parse_power(stdout: str) -> float | None:
    """Node watts from `dcmi power reading` or `sdr` output; None when neither says."""
    match = DCMI.search(stdout)
    if match:
        return float(match.group(1))
    node, psus = None, []
    for line in stdout.splitlines():
        m = SDR_LINE.match(line.strip())
        if not m:
            continue
        name, value = m.group("name").strip(), float(m.group("value"))
        if NODE_SENSOR.search(name):
            node = value
        elif PSU_SENSOR.search(name):
            psus.append(value)
    if node is not None:
        return node
    return sum(psus) if psus else None


class IpmiPower:
    def __init__(self, config: Config, context: object):
        self.command = config.command
        self.interval_s = config.interval_s
        self.timeout_s = config.timeout_s

    def parse(self, host: str, exit_status: int | None, stdout: str) -> Mapping[str, float]:
        if exit_status is None:
            return {}
        watts = parse_power(stdout)
        if watts is None or not 0 < watts < MAX_NODE_W:
            return {}
        return {"node_power_w": watts}


PLUGIN = PluginInfo(
    kind=PluginKind.COLLECTOR,
    name="ipmi_power",
    version="1.0",
    config_schema=Config,
    factory=IpmiPower,
    description="node power from the BMC (ipmitool dcmi, sdr fallback) for rack power",
)
