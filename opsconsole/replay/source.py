"""What replay feeds the console: recorded samples applied to a `FleetState` in time order
as a virtual clock moves, exactly as the poller applies live ones.

Where the data comes from, best first: the flight recorder's raw ring (every sample),
the minutes kept around critical alerts, then the minute rollups (one averaged reading
per GPU per minute: utilisation, temperature, power, memory; nothing of the fabric).
`mode` says which one the last step used, and the console's banner shows it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils

from opsconsole.collect.state import FleetState
from opsconsole.store.queries import fleet_minutes
from opsconsole.store.recorder import (
    capture_covers,
    capture_samples,
    hellos_before,
    ring_samples,
    ring_span,
)
from opsconsole.wire import GpuSample, Sample

RAW, CAPTURE, ROLLUPS, NOTHING = (
    "raw samples",
    "incident capture",
    "minute rollups: outside the raw window",
    "nothing recorded at this time",
)
WARMUP_S = 60.0
"""Samples applied before the start, so rates and sparklines have something to show."""


@dataclass
class ReplayClock:
    """Virtual time: `at_ts` when started, moving `speed` times as fast as the wall."""

    at_ts: float
    speed: float = 1.0
    wall: Callable[[], float] = time.monotonic
    _start: float | None = field(default=None, repr=False)
    paused: bool = False

    def __call__(self) -> float:
        if self._start is None:
            self._start = self.wall()
        if self.paused:
            return self.at_ts
        return self.at_ts + (self.wall() - self._start) * self.speed


class ReplaySource:
    def __init__(self, db: sqlite_utils.Database, state: FleetState) -> None:
        self.db = db
        self.state = state
        self.cursor_ts: float | None = None
        self.mode = NOTHING
        self._span: tuple[float, float] | None = None
        self._span_read_ts: float | None = None

    def step(self, now_ts: float) -> str:
        """Apply everything recorded in (last step, now]; the first step also applies the
        hellos and the minute before. Returns the mode (where the data came from)."""
        first = self.cursor_ts is None
        since = now_ts - WARMUP_S if self.cursor_ts is None else self.cursor_ts
        if first:
            for name, hello in hellos_before(self.db, now_ts).items():
                host = self.state.hosts.get(name)
                if host is not None:
                    host.apply_hello(hello, hello.ts)
                    self.state.changed(host, "hello")
        if now_ts <= since:
            return self.mode
        mode = self._mode_at(now_ts)
        if mode == RAW:
            samples = ring_samples(self.db, since, now_ts)
        elif mode == CAPTURE:
            samples = capture_samples(self.db, since, now_ts)
        else:
            samples = self._from_rollups(since if not first else now_ts - 60.0, now_ts)
            if first and not samples:
                mode = NOTHING
        for name, sample in samples:
            host = self.state.hosts.get(name)
            if host is None:
                continue
            # rollups are one reading a minute: shown as current until the next one
            seen_ts = now_ts if mode == ROLLUPS else sample.ts
            changed = host.apply_sample(sample, seen_ts)
            self.state.changed(host, "status" if changed else "sample")
        if mode != ROLLUPS:
            self.state.tick(now_ts)
        self.cursor_ts = now_ts
        self.mode = mode
        return mode

    def _mode_at(self, now_ts: float) -> str:
        """Raw while `now_ts` is inside the ring's span (a step between two samples is
        still raw), else an incident capture holding that minute, else rollups. The span
        is re-read every 30 s of wall time: the ring moves on while replay runs."""
        wall = time.monotonic()
        if self._span_read_ts is None or wall - self._span_read_ts > 30.0:
            self._span, self._span_read_ts = ring_span(self.db), wall
        span = self._span
        if span is not None and span[0] <= now_ts <= span[1] + 120.0:
            return RAW
        if capture_covers(self.db, now_ts):
            return CAPTURE
        return ROLLUPS

    def _from_rollups(self, since_ts: float, until_ts: float) -> list[tuple[str, Sample]]:
        """One sample per host per minute from the rollups whose minute began in
        [since, until) (the first step takes the minute it is in)."""
        rows = fleet_minutes(self.db, math.ceil(since_ts / 60) * 60, until_ts)
        by_minute: dict[tuple[int, str], list[GpuSample]] = defaultdict(list)
        for row in rows:
            by_minute[(row["minute_ts"], row["host"])].append(
                GpuSample(
                    index=row["gpu_index"],
                    util_gpu_pct=row["util_pct_avg"],
                    temp_c=row["temp_c_avg"],
                    power_w=row["power_w_avg"],
                    mem_used_mib=row["mem_used_mib_avg"],
                )
            )
        return [
            (host, Sample(seq=0, ts=float(minute_ts), gpus=gpus, gpu_count=len(gpus)))
            for (minute_ts, host), gpus in sorted(by_minute.items())
        ]
