"""Capacity helpers: the capacity demo's fleet (the simulator's layout: 16 eight-GPU H200
hosts a rack, four racks a leaf), and builders that write minute rollups and live readings
with known values."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from opsconsole.capacity.inputs import HostReadings, PortReading, Readings
from opsconsole.config import Fleet, fleet_from_dict

T0 = 1_750_000_000.0
"""2025-06-15 15:06:40 UTC: the fixtures' "now" when the leases are seeded."""


COLUMNS = (
    "host", "gpu_index", "minute_ts", "n",
    "util_pct_n", "util_pct_min", "util_pct_avg", "util_pct_max",
    "temp_c_n", "temp_c_min", "temp_c_avg", "temp_c_max",
    "power_w_n", "power_w_min", "power_w_avg", "power_w_max",
    "mem_used_mib_n", "mem_used_mib_avg", "mem_used_mib_max",
    "clock_event_n", "clock_event_share_power", "clock_event_share_thermal",
)  # fmt: skip


BUDGET_KW = 108.9


OVERHEAD_W = 1800.0


def capacity_fleet(
    racks: int = 4,
    racks_per_leaf: int = 4,
    *,
    no_budget: Iterable[str] = ("sg1-r04",),
    gpu_model: str | None = "H200",
    capacity: dict | None = None,
) -> Fleet:
    no_budget = set(no_budget)
    rack_entries, host_entries = [], []
    for r in range(1, racks + 1):
        name = f"sg1-r{r:02d}"
        entry = {
            "names": name,
            "site": "SG1",
            "leaf": f"sg1-leaf-{(r - 1) // racks_per_leaf + 1:02d}",
            "host_overhead_w": OVERHEAD_W,
        }
        if name not in no_budget:
            entry["power_budget_kw"] = BUDGET_KW
        rack_entries.append(entry)
        host_entries.append(
            {"names": f"{name}-n[01-16]", "rack": name, "class": "h200", "address": "{name}.sim"}
        )
    host_class = {"gpus": 8, "ib_ports": 8, "ib_rate_gbps": 400.0}
    if gpu_model is not None:
        host_class["gpu_model"] = gpu_model
    raw = {
        "store": {"path": "capacity.db"},
        "ssh": {"known_hosts": None, "use_ssh_config": False},
        "sites": [{"name": "SG1"}, {"name": "MY1"}],
        "racks": rack_entries,
        "host_classes": {"h200": host_class},
        "hosts": host_entries,
        "capacity": capacity or {},
    }
    return fleet_from_dict(raw, Path("/nonexistent/capacity.toml"))


def add_minutes(
    db: sqlite_utils.Database,
    hosts: Iterable[str],
    start_ts: float,
    minutes: int,
    *,
    util_pct: float | None = None,
    power_w: float | None = None,
    cap_share: float | None = None,
    thermal_share: float | None = None,
    gpus: int = 8,
    every: int = 1,
) -> None:
    """One gpu_minute row per GPU per minute (every `every`-th minute), 30 samples each."""
    rows = []
    first = int(start_ts // 60) * 60
    for host in hosts:
        for gpu in range(gpus):
            for m in range(0, minutes, every):
                clock_n = 30 if cap_share is not None or thermal_share is not None else 0
                rows.append(
                    (
                        host, gpu, first + 60 * m, 30,
                        30 if util_pct is not None else 0, util_pct, util_pct, util_pct,
                        0, None, None, None,
                        30 if power_w is not None else 0, power_w, power_w, power_w,
                        0, None, None,
                        clock_n, cap_share if clock_n else None,
                        (thermal_share or 0.0) if clock_n else None,
                    )
                )  # fmt: skip
    with db.conn:
        db.conn.executemany(
            f"INSERT INTO gpu_minute ({', '.join(COLUMNS)})"
            f" VALUES ({', '.join('?' * len(COLUMNS))})",
            rows,
        )


def readings(
    fleet: Fleet,
    *,
    gpu_power_w: dict[str, float] | None = None,
    default_power_w: float = 3000.0,
    silent: Iterable[str] = (),
    ports: dict[str, list[PortReading]] | None = None,
) -> Readings:
    """Live readings: every host fresh with `default_power_w` of GPU power and eight
    healthy 400 Gb/s ports, except as given; `silent` hosts are down (nothing known)."""
    silent = set(silent)
    out = {}
    for host in fleet.hosts:
        if host.name in silent:
            out[host.name] = HostReadings("down", None, 0, None)
            continue
        host_ports = (ports or {}).get(host.name)
        if host_ports is None:
            host_ports = [PortReading(f"mlx5_{i}/1", "ACTIVE", 400.0, 0.0) for i in range(8)]
        power = (gpu_power_w or {}).get(host.name, default_power_w)
        out[host.name] = HostReadings("fresh", power, 8, tuple(host_ports))
    return Readings(out, "live", "live", True)
