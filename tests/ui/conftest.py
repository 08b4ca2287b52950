"""UI fixtures: a synthetic fleet driven directly through FleetState on the UI thread, a
clock the test moves by hand, and the app from the one factory the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
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
