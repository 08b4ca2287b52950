"""A stand-in for collect.poller.Poller with the same surface (run, stop, reconnect): it
runs on the console's polling thread and feeds synthetic samples into the FleetState
there, exactly where the real poller would mutate it."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from tests.ui.synthetic import feed_all


class FakePoller:
    def __init__(
        self,
        fleet: Fleet,
        state: FleetState,
        *,
        interval_s: float = 0.05,
        fail: str = "",
        store_error: str = "",
    ):
        self.fleet = fleet
        self.state = state
        self.interval_s = interval_s
        self.fail = fail
        self.reconnects: list[str] = []
        self.stopped = False
        self.samples_sent = 0
        # like Poller.writer (IngestWriter): the store's last error, read by the console
        self.writer = SimpleNamespace(last_error=store_error, dropped_calls=0)

    async def run(self) -> None:
        if self.fail:
            raise RuntimeError(self.fail)
        seq = 0
        while not self.stopped:
            feed_all(self.state, time.time(), seq)
            self.samples_sent += 1
            seq += 1
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        self.stopped = True

    async def reconnect(self, name: str) -> None:
        self.reconnects.append(name)


class PollerRecorder:
    """A poller factory that remembers what it built, for assertions."""

    def __init__(self, **options):
        self.options = options
        self.poller: FakePoller | None = None

    def __call__(self, fleet: Fleet, state: FleetState) -> FakePoller:
        self.poller = FakePoller(fleet, state, **self.options)
        return self.poller
