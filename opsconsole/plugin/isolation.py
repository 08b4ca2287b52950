"""Each plugin's hooks run on a worker thread of its own, behind a bounded queue.

Why: a plugin is someone else's code calling someone else's server. Whoever hands it work
(the alert engine, the poller's loop) only appends to a queue and returns, so a webhook
that hangs for a minute never delays an alert's recording or a GPU reading. A call that
raises is retried with exponential backoff; one that runs past its time limit is reported
as hung (a Python thread cannot be killed: the queue fills, the oldest work is dropped and
counted, and the plugin recovers if the call ever returns). Each distinct problem is
logged once, with the plugin's name, not once per call.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("opsconsole.plugins")


@dataclass(frozen=True)
class WorkerHealth:
    state: str
    """`ok`, `retrying` (last call raised; waiting out the backoff), `hung`, `stopped`."""
    detail: str
    queued: int
    dropped: int
    failures: int
    """Calls that raised or timed out, in total."""


@dataclass
class _Call:
    hook: str
    fn: Callable[[], object]
    attempts: int = 0


class PluginWorker:
    """Runs one plugin's hooks in order on one thread, each time-limited and retried."""

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float = 10.0,
        max_queue: int = 100,
        max_attempts: int = 5,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ):
        self.name = name
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._queue: deque[_Call] = deque(maxlen=max_queue)
        self._cond = threading.Condition()
        self._stopping = False
        self._retry_at = 0.0
        self._running: tuple[str, float] | None = None
        self._hung_since: float | None = None  # the running call already reported as hung
        self._reported: set[str] = set()
        self.dropped = 0
        self.failures = 0
        self.last_problem = ""
        self._thread = threading.Thread(target=self._loop, name=f"plugin-{name}", daemon=True)
        self._thread.start()

    # --- callers (any thread): never block ---

    def submit(self, hook: str, fn: Callable[[], object], *, coalesce: bool = False) -> None:
        """Queue `fn`; with `coalesce`, a queued call of the same hook is replaced (an
        exporter needs only the newest fleet view)."""
        with self._cond:
            if self._stopping:
                return
            if coalesce:
                for call in self._queue:
                    if call.hook == hook:
                        call.fn = fn
                        return
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
                self._report_once(f"queue full ({self._queue.maxlen}): dropping the oldest work")
            self._queue.append(_Call(hook, fn))
            self._cond.notify()

    def health(self, now: float | None = None) -> WorkerHealth:
        now = time.monotonic() if now is None else now
        with self._cond:
            running, queued = self._running, len(self._queue)
            if self._stopping:
                state = "stopped"
            elif running is not None and now - running[1] > self.timeout_s:
                state = "hung"
                self._hung(*running)  # the watchdog thread may not have run yet
            elif self._retry_at > now:
                state = "retrying"
            else:
                state = "ok"
        detail = "" if state == "ok" else self.last_problem
        return WorkerHealth(state, detail, queued, self.dropped, self.failures)

    def close(self, wait_s: float = 5.0) -> bool:
        """Stop after the work already queued (within `wait_s`); False if still busy."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            while (
                self._queue or self._running is not None
            ) and self._retry_at <= time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once the queue is empty and nothing runs (for tests and `poll --once`)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # --- the worker thread ---

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._retry_at > time.monotonic()):
                    wait = self._retry_at - time.monotonic() if self._queue else None
                    self._cond.wait(wait if wait is None or wait > 0 else 0)
                if self._stopping and not self._queue:
                    return
                if self._stopping and self._retry_at > time.monotonic():
                    return  # shutting down: do not wait out a backoff
                call = self._queue.popleft()
                self._running = running = (call.hook, time.monotonic())
            watchdog = threading.Timer(self.timeout_s, self._hung, running)
            watchdog.daemon = True
            watchdog.start()
            try:
                call.fn()
                error = None
            except Exception as exc:
                error = exc
            finally:
                watchdog.cancel()
            with self._cond:
                self._running = None
                if error is None:
                    if self._retry_at or self.last_problem:
                        log.info("plugin %s: working again", self.name)
                    self._retry_at = 0.0
                    self._reported.clear()
                    self.last_problem = ""
                else:
                    self._failed(call, error)
                self._cond.notify_all()

    def _failed(self, call: _Call, error: Exception) -> None:
        self.failures += 1
        call.attempts += 1
        text = f"{call.hook} raised {type(error).__name__}: {error}"
        self.last_problem = text
        self._report_once(text)
        if call.attempts < self.max_attempts:
            self._queue.appendleft(call)
        else:
            self._report_once(f"{call.hook}: gave up after {call.attempts} attempts")
        step = self.backoff_min_s * 2 ** min(call.attempts - 1, 16)
        delay = min(self.backoff_max_s, step) * random.uniform(0.8, 1.2)
        self._retry_at = time.monotonic() + delay

    def _hung(self, hook: str, started: float) -> None:
        """Report the call started at `started` as hung, once: from its watchdog, or from
        `health()` when that sees it first (a loaded machine runs the timer late), so a
        "hung" state always comes with its reason and its log line."""
        with self._cond:
            if self._running != (hook, started) or self._hung_since == started:
                return
            self._hung_since = started
            self.failures += 1
            self.last_problem = f"{hook} has not returned after {self.timeout_s:g} s"
            self._report_once(self.last_problem)

    def _report_once(self, text: str) -> None:
        key = text.split(":")[0] if "raised" in text else text
        if key in self._reported:
            return
        self._reported.add(key)
        log.error("plugin %s: %s", self.name, text)
