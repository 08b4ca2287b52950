"""Inventory: sites, racks and hosts as the config declares them; GPU slots as the agents
report them, with a GPU whose UUID changes in a slot recorded as a swap.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlite_utils

from opsconsole.store.transaction import write_transaction
from opsconsole.wire import Hello

if TYPE_CHECKING:
    from opsconsole.config import Fleet


def sync_inventory(db: sqlite_utils.Database, fleet: Fleet) -> None:
    """Upsert the config's sites, racks and hosts. Hosts no longer in the config keep their
    rows and history and are marked `in_config = 0`; nothing is deleted."""
    sites: dict[str, dict[str, object]] = {
        name: {"name": name, "description": site.description, "timezone": site.timezone}
        for name, site in fleet.sites.items()
    }
    racks = [
        {"name": r.name, "site": r.site, "leaf": r.leaf, "power_budget_kw": r.power_budget_kw}
        for r in fleet.racks.values()
    ]
    for r in fleet.racks.values():  # the config checks this; the foreign key would fail
        sites.setdefault(r.site, {"name": r.site})
    hosts = [
        {
            "name": h.name,
            "site": h.site,
            "rack": h.rack,
            "address": h.address,
            "host_class": h.host_class,
            "expected_gpus": h.expected_gpus,
            "mode": h.mode,
            "in_config": 1,
        }
        for h in fleet.hosts
    ]
    names = json.dumps([h["name"] for h in hosts])
    with write_transaction(db, "inventory update") as tx:
        db.table("sites").upsert_all(sites.values(), pk="name")
        db.table("racks").upsert_all(racks, pk="name")
        db.table("hosts").upsert_all(hosts, pk="name")
        tx.execute(
            "UPDATE hosts SET in_config = 0 WHERE name NOT IN (SELECT value FROM json_each(?))",
            (names,),
        )


def hello_facts(hello: Hello) -> str:
    """What `hosts.last_hello` keeps (JSON): enough to answer "which agent, driver and
    kernel was this host running" without the per-GPU inventory."""
    facts = hello.host
    return json.dumps(
        {
            "ts": hello.ts,
            "proto": hello.proto,
            "agent_version": hello.agent_version,
            "mode": hello.mode,
            "hostname": facts.hostname,
            "kernel": facts.kernel,
            "os": facts.os,
            "python": facts.python,
            "driver_version": facts.driver_version,
            "nvml_version": facts.nvml_version,
            "cuda_version": facts.cuda_version,
            "capabilities": hello.capabilities,
            "gpu_count": len(hello.gpus),
        },
        sort_keys=True,
    )


def record_hello(
    db: sqlite_utils.Database, host_name: str, hello: Hello
) -> list[dict[str, object]]:
    """Store the host's facts and GPU slots; return the swaps detected (as gpu_swaps rows).

    A slot is swapped when its UUID changes to one this host has not had in another slot
    and the old GPU is not still present at another index: after a GPU falls off the bus
    and the host reboots, NVML renumbers the rest, which is not a swap.
    """
    ts = hello.ts
    swaps: list[dict[str, object]] = []
    with write_transaction(db, f"hello from {host_name}") as tx:
        # A host not (or no longer) in the config still gets a row: slots refer to it.
        tx.execute(
            "INSERT INTO hosts (name, in_config) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
            (host_name,),
        )
        tx.execute(
            "UPDATE hosts SET last_hello = ?, first_seen_ts = coalesce(first_seen_ts, ?),"
            " last_seen_ts = max(coalesce(last_seen_ts, ?), ?) WHERE name = ?",
            (hello_facts(hello), ts, ts, ts, host_name),
        )
        stored = dict(
            tx.execute("SELECT gpu_index, uuid FROM gpu_slots WHERE host = ?", (host_name,))
        )
        reported = {gpu.uuid for gpu in hello.gpus if gpu.uuid}
        for gpu in hello.gpus:
            old_uuid = stored.get(gpu.index)
            values = (gpu.uuid, gpu.name, gpu.serial, gpu.pci_bus_id)
            if gpu.index not in stored:
                tx.execute(
                    "INSERT INTO gpu_slots (host, gpu_index, uuid, model, serial, pci_bus_id,"
                    " first_seen_ts, last_seen_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (host_name, gpu.index, *values, ts, ts),
                )
            elif old_uuid and gpu.uuid and old_uuid != gpu.uuid:
                elsewhere = {u for i, u in stored.items() if i != gpu.index}
                if gpu.uuid not in elsewhere and old_uuid not in reported:
                    swap = {
                        "host": host_name,
                        "gpu_index": gpu.index,
                        "old_uuid": old_uuid,
                        "new_uuid": gpu.uuid,
                        "ts": ts,
                    }
                    tx.execute(
                        "INSERT INTO gpu_swaps (host, gpu_index, old_uuid, new_uuid, ts)"
                        " VALUES (:host, :gpu_index, :old_uuid, :new_uuid, :ts)",
                        swap,
                    )
                    swaps.append(swap)
                tx.execute(
                    "UPDATE gpu_slots SET uuid = ?, model = ?, serial = ?, pci_bus_id = ?,"
                    " first_seen_ts = ?, last_seen_ts = ? WHERE host = ? AND gpu_index = ?",
                    (*values, ts, ts, host_name, gpu.index),
                )
            else:
                # Same GPU (or one whose UUID could not be read): keep what we knew.
                tx.execute(
                    "UPDATE gpu_slots SET uuid = coalesce(?, uuid), model = coalesce(?, model),"
                    " serial = coalesce(?, serial), pci_bus_id = coalesce(?, pci_bus_id),"
                    " last_seen_ts = max(last_seen_ts, ?) WHERE host = ? AND gpu_index = ?",
                    (*values, ts, host_name, gpu.index),
                )
    return swaps
