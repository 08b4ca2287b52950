"""A small leased history to report on: the lease test fleet with countries, two
tenants, the site key, and a store with inventory, rollups, a drain and alerts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.alerts import Condition, apply_conditions, resolve
from opsconsole.config import Fleet, fleet_from_dict
from opsconsole.leases import (
    LeaseRequest,
    allocate_lease,
    create_tenant,
    drain,
    undrain,
)
from opsconsole.report import signing
from opsconsole.store import TelemetryIngest
from tests.leases.fleet import FLEET, HOUR
from tests.store.messages import hello
from tests.support.report import N1, NOW, OPERATOR, REASON, SLOTS, minute


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A config file on disk (the CLI reads it), sites with countries, store beside it."""
    path = tmp_path / "opsconsole.toml"
    lines = ['operator = "test-operator"', "", "[store]", 'path = "opsconsole.db"', ""]
    for site, country in (("SG1", "SG"), ("MY1", "MY")):
        lines += ["[[sites]]", f'name = "{site}"', f'country = "{country}"', ""]
    for rack in FLEET["racks"]:
        lines += ["[[racks]]", *(f"{k} = {v!r}".replace("'", '"') for k, v in rack.items()), ""]
    for name, spec in FLEET["host_classes"].items():
        lines += [
            f"[host_classes.{name}]",
            f"gpus = {spec['gpus']}",
            f'gpu_model = "{spec["gpu_model"]}"',
            "",
        ]
    for hosts in FLEET["hosts"]:
        lines += ["[[hosts]]", *(f'{k} = "{v}"' for k, v in hosts.items()), ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def fleet(config_path: Path) -> Fleet:
    spec = copy.deepcopy(FLEET)
    spec["sites"] = [{"name": "SG1", "country": "SG"}, {"name": "MY1", "country": "MY"}]
    return fleet_from_dict(spec, config_path)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "opsconsole.db"


@pytest.fixture
def site_key(tmp_path: Path):
    return signing.init_key(tmp_path / "site-ed25519.pem")


@pytest.fixture
def history(db: sqlite_utils.Database, fleet: Fleet) -> sqlite_utils.Database:
    """acme (SG1 only) leases n01 GPUs 0-1 for 4 h from NOW, with an override; n01 GPU 1
    is drained from 1 h to 2 h; a critical XID alert on GPU 0 is open 2 h..3 h; an hour
    of rollups at 600 W and 80 %; globex leases n02 (not in acme's report)."""
    create_tenant(
        db, "acme", gpu_quota=64, allowed_sites=["SG1"], operator=OPERATOR, now_ts=NOW - HOUR
    )
    create_tenant(db, "globex", gpu_quota=1000, operator=OPERATOR, now_ts=NOW - HOUR)
    TelemetryIngest(db).record_hello(N1, hello(NOW - HOUR, [f"GPU-ACME-{i}" for i in range(8)]))
    allocate_lease(
        db,
        fleet,
        LeaseRequest("acme", NOW, NOW + 4 * HOUR, slots=SLOTS, override_reason=REASON),
        operator="ana",
        now_ts=NOW,
    )
    allocate_lease(
        db, fleet, LeaseRequest("globex", NOW, NOW + 4 * HOUR, nodes=1), operator="bo", now_ts=NOW
    )
    for m in range(60):
        for gpu in (0, 1):
            minute(db, N1, gpu, int(NOW) + 60 * m, 80.0, 600.0)
    drain(
        db,
        fleet,
        N1,
        gpu_index=1,
        reason="RMA check",
        operator="bo",
        start_ts=NOW + HOUR,
        now_ts=NOW + HOUR,
    )
    undrain(db, N1, 1, operator="bo", now_ts=NOW + 2 * HOUR)
    xid = Condition(
        rule="xid_hardware",
        severity="critical",
        kind="event",
        labels={"host": N1, "gpu": "0", "event": "x"},
        summary="XID 79 on GPU 0",
    )  # type: ignore[arg-type]
    apply_conditions(db, [xid], NOW + 2 * HOUR)
    resolve(db, 1, "bo", "GPU reseated", now_ts=NOW + 3 * HOUR)
    return db
