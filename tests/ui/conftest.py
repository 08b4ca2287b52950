"""UI fixtures: a synthetic fleet driven directly through FleetState on the UI thread, a
clock the test moves by hand, and the app from the one factory the CLI uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.store import open_store
from opsconsole.ui.app import OpsConsoleApp, make_app
from tests.support.ui import OPERATOR, FakeClock, add_tenants, record_notifications
from tests.ui.synthetic import T0, synthetic_fleet, warm_fleet


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fleet() -> Fleet:
    return synthetic_fleet(32)


@pytest.fixture
def state(fleet: Fleet) -> FleetState:
    return warm_fleet(fleet, samples=5, now_ts=T0)


@pytest.fixture
def app(fleet: Fleet, state: FleetState, clock: FakeClock) -> OpsConsoleApp:
    # an hour between automatic publishes: tests publish with app.publish_now()
    app = make_app(fleet, state, clock=clock, publish_interval_s=3600)
    record_notifications(app)
    return app


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "opsconsole.db"


@pytest.fixture
def lease_store(store_path: Path) -> Iterator[sqlite_utils.Database]:
    """A real SQLite file with two tenants: aurora-labs (SG1, 64 GPUs at once) and
    kestrel-ai (anywhere, 16 GPUs at once)."""
    db = open_store(store_path, busy_timeout_s=0.2)
    add_tenants(db)
    yield db
    db.close()


@pytest.fixture
def lease_app(fleet: Fleet, state: FleetState, clock: FakeClock, lease_store) -> OpsConsoleApp:
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator=OPERATOR
    )
    record_notifications(app)
    return app
