"""The seam between collection and the store: what the poller hands telemetry to.

A `typing.Protocol`, so collect names the calls it makes and the checker holds the
store (`opsconsole.store.TelemetryIngest`) to them, without collect importing the store
(the store sits above collect). Tests may pass any object with these methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from opsconsole.config import Fleet
from opsconsole.wire import GpuEvent, Hello, Sample


class TelemetrySink(Protocol):
    """Where collected telemetry goes; every call runs on one thread, in arrival order."""

    def sync_inventory(self, fleet: Fleet) -> None: ...

    def record_hello(self, host_name: str, hello: Hello) -> object: ...

    def add_sample(self, host_name: str, sample: Sample) -> None: ...

    def record_events(self, host_name: str, events: Iterable[GpuEvent]) -> object: ...

    def record_host_event(
        self,
        host: str,
        kind: str,
        message: str,
        ts: float,
        *,
        gpu_index: int | None = None,
        code: int | None = None,
        source: str = "console",
    ) -> object: ...

    def flush(self, now_ts: float | None = None, *, force: bool = False) -> int: ...
