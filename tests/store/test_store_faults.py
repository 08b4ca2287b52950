"""The store when the machine fails it: a full disk, a read-only file, a SIGKILL in the
middle of ingest. Each is one clear line naming the file, never a corrupt database, and
what was committed stays committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsconsole.errors import StoreError
from opsconsole.store import TelemetryIngest, open_store
from tests.store.messages import T0, busy_sample
from tests.support.tmpfs import fill, remount_read_only, small_tmpfs

HOSTS = [f"h{i}" for i in range(8)]
GPUS = 8


def integrity(path: Path) -> str:
    db = open_store(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def add_minute(ingest: TelemetryIngest, minute: int) -> None:
    for seq in range(3):
        for host in HOSTS:
            ingest.add_sample(host, busy_sample(T0 + minute * 60 + seq * 20, seq=seq))


def test_full_disk_is_one_line_keeps_rows_in_memory_and_loses_nothing(tmp_path):
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        path = disk / "ops.db"
        db = open_store(path)
        ingest = TelemetryIngest(db)
        add_minute(ingest, 0)
        assert ingest.flush(now_ts=T0 + 120) == len(HOSTS) * GPUS
        filler = fill(disk)
        minute = 1
        with pytest.raises(StoreError) as info:
            for minute in range(1, 200):  # until the free pages inside the file run out too
                add_minute(ingest, minute)
                ingest.flush(now_ts=T0 + minute * 60 + 120)
        message = str(info.value)
        assert message.startswith(f"store {path}: ") and "disk is full" in message
        assert "\n" not in message
        pending = ingest.pending_rows
        assert pending > 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        filler.unlink()  # the operator frees space: the next flush writes what waited
        assert ingest.flush(now_ts=T0 + minute * 60 + 120) == pending
        rows = db.execute("SELECT count(*), count(DISTINCT minute_ts) FROM gpu_minute").fetchone()
        assert rows == (len(HOSTS) * GPUS * (minute + 1), minute + 1)
        db.close()
        assert integrity(path) == "ok"


@pytest.mark.slow
def test_read_only_database_is_one_line_from_poll(tmp_path):
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        config = tmp_path / "opsconsole.toml"
        config.write_text(
            f"""
[store]
path = "{disk / "ops.db"}"
[ssh]
known_hosts = "{tmp_path / "known_hosts"}"
use_ssh_config = false
[[sites]]
name = "T1"
[[racks]]
names = "t1-r01"
site = "T1"
[host_classes.g]
gpus = 1
[[hosts]]
names = "h1"
address = "127.0.0.1"
port = 9
rack = "t1-r01"
class = "g"
"""
        )
        (tmp_path / "known_hosts").write_text("")
        open_store(disk / "ops.db").close()
        remount_read_only(disk)
        out = subprocess.run(
            [sys.executable, "-m", "opsconsole", "poll", "--config", str(config), "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 1
        assert out.stderr.strip().splitlines() == [
            f"opsconsole: store {disk / 'ops.db'}: database is read-only (on a read-only mount)"
        ]


CHILD = """
import sys
from opsconsole.store import TelemetryIngest, open_store
from tests.store.messages import T0, busy_sample
db = open_store(sys.argv[1])
ingest = TelemetryIngest(db)
hosts = [f"h{i}" for i in range(8)]
minute = 0
while True:
    for seq in range(3):
        for host in hosts:
            ingest.add_sample(host, busy_sample(T0 + minute * 60 + seq * 20, seq=seq))
    ingest.flush(now_ts=T0 + minute * 60 + 60 + 11)
    print(minute, flush=True)  # this minute is committed
    minute += 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 0.013, 0.041])
def test_sigkill_during_ingest_keeps_every_committed_minute(tmp_path, delay_s):
    path = tmp_path / "ops.db"
    open_store(path).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    committed = -1
    try:
        while committed < 5:
            line = child.stdout.readline()
            assert line, "the ingesting process died on its own"
            committed = int(line)
        time.sleep(delay_s)  # land at different points of the next flush
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert integrity(path) == "ok"
    db = open_store(path)
    per_minute = db.execute(
        "SELECT minute_ts, count(*), min(util_pct_n) FROM gpu_minute GROUP BY minute_ts"
    ).fetchall()
    db.close()
    minutes = {(ts - T0) // 60: (n, least) for ts, n, least in per_minute}
    for minute in range(committed + 1):  # every minute reported committed is whole
        assert minutes[minute] == (len(HOSTS) * GPUS, 3)
    assert all(n == len(HOSTS) * GPUS for n, _ in minutes.values())  # none half-written
