"""Hands telemetry to the store's `TelemetryIngest` without ever blocking the event loop.

Why one dedicated thread and not `asyncio.to_thread`: the ingest object is not
thread-safe and its SQLite connection belongs to whichever thread uses it, so every call
(samples, events, hello, flush) must run on the same thread and in arrival order. The loop
only appends to a list; a drain task hands the batch to the thread about once a second.
Why a cap: if the disk stalls, samples queue here; past `max_pending_calls` the oldest
samples are dropped (counted) rather than the console running out of memory.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opsconsole.errors import OpsconsoleError

log = logging.getLogger("opsconsole.collect")


class IngestWriter:
    def __init__(self, ingest: Any, *, max_pending_calls: int = 200_000):
        self.ingest = ingest
        self.max_pending_calls = max_pending_calls
        self.dropped_calls = 0
        self.last_error = ""
        self.last_flush_rows = 0
        self._calls: list[tuple[str, tuple, dict]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsconsole-ingest")
        self._lock = asyncio.Lock()

    def submit(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Queue `ingest.<method>(*args, **kwargs)`; cheap, called on every sample."""
        calls = self._calls
        calls.append((method, args, kwargs))
        if len(calls) > self.max_pending_calls:
            # drop the oldest tenth of the queued samples at once, keeping events and hellos
            drop = max(1, self.max_pending_calls // 10)
            kept: list[tuple[str, tuple, dict]] = []
            for call in calls:
                if drop and call[0] == "add_sample":
                    drop -= 1
                    self.dropped_calls += 1
                else:
                    kept.append(call)
            self._calls = kept

    @property
    def pending_calls(self) -> int:
        return len(self._calls)

    async def drain(self) -> None:
        """Run everything queued so far on the ingest thread, in order."""
        async with self._lock:
            calls, self._calls = self._calls, []
            if calls:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._run_calls, calls)

    async def flush(self, now_ts: float, *, force: bool = False) -> None:
        """Drain, then write finished minutes (all of them with force=True)."""
        await self.drain()
        async with self._lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._flush, now_ts, force)

    async def close(self, now_ts: float) -> None:
        """Final flush of everything, then release the thread."""
        try:
            await self.flush(now_ts, force=True)
        finally:
            self._executor.shutdown(wait=True)

    def _run_calls(self, calls: list[tuple[str, tuple, dict]]) -> None:
        for method, args, kwargs in calls:
            try:
                getattr(self.ingest, method)(*args, **kwargs)
            except OpsconsoleError as exc:
                self._failed(str(exc))
            except Exception as exc:  # a store bug must not stop collection
                log.exception("ingest.%s failed", method)
                self._failed(f"{method}: {type(exc).__name__}: {exc}")

    def _flush(self, now_ts: float, force: bool) -> None:
        try:
            self.last_flush_rows = int(self.ingest.flush(now_ts, force=force) or 0)
            self.last_error = ""
        except OpsconsoleError as exc:
            self._failed(str(exc))
        except Exception as exc:
            log.exception("ingest.flush failed")
            self._failed(f"flush: {type(exc).__name__}: {exc}")

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.warning("store: %s", message)
        self.last_error = message
