"""Per-second rates of raw IB / Ethernet counters over a sliding window.

Why a window and not the last two samples: error counters move in bursts of one or two,
so a two-sample rate flickers between 0 and a large number; over a window it reads as
"errors per second lately". Why checkpoints and not every sample: 1,000 hosts x ~150
counters x a sample every 2 s would keep millions of points; a handful of checkpoints per
window (each one array of running totals) gives the same answer within one checkpoint's
spacing, in a few KiB per host.

Counter resets (driver reload, `perfquery -R`, reboot) are handled like Prometheus'
`rate()`: a value below the previous one means the counter restarted from zero, so the
increase is the new value. No rate is ever negative.
"""

from __future__ import annotations

from array import array
from collections import deque

CHECKPOINTS_PER_WINDOW = 6


class CounterWindow:
    """Running totals of one port's or interface's counters, and their windowed rates."""

    __slots__ = ("_checkpoints", "_index", "_last", "_last_ts", "_names", "_totals", "window_s")

    def __init__(self, window_s: float = 30.0):
        self.window_s = window_s
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._last: dict[str, int] = {}  # the latest value of every counter seen
        self._totals = array("d")
        self._last_ts: float | None = None
        # (ts, totals at ts), oldest first; spaced at least window/CHECKPOINTS apart
        self._checkpoints: deque[tuple[float, array[float]]] = deque()

    def update(self, ts: float, counters: dict[str, int]) -> None:
        """Fold in one reading taken at `ts` (UTC epoch seconds). `counters` is kept by
        reference until the next update, so it must not be changed afterwards."""
        if self._last_ts is not None and ts <= self._last_ts:
            if ts < self._last_ts:  # the host's clock stepped back: start the window over
                self._checkpoints.clear()
                self._last_ts = None
            else:
                return  # the same reading again
        last, index, totals = self._last, self._index, self._totals
        # Hot path (every port of every host every interval): most error counters do not
        # move between samples, so only the ones that changed cost more than a compare;
        # the lean wire hands an unchanged port's very dict again, which costs nothing.
        if counters is not last:
            unseen = 0
            for name, value in counters.items():
                previous = last.get(name)
                if previous is None:
                    unseen += 1
                elif value != previous:
                    totals[index[name]] += value - previous if value > previous else value
            if unseen:
                self._add_names(counters)
            if unseen or len(counters) != len(last):  # names came or went: keep every one
                self._last = {**last, **counters}
            else:
                self._last = counters
        self._last_ts = ts
        spacing_s = self.window_s / CHECKPOINTS_PER_WINDOW
        if not self._checkpoints or ts - self._checkpoints[-1][0] >= spacing_s:
            self._checkpoints.append((ts, array("d", self._totals)))
        # keep one checkpoint at or before the window's start so the window is full
        while len(self._checkpoints) > 1 and ts - self._checkpoints[1][0] >= self.window_s:
            self._checkpoints.popleft()

    def _add_names(self, counters: dict[str, int]) -> None:
        for name in [n for n in counters if n not in self._index]:
            self._index[name] = len(self._names)
            self._names.append(name)
            self._totals.append(0.0)
            for _, totals in self._checkpoints:
                totals.append(0.0)

    def rates_per_s(self) -> dict[str, float]:
        """Increase per second of every counter since the oldest checkpoint in the window;
        empty until two readings are at least a moment apart."""
        if self._last_ts is None or not self._checkpoints:
            return {}
        start_ts, start_totals = self._checkpoints[0]
        elapsed_s = self._last_ts - start_ts
        if elapsed_s <= 0:
            return {}
        return {
            name: (self._totals[i] - start_totals[i]) / elapsed_s
            for i, name in enumerate(self._names)
        }

    def rates_of(self, names: tuple[str, ...]) -> dict[str, float]:
        """The rates of `names` only (those seen), for a check that reads a few counters
        of every port every interval (the alert rules) without building all of them."""
        if self._last_ts is None or not self._checkpoints:
            return {}
        start_ts, start_totals = self._checkpoints[0]
        elapsed_s = self._last_ts - start_ts
        if elapsed_s <= 0:
            return {}
        index, totals = self._index, self._totals
        out = {}
        for name in names:
            i = index.get(name)
            if i is not None:
                out[name] = (totals[i] - start_totals[i]) / elapsed_s
        return out

    @property
    def span_s(self) -> float:
        """Seconds the current rates are computed over."""
        if self._last_ts is None or not self._checkpoints:
            return 0.0
        return self._last_ts - self._checkpoints[0][0]
