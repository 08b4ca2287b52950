"""A poller with work of its own riding along on the same event loop (the alert engine,
the plugins' publisher).

Why a wrapper rather than a hook in the poller: collection sits below whoever rides
along and must not know of them. The wrapper looks like a Poller (start, run, stop,
reconnect, writer, state) to its users, and the pair starts and stops as one.
"""

from __future__ import annotations

from typing import Any


class PollerCompanion:
    """Subclasses say what starts beside the poller and what stops before it does."""

    def __init__(self, poller: Any):
        self.poller = poller

    @property
    def state(self) -> Any:
        return self.poller.state

    @property
    def writer(self) -> Any:
        return self.poller.writer

    def reconnect(self, name: str) -> Any:
        return self.poller.reconnect(name)

    async def start(self) -> None:
        await self.poller.start()
        self._start_beside()

    async def run(self) -> None:
        await self.start()
        try:
            await self.poller.run()
        finally:
            await self._stop_beside()

    async def stop(self) -> None:
        await self._stop_beside()
        await self.poller.stop()

    def _start_beside(self) -> None:
        """Start the companion's own work (once; a second start leaves it running)."""
        raise NotImplementedError

    async def _stop_beside(self) -> None:
        """Stop the companion's own work (safe when it never started)."""
        raise NotImplementedError
