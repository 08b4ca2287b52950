"""A per-host budget of lines and bytes: what one host may make the console read.

Why: an honest agent sends one sample (and now and then a hello) per interval, a few KiB
each. A tenant with root can make its agent send thousands of lines a second, or an
endless stream of bytes, on stdout or stderr. Lines beyond the budget are dropped before
they are decoded and counted (the host view shows the count, `host_over_budget` alerts).
A host that goes on sending bytes well beyond its byte budget has its channel closed
("over budget") and is reconnected only after the slow backoff.

Why close rather than read slower: asyncssh grants the sender new window credit as soon
as data reaches its stream buffer, read or not, so a reader that pauses lets a fast
sender grow the console's buffers without bound (measured: +68 MiB a minute from one
stderr flood). Reading at once and dropping costs one `bytes.count` per 64 KiB chunk;
closing bounds what a flooder costs to `burst_intervals` of its budget per connection.

Events (XIDs from the kernel log, which a tenant can write) have a budget of their own
before the store: a sample may carry any number, but only `EVENTS_PER_INTERVAL` new ones
per interval (burst as below) reach the live state and the events table; the rest are
dropped, newest kept, and counted.

All are token buckets refilled continuously: `burst_intervals` intervals' worth may
come at once (a reconnect sends a hello, the kernel-log replay and a sample together).
"""

from __future__ import annotations

import time
from collections.abc import Callable

LINES_PER_INTERVAL = 4.0
"""Sample, hello, an error line, and slack for a late sample arriving with the next."""
BYTES_PER_INTERVAL = 256 * 1024.0
"""An honest 8-GPU sample is ~10-20 KiB; a line may be up to the 256 KiB cap."""
EVENTS_PER_INTERVAL = 4.0
"""New XID/SXID events stored per host per interval; a failing GPU logs a few, not 40."""
REPLAY_EVENTS = 256
"""New events the first sample after a hello may bring: the agent replays the kernel log
back to boot on start, at most 256 events a read (`agent.kernel_log`); after a console
restart none of them is known yet, and an honest host must not look like a flooder."""
REPLAY_EVERY_INTERVALS = 60.0
"""At most one replay allowance this often: a host that sends hello after hello (or
reconnects) must not get 256 events each time. Later replays are known events anyway."""
BURST_INTERVALS = 8.0
OVER_BUDGET = "over budget"
"""The reason shown for a host whose channel was closed for sending too much."""


class OverBudget(Exception):
    """A host sent more bytes than its budget allows, past its burst: end its channel."""


class HostBudget:
    """Token buckets for one host's lines and bytes; survives reconnects (a flooding host
    does not get a fresh budget by dropping its connection)."""

    def __init__(
        self,
        interval_s: float,
        *,
        lines_per_interval: float = LINES_PER_INTERVAL,
        bytes_per_interval: float = BYTES_PER_INTERVAL,
        events_per_interval: float = EVENTS_PER_INTERVAL,
        burst_intervals: float = BURST_INTERVALS,
        clock: Callable[[], float] = time.monotonic,
    ):
        interval_s = max(interval_s, 1e-3)
        self.line_rate = lines_per_interval / interval_s  # per second
        self.byte_rate = bytes_per_interval / interval_s
        self.line_burst = lines_per_interval * burst_intervals
        self.byte_burst = bytes_per_interval * burst_intervals
        self.event_rate = events_per_interval / interval_s
        self.event_burst = events_per_interval * burst_intervals
        self._events = self.event_burst
        self.dropped_events = 0
        self.replay_every_s = interval_s * REPLAY_EVERY_INTERVALS
        self._replay_ts: float | None = None
        self._clock = clock
        self._lines = self.line_burst
        self._bytes = self.byte_burst
        self._ts = clock()
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.over_bytes = 0
        """Bytes read beyond the byte budget's rate (the burst used up)."""
        self.channels_closed = 0
        self.last_over_ts: float | None = None
        """`clock` time of the latest drop or pause; None while the host kept within."""

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._ts
        if elapsed > 0:
            self._ts = now
            self._lines = min(self.line_burst, self._lines + elapsed * self.line_rate)
            self._bytes = min(self.byte_burst, self._bytes + elapsed * self.byte_rate)
            self._events = min(self.event_burst, self._events + elapsed * self.event_rate)

    def admit_line(self, nbytes: int) -> bool:
        """Take one line from the budget; False (and counted) when it must be dropped."""
        self._refill()
        if self._lines >= 1.0:
            self._lines -= 1.0
            return True
        self.drop_lines(1, nbytes)
        return False

    def admit_events(self, count: int, *, replay: bool = False) -> int:
        """How many of `count` new events may go on to the store; the rest are counted.
        A `replay` (the first sample after a hello) may bring up to REPLAY_EVENTS, once
        every REPLAY_EVERY_INTERVALS, and empties the bucket."""
        self._refill()
        now = self._clock()
        if replay and (self._replay_ts is None or now - self._replay_ts >= self.replay_every_s):
            self._replay_ts = now
            allowance = max(self._events, REPLAY_EVENTS)
        else:
            allowance = self._events
        admitted = min(count, int(allowance))
        self._events = max(0.0, self._events - admitted)
        if admitted < count:
            self.dropped_events += count - admitted
            self.last_over_ts = self._clock()
        return admitted

    def has_lines(self) -> bool:
        self._refill()
        return self._lines >= 1.0

    def drop_lines(self, count: int, nbytes: int) -> None:
        self.dropped_lines += count
        self.dropped_bytes += nbytes
        self.last_over_ts = self._clock()

    def charge_bytes(self, nbytes: int) -> None:
        """Charge bytes just read; raises OverBudget once the host is more than a burst
        beyond its rate (the caller ends the channel)."""
        self._refill()
        self._bytes -= nbytes
        if self._bytes >= 0:
            return
        self.over_bytes += min(nbytes, int(-self._bytes))
        self.last_over_ts = self._clock()
        if self._bytes < -self.byte_burst:
            self._bytes = 0.0  # the next connection starts empty, not in debt
            self.channels_closed += 1
            raise OverBudget(self.describe())

    def over_recently(self, within_s: float) -> bool:
        return self.last_over_ts is not None and self._clock() - self.last_over_ts < within_s

    def describe(self) -> str:
        """One line for the operator: what was dropped and how long reads were held."""
        parts = []
        if self.dropped_lines:
            kib = self.dropped_bytes / 1024
            parts.append(f"{self.dropped_lines} lines ({kib:.0f} KiB) dropped")
        if self.over_bytes:
            parts.append(f"{self.over_bytes / 2**20:.1f} MiB beyond its byte budget")
        if self.dropped_events:
            parts.append(f"{self.dropped_events} events dropped")
        if self.channels_closed:
            parts.append(f"channel closed {self.channels_closed} time(s)")
        return ", ".join(parts) or "within budget"
