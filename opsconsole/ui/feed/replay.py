"""Replay in the console: the same fleet, host, alerts and leases views, read-only, fed
from the flight recorder on a virtual clock instead of from the poller.

`ReplayPoller` stands where the poller stands (the polling thread calls its `run`), so
batches, snapshots and screens are the live code paths. The app's clock is the replay
clock, so data ages, lease states and the alert board are computed for the replayed
moment; `gateway.replay.ReplayAlertDesk` reads the alerts as they were then
(`alerts_as_of`). `ui.app.replay_app` puts the two together.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from opsconsole.replay import ReplayClock, ReplaySource

STEP_S = 0.5


class ReplayPoller:
    def __init__(self, source: ReplaySource, clock: ReplayClock) -> None:
        self.source = source
        self.clock = clock
        self._stopping = False

    async def run(self) -> None:
        while not self._stopping:
            self.source.step(self.clock())
            await asyncio.sleep(STEP_S)

    async def stop(self) -> None:
        """Called on the polling thread's loop, never during a step (steps do not await)."""
        self._stopping = True
        self.source.db.close()

    def banner(self) -> str:
        when = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        speed = f" {self.clock.speed:g}x" if self.clock.speed != 1 else ""
        return f"REPLAY {when}{speed} · {self.source.mode}"
