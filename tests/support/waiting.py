"""Wait for a condition with a deadline, never a fixed sleep: a test is as fast as the
thing it waits for, and a slow machine makes it slower, not red."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(
    predicate: Callable[[], bool], timeout_s: float = 10.0, *, what: str = "condition"
) -> None:
    """Poll `predicate` on the running loop (state the loop's own tasks update) until it
    holds; AssertionError naming `what` past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        await asyncio.sleep(0.02)


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 10.0, *, what: str = "condition"
) -> None:
    """The same for plain threads and processes, outside an event loop."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        time.sleep(0.02)
