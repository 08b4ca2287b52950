"""Flight recorder: store growth per GPU-hour, and the cost of recording.

Simulated hosts (the real agent on the simulated NVML and sysfs) sample every 2 s for a
simulated half hour; each sample goes through the protocol decoder into TelemetryIngest
with a FlightRecorder, flushed every minute into a real SQLite file. Growth is measured
as the file's size (WAL checkpointed) with the recorder minus without it.

    .venv/bin/python bench/recorder.py [--hosts 8] [--minutes 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opsconsole.sim.backend import make_agent
from opsconsole.sim.world import SimFleet
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.store.recorder import FlightRecorder
from opsconsole.wire import decode_line


def run(hosts: int, minutes: int, with_recorder: bool, directory: Path) -> tuple[int, float]:
    start = 1_800_000_000.0
    clock = [start]
    fleet = SimFleet(hosts, seed=7, scenario="calm", start_ts=start)
    agents = {name: make_agent(host, lambda: clock[0]) for name, host in fleet.hosts.items()}
    path = directory / ("with.db" if with_recorder else "without.db")
    db = open_store(path)
    recorder = FlightRecorder(window_s=86_400) if with_recorder else None
    ingest = TelemetryIngest(db, recorder=recorder)
    spent = 0.0
    for step in range(minutes * 30):
        clock[0] = start + 2.0 * step
        fleet.advance(clock[0])
        for name, agent in agents.items():
            message = decode_line(json.dumps(agent.sample()).encode())
            began = time.process_time()
            ingest.add_sample(name, message)
            spent += time.process_time() - began
        if step % 30 == 29:
            began = time.process_time()
            ingest.flush(clock[0])
            spent += time.process_time() - began
    ingest.flush(clock[0], force=True)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return os.path.getsize(path), spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, plain_s = run(args.hosts, args.minutes, False, Path(tmp))
        recorded, recorded_s = run(args.hosts, args.minutes, True, Path(tmp))
    gpu_hours = args.hosts * 8 * args.minutes / 60
    growth = (recorded - plain) / gpu_hours
    print(f"{args.hosts} hosts x 8 GPUs, {args.minutes} min at 2 s: {gpu_hours:g} GPU-hours")
    print(f"store without recorder {plain / 1e6:.2f} MB, with {recorded / 1e6:.2f} MB")
    print(
        f"recorder growth: {growth / 1e3:.1f} kB per GPU-hour"
        f" ({growth * 8 * 24 / 1e6:.1f} MB per 8-GPU host per 24 h ring)"
    )
    print(f"ingest CPU: {plain_s:.2f} s without, {recorded_s:.2f} s with the recorder")


if __name__ == "__main__":
    main()
