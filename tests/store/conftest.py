"""Store fixtures: a real SQLite file per test, a small fleet from the real config code,
and builders for protocol messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.config import Fleet, fleet_from_dict
from opsconsole.store import TelemetryIngest, open_store
from tests.store.messages import FLEET


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "opsconsole.db"


@pytest.fixture
def db(store_path: Path) -> Iterator[sqlite_utils.Database]:
    db = open_store(store_path)
    yield db
    db.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return fleet_from_dict(FLEET, tmp_path / "opsconsole.toml")


@pytest.fixture
def ingest(db: sqlite_utils.Database, fleet: Fleet) -> TelemetryIngest:
    ingest = TelemetryIngest(db)
    ingest.sync_inventory(fleet)
    return ingest
