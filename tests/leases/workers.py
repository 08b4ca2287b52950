"""Code run in separate processes by the storm and crash tests (spawned, so importable)."""

from __future__ import annotations

import json
import random
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from opsconsole.errors import LeaseError, StoreError
from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, extend_lease
from opsconsole.store import open_store
from tests.leases.fleet import HOUR, NOW, make_fleet

TENANTS = ("acme", "globex", "initech")


def random_request(rng: random.Random, fleet) -> LeaseRequest:
    """A mix of GPU-count, whole-node and explicit-slot requests over a 10-day horizon, so
    they collide often."""
    tenant = rng.choice(TENANTS)
    start = NOW + rng.randrange(0, 240) * HOUR
    end = start + rng.randrange(1, 25) * HOUR
    kind = rng.random()
    if kind < 0.45:
        return LeaseRequest(tenant, start, end, gpus=rng.randint(1, 12))
    if kind < 0.65:
        return LeaseRequest(tenant, start, end, nodes=rng.randint(1, 2))
    host = rng.choice(fleet.hosts)
    first = rng.randrange(host.expected_gpus)
    count = rng.randint(1, host.expected_gpus - first)
    slots = tuple(GpuSlot(host.name, i) for i in range(first, first + count))
    return LeaseRequest(tenant, start, end, slots=slots)


def allocate_storm(path: str, seed: int, attempts: int, start: Event, out: str) -> None:
    """`attempts` allocations (and an extension after every tenth success) as fast as the
    write lock allows; refusals are expected, store errors are not. Writes its tallies."""
    fleet = make_fleet(Path(path).with_name("opsconsole.toml"))
    db = open_store(path, busy_timeout_s=30.0)
    rng = random.Random(seed)
    tally = {"allocated": 0, "refused": 0, "extended": 0, "store_errors": [], "gpus": 0}
    start.wait(60)
    mine: list[int] = []
    for _ in range(attempts):
        # A pause between transactions, as between operators' commands: without it the
        # process holding the write lock takes it again at once while the others sleep in
        # SQLite's busy handler, and the "storm" runs as four bursts one after another.
        time.sleep(rng.random() * 0.003)
        try:
            request = random_request(rng, fleet)
            lease = allocate_lease(db, fleet, request, operator=f"p{seed}", now_ts=NOW)
        except LeaseError:
            tally["refused"] += 1
            continue
        except StoreError as exc:
            tally["store_errors"].append(str(exc))
            continue
        tally["allocated"] += 1
        tally["gpus"] += lease.gpu_count
        mine.append(lease.id)
        if len(mine) % 10 == 0:
            try:
                lease_id = rng.choice(mine)
                new_end = NOW + rng.randrange(240, 300) * HOUR
                extend_lease(db, fleet, lease_id, new_end, operator=f"p{seed}", now_ts=NOW)
                tally["extended"] += 1
            except LeaseError:
                pass
            except StoreError as exc:
                tally["store_errors"].append(str(exc))
    db.close()
    Path(out).write_text(json.dumps(tally))


def allocate_forever(path: str, ready: Event) -> None:
    """Allocate leases in a loop until killed (windows move forward, so they keep
    succeeding and the kill lands mid-write); `ready` once 20 are committed."""
    fleet = make_fleet(Path(path).with_name("opsconsole.toml"))
    db = open_store(path)
    rng = random.Random(7)
    done = 0
    for step in range(10**9):
        start = NOW + step * HOUR / 4
        end = start + rng.randint(1, 3) * HOUR
        tenant = rng.choice(TENANTS)
        if rng.random() < 0.3:
            request = LeaseRequest(tenant, start, end, nodes=rng.randint(1, 3))
        else:
            request = LeaseRequest(tenant, start, end, gpus=rng.randint(1, 20))
        try:
            allocate_lease(db, fleet, request, operator="crasher", now_ts=NOW)
            done += 1
        except LeaseError:
            pass
        if done == 20:
            ready.set()


def allocate_then_hang_before_commit(path: str, inside: Event, committed: int) -> None:
    """Allocate `committed` leases, then one more that stops after every insert and the
    audit row, before COMMIT, and waits there to be killed."""
    from opsconsole.leases import allocate as allocate_module

    fleet = make_fleet(Path(path).with_name("opsconsole.toml"))
    db = open_store(path)
    for i in range(committed):
        request = LeaseRequest(
            "globex", NOW + i * HOUR, NOW + (i + 1) * HOUR, nodes=2, gpu_model="H200"
        )
        allocate_lease(db, fleet, request, operator="crasher", now_ts=NOW)
    real_append = allocate_module.append_audit

    def append_then_hang(*args, **kwargs):
        row_id = real_append(*args, **kwargs)
        inside.set()
        time.sleep(600)
        return row_id

    allocate_module.append_audit = append_then_hang
    request = LeaseRequest("globex", NOW, NOW + 100 * HOUR, gpus=40)
    allocate_lease(db, fleet, request, operator="crasher", now_ts=NOW)
