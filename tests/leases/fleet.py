"""The fleet the lease tests place on, shared with the worker processes (spawned, so it
must be importable): two sites, two leaves in SG1, eight-GPU hosts plus a 4-GPU class."""

from __future__ import annotations

from pathlib import Path

from opsconsole.config import Fleet, fleet_from_dict

NOW = 1_800_000_000.0  # 2027-01-15 08:00Z; every test passes its own clock
HOUR = 3600.0
DAY = 86_400.0

FLEET = {
    "sites": [{"name": "SG1"}, {"name": "MY1"}],
    "racks": [
        {"names": "sg1-r[01-02]", "site": "SG1", "leaf": "leaf-01"},
        {"names": "sg1-r[03-04]", "site": "SG1", "leaf": "leaf-02"},
        {"names": "my1-r01", "site": "MY1", "leaf": "my1-leaf"},
    ],
    "host_classes": {
        "h200-8": {"gpus": 8, "gpu_model": "H200"},
        "l40s-4": {"gpus": 4, "gpu_model": "L40S"},
    },
    "hosts": [
        {"names": "sg1-r01-n[01-04]", "rack": "sg1-r01", "class": "h200-8"},
        {"names": "sg1-r02-n[01-04]", "rack": "sg1-r02", "class": "h200-8"},
        {"names": "sg1-r03-n[01-04]", "rack": "sg1-r03", "class": "h200-8"},
        {"names": "sg1-r04-n[01-02]", "rack": "sg1-r04", "class": "l40s-4"},
        {"names": "my1-r01-n[01-02]", "rack": "my1-r01", "class": "h200-8"},
    ],
}


def make_fleet(config_path: Path | str = "opsconsole.toml") -> Fleet:
    return fleet_from_dict(FLEET, Path(config_path))
