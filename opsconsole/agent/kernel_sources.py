"""Where kernel log lines come from: /dev/kmsg, else journalctl, else dmesg.

/dev/kmsg is read without blocking from the start of the ring buffer (so XIDs raised
while no agent was connected are still seen), then only new records. The two command
sources are polled at most every POLL_EVERY_S and run under their own watchdog: a stuck
journalctl must not be mistaken for a stuck GPU driver.
"""

import errno
import os
import re
import time

from .watchdog import Watchdog

KMSG = "/dev/kmsg"
MAX_RECORDS_PER_READ = 5000
POLL_EVERY_S = 10.0
_INTERESTING = (b"NVRM", b"SXid")
_JOURNAL_LINE = re.compile(r"^([0-9]{9,11}(?:\.[0-9]+)?) \S+ [^:]*: (.*)$")
_DMESG_LINE = re.compile(r"^\[\s*([0-9]{1,10}(?:\.[0-9]+)?)\] (.*)$")


def boot_time(fs, clock=time.time):
    """Boot time in whole epoch seconds: /proc/stat's btime; else the clock less
    /proc/uptime, rounded to the second; 0.0 if neither can be read.

    Kernel-log times are this plus the record's time since boot, so a line read again
    after an agent restart gets the same time (the console recognises replays by it).
    """
    for line in (fs.read("/proc/stat", 1 << 16) or "").splitlines():
        if line.startswith("btime "):
            try:
                return float(int(line.split()[1]))
            except (IndexError, ValueError):
                break
    try:
        uptime_s = float((fs.read("/proc/uptime", 256) or "").split()[0])
    except (IndexError, ValueError):
        return 0.0
    return float(round(clock() - uptime_s))


def _since_boot(btime_s, usec):
    """btime_s (whole seconds) + usec, computed exactly: the same record, the same time."""
    return (btime_s * 1000000 + usec) / 1e6


class KmsgReader:
    """Records of /dev/kmsg: "prio,seq,usec,flags;text". usec counts from boot."""

    name = "kmsg"
    poll_every_s = 0.0

    def __init__(self, btime, path=KMSG):
        self.btime = round(btime)
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._partial = b""

    def close(self):
        os.close(self._fd)

    def read(self):
        lines = []
        for _ in range(MAX_RECORDS_PER_READ):
            try:
                chunk = os.read(self._fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten before we read them
                    continue
                break
            if not chunk:
                break
            records = (self._partial + chunk).split(b"\n")
            self._partial = records.pop()  # kmsg ends every record; a plain file may not
            for record in records:
                if record[:1] == b" " or not any(word in record for word in _INTERESTING):
                    continue
                parsed = self._parse(record)
                if parsed is not None:
                    lines.append(parsed)
        return lines

    def _parse(self, record):
        header, sep, text = record.partition(b";")
        fields = header.split(b",")
        if not sep or len(fields) < 3:
            return None
        try:
            usec = int(fields[2])
        except ValueError:
            return None
        return _since_boot(self.btime, usec), text.decode("utf-8", "replace")


class JournalReader:
    """`journalctl -k` from boot, then after the last cursor it printed."""

    name = "journal"
    poll_every_s = POLL_EVERY_S

    def __init__(self, run_command, watchdog):
        self._run_command = run_command
        self._watchdog = watchdog
        self._cursor = None

    def read(self):
        argv = ["journalctl", "-k", "-o", "short-unix", "--no-pager", "--show-cursor"]
        if self._cursor is None:
            argv += ["-b", "-n", "20000"]
        else:
            argv += ["--after-cursor=" + self._cursor, "-n", "5000"]
        rc, out, _ = self._watchdog.call(self._run_command, argv, self._watchdog.timeout_s)
        if rc != 0:
            return []
        lines = []
        for line in out.splitlines():
            if line.startswith("-- cursor: "):
                self._cursor = line[len("-- cursor: ") :].strip()
                continue
            match = _JOURNAL_LINE.match(line)
            if match is not None:
                lines.append((float(match.group(1)), match.group(2)))
        return lines


class DmesgReader:
    """`dmesg` (monotonic "[secs]" stamps), keeping only lines newer than last time."""

    name = "dmesg"
    poll_every_s = POLL_EVERY_S

    def __init__(self, run_command, watchdog, btime):
        self._run_command = run_command
        self._watchdog = watchdog
        self.btime = round(btime)
        self._last_s = -1.0

    def read(self):
        rc, out, _ = self._watchdog.call(self._run_command, ["dmesg"], self._watchdog.timeout_s)
        if rc != 0:
            return []
        lines, newest = [], self._last_s
        for line in out.splitlines():
            match = _DMESG_LINE.match(line)
            if match is None:
                continue
            secs = float(match.group(1))
            if secs > self._last_s:
                lines.append((_since_boot(self.btime, round(secs * 1e6)), match.group(2)))
                newest = max(newest, secs)
        self._last_s = newest
        return lines


def open_reader(fs, run_command, timeout_s=5.0, kmsg_path=KMSG):
    """The first source this host lets us read, or None."""
    btime = boot_time(fs)
    try:
        return KmsgReader(btime, kmsg_path)
    except OSError:
        pass
    watchdog = Watchdog(timeout_s, name="kernel-log")
    try:
        journal = JournalReader(run_command, watchdog)
        rc, out, _ = watchdog.call(
            run_command, ["journalctl", "-k", "-b", "-n", "1", "-o", "short-unix", "--no-pager"],
            timeout_s,
        )  # fmt: skip
        if rc == 0 and any(_JOURNAL_LINE.match(line) for line in out.splitlines()):
            return journal
        rc, out, _ = watchdog.call(run_command, ["dmesg"], timeout_s)
        if rc == 0 and any(_DMESG_LINE.match(line) for line in out.splitlines()):
            return DmesgReader(run_command, watchdog, btime)
    except Exception:
        pass
    return None
