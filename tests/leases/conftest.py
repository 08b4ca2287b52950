"""Lease fixtures: a real SQLite file per test, the test fleet, two tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.leases import create_tenant
from tests.leases.fleet import NOW, make_fleet
from tests.support.leases import OPERATOR


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return make_fleet(tmp_path / "opsconsole.toml")


@pytest.fixture
def tenants(db: sqlite_utils.Database) -> None:
    """acme: SG1 only, 64 GPUs; globex: anywhere, 1,000 GPUs."""
    create_tenant(db, "acme", gpu_quota=64, allowed_sites=["SG1"], operator=OPERATOR, now_ts=NOW)
    create_tenant(db, "globex", gpu_quota=1000, operator=OPERATOR, now_ts=NOW)
