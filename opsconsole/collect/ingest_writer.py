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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from opsconsole.collect.sink import TelemetrySink
from opsconsole.config import Fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.wire import GpuEvent, Hello, Sample

log = logging.getLogger("opsconsole.collect")


_Call = tuple[str, Callable[[], object]]
"""(what, the bound sink call): `what` names it in logs; "add_sample" calls may be dropped."""


class IngestWriter:
    """The loop's side of a `TelemetrySink`: typed calls queued, run on one thread."""

    def __init__(self, ingest: TelemetrySink, *, max_pending_calls: int = 200_000):
        self.ingest = ingest
        self.max_pending_calls = max_pending_calls
        self.dropped_calls = 0
        self.last_error = ""
        self.last_flush_rows = 0
        self._calls: list[_Call] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsconsole-ingest")
        self._lock = asyncio.Lock()

    # The sink's calls, queued (cheap: called on every sample) --------------------------
    def add_sample(self, host_name: str, sample: Sample) -> None:
        self._queue("add_sample", partial(self.ingest.add_sample, host_name, sample))

    def record_events(self, host_name: str, events: Iterable[GpuEvent]) -> None:
        self._queue("record_events", partial(self.ingest.record_events, host_name, events))

    def record_hello(self, host_name: str, hello: Hello) -> None:
        self._queue("record_hello", partial(self.ingest.record_hello, host_name, hello))

    def sync_inventory(self, fleet: Fleet) -> None:
        self._queue("sync_inventory", partial(self.ingest.sync_inventory, fleet))

    def record_host_event(
        self,
        host: str,
        kind: str,
        message: str,
        ts: float,
        *,
        gpu_index: int | None = None,
        code: int | None = None,
    ) -> None:
        call = partial(
            self.ingest.record_host_event, host, kind, message, ts, gpu_index=gpu_index, code=code
        )
        self._queue("record_host_event", call)

    def _queue(self, what: str, call: Callable[[], object]) -> None:
        calls = self._calls
        calls.append((what, call))
        if len(calls) > self.max_pending_calls:
            # drop the oldest tenth of the queued samples at once, keeping events and hellos
            drop = max(1, self.max_pending_calls // 10)
            kept: list[_Call] = []
            for queued in calls:
                if drop and queued[0] == "add_sample":
                    drop -= 1
                    self.dropped_calls += 1
                else:
                    kept.append(queued)
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

    def _run_calls(self, calls: list[_Call]) -> None:
        for method, call in calls:
            try:
                call()
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
