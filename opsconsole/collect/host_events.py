"""Console-observed events (host down/up, GPU missing or lost, driver hung, IB link down,
host key changed) recorded in the store when a condition starts or ends.

Why transitions and not states: the store's event log answers "when did this start", so
one row per change; a condition that holds for an hour is one row, not 1,800.
"""

from __future__ import annotations

from collections.abc import Callable

from opsconsole.collect.ingest_writer import IngestWriter
from opsconsole.collect.reasons import HOST_KEY_CHANGED
from opsconsole.collect.state import Change, HostState


class HostEventRecorder:
    """A FleetState listener that turns condition changes into `record_host_event` calls."""

    def __init__(self, writer: IngestWriter, clock: Callable[[], float]):
        self.writer = writer
        self.clock = clock
        self._active: dict[str, set[tuple[object, ...]]] = {}

    def __call__(self, host: HostState, change: Change) -> None:
        active = self._active.setdefault(host.name, set())
        now = self.clock()
        if change in ("status", "connection"):
            self._status(host, active, now)
        if change in ("sample", "status") and host.status == "fresh" and host.sample is not None:
            self._sample_conditions(host, active, now)

    def _record(
        self, host: HostState, kind: str, message: str, ts: float, gpu_index: int | None = None
    ) -> None:
        self.writer.record_host_event(host.name, kind, message, ts, gpu_index=gpu_index)

    def _status(self, host: HostState, active: set[tuple[object, ...]], now: float) -> None:
        reason = f"{host.reason}: {host.detail}" if host.detail else host.reason
        if host.status == "down" and ("down",) not in active:
            active.add(("down",))
            self._record(host, "host_down", reason, now)
        elif host.status == "fresh" and ("down",) in active:
            active.discard(("down",))
            self._record(host, "host_up", "samples arriving again", now)
        key_changed = host.key_change is not None or host.reason == HOST_KEY_CHANGED
        if key_changed and ("host_key",) not in active:
            active.add(("host_key",))
            detail = host.key_change.describe() if host.key_change is not None else ""
            self._record(host, "host_key_changed", detail or host.detail or reason, now)
        elif not key_changed and host.status == "fresh":
            active.discard(("host_key",))

    def _sample_conditions(
        self, host: HostState, active: set[tuple[object, ...]], now: float
    ) -> None:
        sample = host.sample
        assert sample is not None
        self._toggle(
            host,
            active,
            ("driver",),
            sample.driver == "unresponsive",
            now,
            "driver_unresponsive",
            sample.driver_detail or "driver unresponsive",
            None,
        )
        count = host.gpu_count  # a lost GPU has its own event (gpu_lost) below
        self._toggle(
            host,
            active,
            ("gpu_count",),
            count is not None and count < host.expected_gpus,
            now,
            "gpu_missing",
            host.gpu_count_detail(),
            None,
        )
        for gpu in sample.gpus:
            self._toggle(
                host,
                active,
                ("gpu_lost", gpu.index),
                gpu.state == "lost",
                now,
                "gpu_lost",
                f"GPU {gpu.index} lost",
                None,
                gpu_index=gpu.index,
            )
        for port in sample.ib:
            name = f"{port.device}/{port.port}"
            self._toggle(
                host,
                active,
                ("link", name),
                port.state not in (None, "ACTIVE"),
                now,
                "link_down",
                f"IB {name} {port.state} ({port.phys_state})",
                ("link_up", f"IB {name} ACTIVE"),
            )

    def _toggle(
        self,
        host: HostState,
        active: set[tuple[object, ...]],
        key: tuple[object, ...],
        on: bool,
        now: float,
        kind: str,
        message: str,
        off: tuple[str, str] | None,
        gpu_index: int | None = None,
    ) -> None:
        if on and key not in active:
            active.add(key)
            self._record(host, kind, message, now, gpu_index)
        elif not on and key in active:
            active.discard(key)
            if off is not None:
                self._record(host, off[0], off[1], now)
