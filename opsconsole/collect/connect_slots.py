"""How many SSH connects run at once: adaptive, from how fast hosts accept.

Why: a fixed `connect_concurrency` is either too low for a large healthy fleet (1,000
hosts at 20 at a time and 0.3 s a handshake is 15 s of warm-up) or too high for a slow
network or a loaded console. This is additive-increase, multiplicative-decrease, as TCP
does: every connect that finishes quickly lets one more run at once, up to a ceiling;
a connect that times out or is dropped during the handshake (what a host's sshd does
under `MaxStartups`, or a console too busy to finish handshakes) halves the window.
Refused and unreachable hosts say nothing about congestion and change nothing.

Each host is only ever connected once at a time, so a host's own `MaxStartups` is never
reached by us; through a bastion every connect lands on one sshd, so there the window
never grows past the configured value (the bastion's MaxStartups defaults to 10:30:100).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from opsconsole.collect.reasons import CONNECTION_LOST, TIMEOUT

GROWTH_CEILING = 8
"""The window may grow to this many times the configured concurrency."""
MAX_WINDOW = 400
FAST_SHARE = 0.25
"""A connect is fast when it took under this share of the connect timeout."""
CONGESTION_REASONS = (TIMEOUT, CONNECTION_LOST)


class AdaptiveConnectSlots:
    """A drop-in for the poller's connect semaphore (`async with slots:` around each
    connect) whose size follows how connects go."""

    def __init__(self, initial: int, connect_timeout_s: float, *, grow: bool = True):
        self.minimum = 1
        self.initial = max(1, initial)
        self.maximum = min(MAX_WINDOW, self.initial * GROWTH_CEILING) if grow else self.initial
        self.window = float(self.initial)
        self.fast_s = connect_timeout_s * FAST_SHARE
        self.running = 0
        self.peak = 0
        self._waiters: asyncio.Condition | None = None
        self._started: dict[asyncio.Task[object] | None, float] = {}

    def _condition(self) -> asyncio.Condition:
        if self._waiters is None:
            self._waiters = asyncio.Condition()
        return self._waiters

    async def __aenter__(self) -> AdaptiveConnectSlots:
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: self.running < int(self.window))
            self.running += 1
            self.peak = max(self.peak, self.running)
        self._started[asyncio.current_task()] = time.monotonic()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        started = self._started.pop(asyncio.current_task(), time.monotonic())
        self.record(time.monotonic() - started, exc)
        condition = self._condition()
        async with condition:
            self.running -= 1
            condition.notify_all()

    def record(self, took_s: float, exc: BaseException | None) -> None:
        """Adjust the window for one finished connect (`exc` None: it succeeded)."""
        if exc is None:
            if took_s <= self.fast_s:
                self.window = min(self.maximum, self.window + 1.0)
            return
        if getattr(exc, "reason", None) in CONGESTION_REASONS or isinstance(exc, TimeoutError):
            self.window = max(float(self.minimum), self.window / 2.0)
