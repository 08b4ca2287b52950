"""A poller with the alert engine riding along on the same event loop
(`collect.companion`): whoever builds a poller (`opsconsole poll`, the console) wraps it
here, so alerts exist whenever collection runs, console or not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opsconsole.alerts.engine import AlertEngine
from opsconsole.collect.companion import PollerCompanion

log = logging.getLogger("opsconsole.alerts")


class AlertingPoller(PollerCompanion):
    """The alert engine's task beside the poller."""

    def __init__(self, poller: Any, engine: AlertEngine):
        super().__init__(poller)
        self.engine = engine
        self._stop_alerts = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _start_beside(self) -> None:
        if self._task is None:
            self._stop_alerts.clear()
            self._task = asyncio.create_task(
                self.engine.run(self.poller.state, self._stop_alerts), name="alerts"
            )

    async def _stop_beside(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stop_alerts.set()
        try:
            await asyncio.wait_for(task, 15.0)
        except Exception:
            log.exception("the alert engine did not stop cleanly")
