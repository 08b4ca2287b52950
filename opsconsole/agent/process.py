"""The agent process: arguments, wall-clock ticks, one JSON line per message on stdout.

Exits when stdin reaches EOF (the console closed the channel) or stdout's reader is gone
(broken pipe, exit 0). A fatal start-up problem is one `error` line and exit status 1.
"""

import argparse
import math
import os
import sys
import threading
import time

from .agent import Agent, encode
from .commands import run_command
from .kernel_log import open_kernel_log
from .sysfs import RealFs


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def _parse_args(argv):
    parser = _Parser(prog="opsconsole-agent", add_help=False)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--watchdog-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not (0.05 <= args.interval <= 3600.0):
        raise _UsageError("--interval must be between 0.05 and 3600 seconds")
    if not (0.1 <= args.watchdog_timeout <= 600.0):
        raise _UsageError("--watchdog-timeout must be between 0.1 and 600 seconds")
    return args


SOURCE_PACKAGE = "opsconsole.agent"


def _import_pynvml():
    """The pynvml the bundle carries, never one found on the host. Run from a source
    checkout (tests, bench/gpu_smoke.py) the agent has no bundled copy and takes the
    installed nvidia-ml-py. None when neither is there: nvidia-smi is the fallback."""
    import importlib
    import warnings

    package = __name__.rpartition(".")[0]
    names = [package + ".pynvml"]
    if package == SOURCE_PACKAGE:
        names.append("pynvml")
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return importlib.import_module(name)
        except Exception:
            continue
    return None


def _release_start_up_memory():
    """Compiling the bundle (pynvml is 250 kB of source) peaks at twice the agent's
    steady memory, and glibc keeps the freed heap: hand it back (glibc only; elsewhere
    nothing happens). About 10 MB less resident on Python 3.11."""
    try:
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL(None).malloc_trim(0)
    except Exception:
        pass


def _watch_stdin(stop, requests):
    """The console closing the channel shows up as EOF on stdin: stop then. Lines before
    it are requests (`wire 2`: speak the lean wire), handed to `requests`."""
    pending = b""
    try:
        fd = sys.stdin.fileno()
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            pending = (pending + chunk)[-4096:]
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                requests(line)
    except (OSError, ValueError, AttributeError):
        pass
    stop.set()


class _Requests:
    """Requests from the console, which may come before the agent exists."""

    def __init__(self):
        self.agent = None
        self.wire = None

    def __call__(self, line):
        words = line.split()
        if len(words) == 2 and words[0] == b"wire" and words[1].isdigit():
            self.wire = int(words[1])
            if self.agent is not None:
                self.agent.request_wire(self.wire)

    def attach(self, agent):
        self.agent = agent
        if self.wire is not None:
            agent.request_wire(self.wire)


def _writer(stream):
    def write(message):
        stream.write(encode(message).encode("utf-8") + b"\n")
        stream.flush()

    return write


def main(argv=None):
    """Run the agent process; returns the exit status (0 normal, 1 fatal)."""
    out = getattr(sys.stdout, "buffer", sys.stdout)
    write = _writer(out)
    try:
        try:
            args = _parse_args(sys.argv[1:] if argv is None else argv)
        except _UsageError as exc:
            write({"type": "error", "ts": time.time(), "message": "usage: %s" % exc})
            return 1
        stop = threading.Event()
        requests = _Requests()
        threading.Thread(
            target=_watch_stdin, args=(stop, requests), name="stdin", daemon=True
        ).start()
        try:
            fs = RealFs()
            agent = Agent(
                nvml=_import_pynvml(),
                fs=fs,
                kernel_log=open_kernel_log(fs, run_command),
                watchdog_timeout_s=args.watchdog_timeout,
                expected_interval_s=args.interval,
            )
        except Exception as exc:
            write(
                {"type": "error", "ts": time.time(), "message": "agent failed to start: %r" % exc}
            )
            return 1
        requests.attach(agent)
        _release_start_up_memory()
        return _loop(agent, args.interval, args.once, stop, write)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 0


def _loop(agent, interval_s, once, stop, write):
    """Sample on wall-clock multiples of the interval: no drift, missed ticks skipped."""
    while True:
        try:
            messages = agent.tick()
        except Exception as exc:  # a defect: say so on the wire, keep the host visible
            messages = [{"type": "error", "ts": time.time(), "message": "sample failed: %r" % exc}]
        for message in messages:
            write(message)
        if once:
            return 0
        now = time.time()
        next_tick = (math.floor(now / interval_s) + 1.0) * interval_s
        if stop.wait(min(next_tick - now, interval_s)):
            return 0


def _silence_stdout():
    """After a broken pipe, point stdout at /dev/null so exit does not fail to flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
