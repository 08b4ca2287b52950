"""Ending a lease on the demo fleet: how long its nodes stay `cleaning` before `free`.

Starts `opsconsole sim serve --scenario handover` (64 hosts) as a subprocess, seeds the
demo store as `opsconsole demo --scenario handover` does (a quick run over every node,
then the leases), starts the console's handover worker (every 10 s), releases the
aurora-labs lease and prints each node-state change with its time since the release.

    .venv/bin/python bench/handover.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opsconsole.cli.demo import seed_handover_leases, stop_simulator, wait_for_ready
from opsconsole.config import load_fleet
from opsconsole.leases import list_leases, release_lease
from opsconsole.leases.handover import node_states
from opsconsole.store import open_store
from opsconsole.validate.schedule import start_handover_worker


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    work = Path(tempfile.mkdtemp(prefix="handover-bench-"))
    ready = work / "ready"
    sim = subprocess.Popen(
        [sys.executable, "-m", "opsconsole", "sim", "serve", "--hosts", "64", "--scenario",
         "handover", "--dir", str(work / "fleet"), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        fleet = load_fleet(wait_for_ready(sim, ready, work / "sim.log", 64))
        started = time.monotonic()
        seed_handover_leases(fleet.store_path, fleet, time.time())
        print(f"seed (quick run over 64 nodes + leases): {time.monotonic() - started:.1f} s")
        db = open_store(fleet.store_path)
        worker = start_handover_worker(fleet, fleet.store_path, operator="bench")
        time.sleep(1.0)  # the worker's first pass switches cleaning on
        [lease] = [le for le in list_leases(db) if le.tenant == "aurora-labs"]
        release_lease(db, lease.id, operator="bench")
        released = time.monotonic()
        seen: dict[str, str] = {}
        while time.monotonic() - released < 90:
            states = node_states(db, fleet)
            for host in lease.hosts:
                state = str(states[host].state)
                if seen.get(host) != state:
                    seen[host] = state
                    print(f"{time.monotonic() - released:6.1f} s  {host}  {state}")
            if all(s == "free" for s in seen.values()):
                break
            time.sleep(0.2)
        worker.stop()
        db.close()
    finally:
        stop_simulator(sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
