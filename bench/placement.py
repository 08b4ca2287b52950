"""What placing a lease costs on a large fleet: 1,000 hosts x 8 GPUs (8,000 GPUs), 10,000
historical leases (9,200 ended, 800 active: 300 whole nodes, 500 part-used nodes), then
preview and allocate a 64-GPU whole-node lease (8 nodes) and a 3-GPU partial lease.

    .venv/bin/python bench/placement.py [--runs 20]

Each allocation is a real BEGIN IMMEDIATE transaction on a file in WAL mode, audit row
included. Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from opsconsole.config import fleet_from_dict
from opsconsole.leases import LeaseRequest, allocate_lease, create_tenant, preview_lease
from opsconsole.store import open_store
from opsconsole.store.transaction import write_transaction

NOW = 1_800_000_000.0
DAY = 86_400.0
HOSTS = 1000
GPUS = 8
PER_RACK = 16
RACKS_PER_LEAF = 4


def make_fleet(path: Path):
    racks = HOSTS // PER_RACK + (1 if HOSTS % PER_RACK else 0)
    rack_groups, host_groups = [], []
    for r in range(racks):
        site = "SG1" if r < racks // 2 else "MY1"
        rack_groups.append(
            {"names": f"r{r:03d}", "site": site, "leaf": f"leaf{r // RACKS_PER_LEAF:02d}"}
        )
        first, last = r * PER_RACK, min(HOSTS, (r + 1) * PER_RACK) - 1
        host_groups.append(
            {"names": f"r{r:03d}-n[{first:04d}-{last:04d}]", "rack": f"r{r:03d}", "class": "h200"}
        )
    return fleet_from_dict(
        {
            "sites": [{"name": "SG1"}, {"name": "MY1"}],
            "racks": rack_groups,
            "host_classes": {"h200": {"gpus": GPUS, "gpu_model": "H200"}},
            "hosts": host_groups,
        },
        path,
    )


def seed_history(db, fleet, tenants: list[str], rng: random.Random) -> int:
    """10,000 leases written in bulk (triggers still check every booking): ended ones in
    non-overlapping 10-day bands per host, and the active set described above."""
    names = [h.name for h in fleet.hosts]
    leases, slots = [], []
    lease_id = 0

    def add(host: str, indexes: range, start: float, end: float) -> None:
        nonlocal lease_id
        lease_id += 1
        kind = "nodes" if len(indexes) == GPUS else "gpus"
        leases.append(
            (lease_id, rng.choice(tenants), start, end, len(indexes), kind, NOW - 100 * DAY, "seed")
        )
        slots.extend((lease_id, host, i, start, end) for i in indexes)

    for k in range(9200):  # ended
        band = k // HOSTS
        start = NOW - (band + 1) * 10 * DAY
        count = GPUS if rng.random() < 0.5 else rng.randint(1, 4)
        add(names[k % HOSTS], range(count), start, start + rng.uniform(1, 9) * DAY)
    for h, name in enumerate(names):  # active: 300 whole, 500 part-used, 200 free
        if h % 10 < 3:
            add(name, range(GPUS), NOW - DAY, NOW + 30 * DAY)
        elif h % 10 < 8:
            add(name, range(rng.randint(1, 6)), NOW - DAY, NOW + 30 * DAY)
    with write_transaction(db, "seeding history") as tx:
        tx.executemany(
            "INSERT INTO leases (id, tenant, start_ts, end_ts, gpu_count, request, created_ts,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            leases,
        )
        tx.executemany(
            "INSERT INTO lease_slots (lease_id, host, gpu_index, start_ts, end_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            slots,
        )
    return len(leases)


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def show(label: str, ms: list[float]) -> None:
    ms_sorted = sorted(ms)
    p95 = ms_sorted[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"{label:<34} first {ms[0]:6.1f} ms   median {statistics.median(ms):6.1f} ms"
        f"   p95 {p95:6.1f} ms   max {max(ms):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "opsconsole.toml")
        db = open_store(Path(tmp) / "opsconsole.db")
        tenants = [f"tenant{i:02d}" for i in range(20)]
        for name in tenants:
            create_tenant(db, name, gpu_quota=100_000, operator="bench", now_ts=NOW)
        t0 = time.perf_counter()
        count = seed_history(db, fleet, tenants, rng)
        rows = db.conn.execute("SELECT count(*) FROM lease_slots").fetchone()[0]
        print(
            f"fleet {len(fleet.hosts)} hosts x {GPUS} GPUs; {count} leases, {rows} bookings"
            f" seeded in {time.perf_counter() - t0:.1f} s"
        )
        whole = LeaseRequest("tenant00", NOW, NOW + 7 * DAY, nodes=8)
        partial = LeaseRequest("tenant01", NOW, NOW + 7 * DAY, gpus=3)

        for request in (whole, partial):
            print(f"placement: {preview_lease(db, fleet, request, now_ts=NOW).explanation}")

        def allocate(request):
            return lambda: allocate_lease(db, fleet, request, operator="bench", now_ts=NOW)

        show(
            "preview 64 GPUs (8 whole nodes)",
            timed(lambda: preview_lease(db, fleet, whole, now_ts=NOW), args.runs),
        )
        show(
            "preview 3 GPUs (partial)",
            timed(lambda: preview_lease(db, fleet, partial, now_ts=NOW), args.runs),
        )
        show("allocate 64 GPUs (8 whole nodes)", timed(allocate(whole), args.runs))
        show("allocate 3 GPUs (partial)", timed(allocate(partial), args.runs))
        db.close()


if __name__ == "__main__":
    main()
