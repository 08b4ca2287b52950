"""How late the console's own event loop runs: the part of a measured round trip that is
the console's fault, not the network's or the host's.

Why: a round trip is timed on the console's loop. When the console's machine is busy (load
10 on 2 cores) or the loop is blocked by a long callback, the reply sits unread and the
round trip grows by that wait: loopback hosts showed 330-813 ms and raised net_rtt_high.
A task that asks to wake every `period_s` measures how late it wakes; a probe overlapping
a late wake-up has that lateness subtracted, and a probe dominated by it is discarded.
When the lateness itself is high the console says it is starved (a field the UI header
shows) rather than blaming hosts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

PERIOD_S = 0.1
KEPT = 600  # one minute of wake-ups at the default period
STARVED_MS = 100.0
"""Worst wake-up lateness over the last STARVED_WINDOW_S above this: the console is starved."""
STARVED_WINDOW_S = 10.0


class LoopLagMonitor:
    """Wake-up lateness of the event loop, kept for the last minute."""

    def __init__(self, period_s: float = PERIOD_S, starved_ms: float = STARVED_MS):
        self.period_s = period_s
        self.starved_ms = starved_ms
        self._wakes: deque[tuple[float, float]] = deque(maxlen=KEPT)  # (perf ts, lag ms)
        self._tick = asyncio.Event()

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.period_s)
            now = time.perf_counter()
            self._wakes.append((now, max(0.0, (now - before - self.period_s) * 1000.0)))
            self._tick.set()
            self._tick.clear()

    def record(self, perf_ts: float, lag_ms: float) -> None:
        """A wake-up measured elsewhere (tests)."""
        self._wakes.append((perf_ts, lag_ms))

    def lag_between_ms(self, start: float, end: float) -> float:
        """Worst lateness of wake-ups that overlap [start, end] (perf_counter seconds):
        those that woke after `start` and up to one period after `end`."""
        limit = end + self.period_s
        worst = 0.0
        for ts, lag_ms in reversed(self._wakes):
            if ts < start:
                break
            if ts <= limit + lag_ms / 1000.0 and lag_ms > worst:
                worst = lag_ms
        return worst

    def recent_max_ms(self, window_s: float = STARVED_WINDOW_S) -> float:
        since = time.perf_counter() - window_s
        return max((lag for ts, lag in self._wakes if ts >= since), default=0.0)

    @property
    def starved(self) -> bool:
        return self.recent_max_ms() > self.starved_ms

    async def settle(self) -> None:
        """Wait for the next wake-up, so a probe that just ended has its window covered."""
        await self._tick.wait()


def honest_rtt_ms(raw_ms: float | None, lag_ms: float) -> float | None:
    """The round trip without the console's own lateness; None when the lateness is most
    of it (the probe says nothing about the network then)."""
    if raw_ms is None:
        return None
    if lag_ms >= raw_ms / 2:
        return None
    return raw_ms - lag_ms
