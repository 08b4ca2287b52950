"""What the capacity report costs on a large fleet: 1,000 hosts x 8 GPUs, 10,000 leases
(~52 % of GPUs leased now), 4 h of minute rollups for every GPU, read from a real store
file the way the console's Capacity screen and `opsconsole capacity` read it.

    .venv/bin/python bench/capacity.py [--runs 5]

The fleet, leases and rollups are seeded as in bench/alerts.py. Prints figures only;
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from alerts import GPUS, NOW, make_fleet, seed_leases, seed_rollups  # bench/alerts.py

from opsconsole.capacity.inputs import _clock_events, _rollup_power, _usage
from opsconsole.capacity.report import build_report, read_facts
from opsconsole.leases import create_tenant
from opsconsole.store import open_store
from opsconsole.store.inventory import sync_inventory

HOUR = 3600.0


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def show(label: str, ms: list[float]) -> None:
    print(f"  {label:<52} median {statistics.median(ms):8.1f} ms   max {max(ms):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = max(1, parser.parse_args().runs)
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "opsconsole.toml")
        names = [h.name for h in fleet.hosts]
        db = open_store(Path(tmp) / "opsconsole.db")
        t0 = time.perf_counter()
        sync_inventory(db, fleet)
        tenants = [f"tenant{i:02d}" for i in range(20)]
        for name in tenants:
            create_tenant(db, name, gpu_quota=100_000, operator="bench", now_ts=NOW - 200 * 86400)
        leases = seed_leases(db, names, tenants, rng)
        leased, idle, minutes = seed_rollups(db, names, rng)
        print(
            f"{len(names)} hosts x {GPUS} GPUs, {leases} leases, {leased} GPUs leased now,"
            f" {idle} of them idle, {minutes} gpu_minute rows (4 h); seeded in"
            f" {time.perf_counter() - t0:.1f} s; {runs} runs each"
        )
        settings = fleet.config.capacity
        held = sorted(
            db.conn.execute(
                "SELECT host, gpu_index FROM lease_slots WHERE start_ts <= ? AND end_ts > ?",
                (NOW - settings.idle_hours * HOUR, NOW),
            ).fetchall()
        )
        conn = db.conn
        print("rollup aggregates (read once a minute by the screen):")
        show(
            f"utilisation, {settings.idle_hours:g} h, {len(held)} GPUs leased through it",
            timed(lambda: _usage(conn, held, NOW - settings.idle_hours * HOUR, NOW), runs),
        )
        gpus = [(h.name, i) for h in fleet.hosts for i in range(h.expected_gpus)]
        since = NOW - settings.throttle_window_h * HOUR
        show(
            f"clock events, {settings.throttle_window_h:g} h, every GPU",
            timed(lambda: _clock_events(conn, since, NOW, gpus), runs),
        )
        show(
            "rack power from rollups, 5 min, every GPU",
            timed(lambda: _rollup_power(conn, NOW - 300, NOW), runs),
        )
        print("the report:")
        facts = read_facts(db, fleet, NOW, settings.runway_days)
        show("store reads, rollups fresh", timed(lambda: read_facts(db, fleet, NOW, 28), runs))
        show(
            "store reads, rollups reused (the screen's 15 s refresh)",
            timed(lambda: read_facts(db, fleet, NOW + 15, 28, reuse=facts), runs),
        )
        show("build_report from the facts", timed(lambda: build_report(fleet, facts), runs))
        report = build_report(fleet, facts)
        print(f"  {len(report.bottlenecks)} bottlenecks ranked")
        db.close()


if __name__ == "__main__":
    main()
