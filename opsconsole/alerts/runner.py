"""A poller with the alert engine riding along on the same event loop.

Why a wrapper rather than a hook in the poller: collection sits below alerts and must not
know of them. Whoever builds a poller (`opsconsole poll`, the console) wraps it here, and
the pair starts and stops as one: alerts exist whenever collection runs, console or not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opsconsole.alerts.engine import AlertEngine

log = logging.getLogger("opsconsole.alerts")


class AlertingPoller:
    """Looks like a Poller (start, run, stop, reconnect, writer, state) to its users."""

    def __init__(self, poller: Any, engine: AlertEngine):
        self.poller = poller
        self.engine = engine
        self._stop_alerts = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> Any:
        return self.poller.state

    @property
    def writer(self) -> Any:
        return self.poller.writer

    async def start(self) -> None:
        await self.poller.start()
        if self._task is None:
            self._stop_alerts.clear()
            self._task = asyncio.create_task(
                self.engine.run(self.poller.state, self._stop_alerts), name="alerts"
            )

    async def run(self) -> None:
        await self.start()
        try:
            await self.poller.run()
        finally:
            await self._stop_engine()

    async def stop(self) -> None:
        await self._stop_engine()
        await self.poller.stop()

    async def _stop_engine(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stop_alerts.set()
        try:
            await asyncio.wait_for(task, 15.0)
        except Exception:
            log.exception("the alert engine did not stop cleanly")

    def reconnect(self, name: str) -> Any:
        return self.poller.reconnect(name)
