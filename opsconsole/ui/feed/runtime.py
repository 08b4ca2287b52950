"""Process settings for a long-running console.

Why tune the garbage collector: the live state of 1,000 hosts is a few million tracked
objects, and CPython's full (generation 2) collection walks all of them, stopping every
thread, UI included, for 200–300 ms (measured with bench/ui.py). Collection of young
objects stays on, only less often, and what start-up built (config, state skeleton,
modules) is frozen out of the collector's sight. Nothing here changes what is freed,
only when the cycle collector looks.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations between generation-0 collections (CPython's default is 700)."""


def tune_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
