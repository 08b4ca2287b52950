"""Bounded waits on calls that can hang in the kernel.

An NVML or nvidia-smi call on a wedged GPU driver can block for minutes in an
uninterruptible ioctl; no Python timeout can cancel it. The watchdog runs such calls on
one long-lived worker thread and stops waiting after `timeout_s`. While the hung call is
still stuck, further calls fail at once instead of queuing behind it, so the agent keeps
sending heartbeat samples and issues no new driver calls until the driver answers again.
"""

import threading
import time

MIN_WAIT_S = 0.05
"""Even past the deadline a call gets this long: a quick call must not read as a hang."""


class DriverUnresponsive(Exception):
    """A guarded call did not return in time (or an earlier one is still stuck)."""


class _Job:
    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn, args):
        self.fn = fn
        self.args = args
        self.done = threading.Event()
        self.result = None
        self.error = None


class Watchdog:
    """Run calls on one daemon worker thread, waiting at most `timeout_s` for each.

    `Watchdog(None)` runs calls inline with no thread: the simulator uses it, where
    nothing can hang and a thread hand-off per call would only add cost. `timeout_s` may
    be changed at any time, from any thread (the simulator arms it while a driver hang is
    injected): each call reads it once, and while an earlier call is still stuck even an
    inline call fails at once rather than run into the hung driver.
    """

    def __init__(self, timeout_s, name="watchdog"):
        self._timeout_s = None
        self.timeout_s = timeout_s
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(threading.Lock())
        self._pending = None
        self._hung = None
        self._hung_since = None
        self._worker = None
        self.deadline = None
        """time.monotonic() by which a call must have returned (the agent sets one per
        sample so a hang costs no tick); None: only `timeout_s` bounds the wait."""

    @property
    def timeout_s(self):
        """Seconds to wait for a call, or None to run calls inline."""
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value):
        if value is not None:
            value = float(value)
            if not value > 0.0 or value == float("inf"):
                raise ValueError("watchdog timeout must be a positive number of seconds or None")
        self._timeout_s = value

    @property
    def busy(self):
        """True while a call that timed out has still not returned."""
        hung = self._hung
        return hung is not None and not hung.done.is_set()

    def hung_for_s(self):
        """Seconds since the stuck call started timing out, or None when not busy."""
        since = self._hung_since
        return None if since is None or not self.busy else time.monotonic() - since

    def wait_idle(self, timeout_s=None):
        """Block until a stuck call has returned (True) or timeout_s passed (False)."""
        hung = self._hung
        return True if hung is None else hung.done.wait(timeout_s)

    def call(self, fn, *args):
        """Return fn(*args), re-raise its exception, or raise DriverUnresponsive."""
        if threading.current_thread() is self._worker:
            return fn(*args)  # a guarded call nested in another
        timeout_s = self._timeout_s  # read once: another thread may change it meanwhile
        if timeout_s is None:
            self._check_not_stuck()
            return fn(*args)  # inline mode
        deadline = self.deadline
        if deadline is not None:
            timeout_s = max(MIN_WAIT_S, min(timeout_s, deadline - time.monotonic()))
        with self._lock:
            self._check_not_stuck()
            job = _Job(fn, args)
            self._submit(job)
            if not job.done.wait(timeout_s):
                self._hung = job
                self._hung_since = time.monotonic() - timeout_s
                raise DriverUnresponsive("a driver call did not return within %g s" % timeout_s)
        if job.error is not None:
            error, job.error = job.error, None
            raise error
        return job.result

    def _check_not_stuck(self):
        """Raise DriverUnresponsive while a timed-out call has still not returned."""
        hung = self._hung
        if hung is None:
            return
        if not hung.done.is_set():
            raise DriverUnresponsive(
                "a driver call has been stuck for %.0f s" % (self.hung_for_s() or 0.0)
            )
        if self._hung is hung:
            self._hung = None
            self._hung_since = None

    def _submit(self, job):
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._worker.start()
        with self._wake:
            self._pending = job
            self._wake.notify()

    def _run(self):
        while True:
            with self._wake:
                while self._pending is None:
                    self._wake.wait()
                job, self._pending = self._pending, None
            try:
                job.result = job.fn(*job.args)
            except BaseException as exc:  # handed back to the caller, never lost here
                job.error = exc
            job.done.set()
