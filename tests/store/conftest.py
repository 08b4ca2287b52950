"""Store fixtures: a real SQLite file per test, a small fleet from the real config code,
and builders for protocol messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.config import Fleet, fleet_from_dict
from opsconsole.store import TelemetryIngest
from tests.store.messages import FLEET


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return fleet_from_dict(FLEET, tmp_path / "opsconsole.toml")


@pytest.fixture
def ingest(db: sqlite_utils.Database, fleet: Fleet) -> TelemetryIngest:
    ingest = TelemetryIngest(db)
    ingest.sync_inventory(fleet)
    return ingest
