"""UI test helpers: the terminal size, a clock the test moves by hand, tenants for the
lease store, waits that let the app run until a condition holds, and the notifications an
app showed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import sqlite_utils
from textual.app import App
from textual.notifications import SeverityLevel
from textual.pilot import Pilot

from opsconsole.leases import create_tenant
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0

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


OPERATOR = "test-operator"


def add_tenants(db: sqlite_utils.Database) -> None:
    create_tenant(
        db, "aurora-labs", gpu_quota=64, colour="#5fafff", allowed_sites=["SG1"],
        operator=OPERATOR, now_ts=T0 - 86_400,
    )  # fmt: skip
    create_tenant(
        db, "kestrel-ai", gpu_quota=16, colour="#d787ff", operator=OPERATOR, now_ts=T0 - 86_400
    )


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout_s: float = 20.0
) -> None:
    """Let the app run until `condition` holds; fail (not hang) past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(
                f"condition not met within {timeout_s} s:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


@dataclass(frozen=True)
class Notice:
    """One notification (toast) as the app was asked to show it."""

    message: str
    title: str
    severity: str


_recorded: WeakKeyDictionary[App[Any], list[Notice]] = WeakKeyDictionary()


def record_notifications(app: App[Any]) -> list[Notice]:
    """Record every notification `app` shows from now on, through its public `notify`
    (a screen's or widget's `notify` calls the app's); returns the live list. Calling it
    again for the same app returns the same list."""
    if app in _recorded:
        return _recorded[app]
    seen: list[Notice] = []
    show = app.notify

    def notify(
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        seen.append(Notice(message, title, severity))
        show(message, title=title, severity=severity, timeout=timeout, markup=markup)

    app.notify = notify  # type: ignore[method-assign]
    _recorded[app] = seen
    return seen


def notices(app: App[Any]) -> list[Notice]:
    """What `app` has shown since `record_notifications(app)` (the UI fixtures call it)."""
    if app not in _recorded:
        raise AssertionError("record_notifications(app) was not called before the app ran")
    return _recorded[app]
