"""Capacity fixtures: the capacity demo's fleet with its leases and drains
(tests/support/capacity.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.cli.demo import seed_capacity_leases
from opsconsole.config import Fleet
from opsconsole.store import open_store
from tests.support.capacity import (
    T0,
    capacity_fleet,
)


@pytest.fixture
def fleet() -> Fleet:
    return capacity_fleet()


@pytest.fixture
def seeded(tmp_path: Path, fleet: Fleet) -> Iterator[sqlite_utils.Database]:
    """The capacity demo's leases and drains, seeded at T0."""
    path = tmp_path / "capacity.db"
    seed_capacity_leases(path, fleet, T0)
    db = open_store(path)
    yield db
    db.close()
