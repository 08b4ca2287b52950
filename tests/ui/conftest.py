"""UI fixtures: a synthetic fleet driven directly through FleetState on the UI thread, a
clock the test moves by hand, and the app from the one factory the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils
from textual.pilot import Pilot

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.leases import create_tenant
from opsconsole.store import open_store
from opsconsole.ui.app import OpsConsoleApp, make_app
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0, synthetic_fleet, warm_fleet

SIZE = (120, 36)


class FakeClock:
    """UTC epoch seconds that move only when the test says so."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


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
    return make_app(fleet, state, clock=clock, publish_interval_s=3600)


OPERATOR = "test-operator"


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


def add_tenants(db: sqlite_utils.Database) -> None:
    create_tenant(
        db, "aurora-labs", gpu_quota=64, colour="#5fafff", allowed_sites=["SG1"],
        operator=OPERATOR, now_ts=T0 - 86_400,
    )  # fmt: skip
    create_tenant(
        db, "kestrel-ai", gpu_quota=16, colour="#d787ff", operator=OPERATOR, now_ts=T0 - 86_400
    )


@pytest.fixture
def lease_app(fleet: Fleet, state: FleetState, clock: FakeClock, lease_store) -> OpsConsoleApp:
    return make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator=OPERATOR
    )


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Let the app run until `condition` holds; fail (not hang) past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(
                f"condition not met within {timeout_s} s:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*text)
