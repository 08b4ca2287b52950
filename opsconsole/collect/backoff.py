"""Reconnect delays."""

from __future__ import annotations

import random


class Backoff:
    """Exponential reconnect delay with "equal jitter" (half fixed, half random), so 1,000
    hosts that dropped together do not all come back in the same second."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None):
        self.min_s, self.max_s = min_s, max(min_s, max_s)
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_s(self) -> float:
        cap_s = min(self.max_s, self.min_s * 2.0**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return cap_s / 2 + self._rng.uniform(0, cap_s / 2)

    def slow_s(self) -> float:
        """For failures a retry cannot fix (host key, auth): the longest delay."""
        self.attempt = 32
        return self.max_s

    def reset(self) -> None:
        self.attempt = 0
