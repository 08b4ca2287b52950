"""`ipmitool` on a simulated host: the BMC's node power reading.

The node draws its GPUs' power plus a steady per-host base (CPUs, fans, NICs) that differs
a little from host to host, so a test can tell a BMC reading from the GPU-sum estimate.
`dcmi power reading` answers like a DCMI-capable BMC; `sdr` lists power sensors like one
without DCMI; hosts whose index is a multiple of 5 have no DCMI (they exercise the
fallback).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsconsole.sim.world import SimHost


def node_base_w(host: SimHost) -> float:
    return 900.0 + 25.0 * (host.index % 7)


def node_power_w(host: SimHost) -> float:
    return round(sum(g.power_w for g in host.gpus) + node_base_w(host))


def has_dcmi(host: SimHost) -> bool:
    return host.index % 5 != 4


def run_ipmitool(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    args = argv[1:]
    watts = node_power_w(host)
    if args[:3] == ["dcmi", "power", "reading"]:
        if not has_dcmi(host):
            return 1, "", "DCMI request failed because: Invalid command (c1)\n"
        stamp = datetime.fromtimestamp(host.now_ts, UTC).strftime("%a %b %d %H:%M:%S %Y")
        out = (
            f"\n    Instantaneous power reading:              {watts:>5} Watts\n"
            f"    Minimum during sampling period:           {watts - 120:>5} Watts\n"
            f"    Maximum during sampling period:           {watts + 80:>5} Watts\n"
            f"    Average power reading over sample period: {watts - 10:>5} Watts\n"
            f"    IPMI timestamp:                           {stamp}\n"
            "    Sampling period:                          00000001 Seconds.\n"
            "    Power reading state is:                   activated\n\n"
        )
        return 0, out, ""
    if args[:1] == ["sdr"]:
        half = watts // 2
        out = (
            "Inlet Temp       | 24 degrees C      | ok\n"
            "Fan1             | 9120 RPM          | ok\n"
            f"PSU1 Input Power | {half} Watts        | ok\n"
            f"PSU2 Input Power | {watts - half} Watts        | ok\n"
            "PSU3 Input Power | 0 Watts           | ok\n"
            "PSU4 Input Power | no reading        | ns\n"
        )
        return 0, out, ""
    return 1, "", f"Invalid command: {' '.join(args)}\n"
