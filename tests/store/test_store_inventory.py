"""Inventory from the config and from agent hellos; GPU swaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole.config import fleet_from_dict
from opsconsole.store import TelemetryIngest
from opsconsole.store.queries import gpu_slots, swaps
from tests.store.messages import FLEET, HOST, T0, hello

UUIDS = [f"GPU-aaaa-{i}" for i in range(8)]


def test_sync_inventory_upserts_sites_racks_hosts(db, fleet, ingest: TelemetryIngest):
    assert db["sites"].get("SG1")["description"] == "Singapore"
    rack = db["racks"].get("sg1-r02")
    assert (rack["site"], rack["leaf"], rack["power_budget_kw"]) == ("SG1", "leaf-01", 40.0)
    host = db["hosts"].get("sg1-r02-n03")
    assert host["site"] == "SG1" and host["rack"] == "sg1-r02"
    assert (host["host_class"], host["expected_gpus"], host["mode"]) == ("h200-8", 8, "agent")
    assert host["address"] == "sg1-r02-n03" and host["in_config"] == 1
    assert db["hosts"].count == 8


def test_resync_keeps_history_and_marks_removed_hosts(db, ingest: TelemetryIngest, tmp_path: Path):
    ingest.record_hello(HOST, hello(T0, UUIDS))
    smaller = dict(
        FLEET, hosts=[{"names": "sg1-r01-n[01-02]", "rack": "sg1-r01", "class": "h200-8"}]
    )
    ingest.sync_inventory(fleet_from_dict(smaller, tmp_path / "opsconsole.toml"))
    assert db["hosts"].count == 8  # nothing deleted
    assert db["hosts"].get("sg1-r02-n01")["in_config"] == 0
    kept = db["hosts"].get(HOST)
    assert kept["in_config"] == 1 and kept["first_seen_ts"] == T0 and kept["last_hello"]


def test_hello_records_host_facts_and_slots(db, ingest: TelemetryIngest):
    assert ingest.record_hello(HOST, hello(T0, UUIDS)) == []
    facts = json.loads(db["hosts"].get(HOST)["last_hello"])
    assert facts["agent_version"] == "0.1.0"
    assert facts["driver_version"] == "550.90.07"
    assert facts["kernel"] == "6.8.0-45-generic"
    slots = gpu_slots(db, HOST)
    assert [s["uuid"] for s in slots] == UUIDS
    assert slots[1]["pci_bus_id"] == "00000000:18:00.0" and slots[1]["model"] == "NVIDIA H200"
    ingest.record_hello(HOST, hello(T0 + 600, UUIDS, driver="560.35.03"))
    slot = gpu_slots(db, HOST)[0]
    assert (slot["first_seen_ts"], slot["last_seen_ts"]) == (T0, T0 + 600)
    assert json.loads(db["hosts"].get(HOST)["last_hello"])["driver_version"] == "560.35.03"
    assert swaps(db) == []


def test_changed_uuid_in_a_slot_is_a_swap(db, ingest: TelemetryIngest):
    ingest.record_hello(HOST, hello(T0, UUIDS))
    replaced = [*UUIDS[:5], "GPU-bbbb-new", *UUIDS[6:]]
    found = ingest.record_hello(HOST, hello(T0 + 3600, replaced))
    expected = {
        "host": HOST,
        "gpu_index": 5,
        "old_uuid": "GPU-aaaa-5",
        "new_uuid": "GPU-bbbb-new",
        "ts": T0 + 3600,
    }
    assert found == [expected]
    assert swaps(db) == [expected]
    slot = gpu_slots(db, HOST)[5]
    assert slot["uuid"] == "GPU-bbbb-new" and slot["first_seen_ts"] == T0 + 3600
    # The next hello with the same GPUs records nothing more.
    assert ingest.record_hello(HOST, hello(T0 + 4200, replaced)) == []
    assert len(swaps(db)) == 1


def test_renumbering_after_a_gpu_falls_off_is_not_a_swap(db, ingest: TelemetryIngest):
    """GPU 3 gone after a reboot: NVML numbers the other seven 0-6."""
    ingest.record_hello(HOST, hello(T0, UUIDS))
    ingest.record_hello(HOST, hello(T0 + 900, UUIDS[:3] + UUIDS[4:]))
    assert swaps(db) == []
    slots = gpu_slots(db, HOST)
    assert [s["uuid"] for s in slots[:7]] == UUIDS[:3] + UUIDS[4:]
    assert slots[7]["last_seen_ts"] == T0  # the stale slot shows when it was last seen


def test_unreadable_uuid_keeps_the_known_one(db, ingest: TelemetryIngest):
    ingest.record_hello(HOST, hello(T0, UUIDS))
    ingest.record_hello(HOST, hello(T0 + 60, [None, *UUIDS[1:]]))
    assert gpu_slots(db, HOST)[0]["uuid"] == UUIDS[0]
    assert swaps(db) == []


def test_hello_from_a_host_outside_the_config_still_stored(db, ingest: TelemetryIngest):
    ingest.record_hello("stray-host", hello(T0, UUIDS[:2]))
    assert db["hosts"].get("stray-host")["in_config"] == 0
    assert len(gpu_slots(db, "stray-host")) == 2


@pytest.mark.parametrize("host", [None, HOST])
def test_gpu_slots_query(db, ingest: TelemetryIngest, host):
    ingest.record_hello(HOST, hello(T0, UUIDS[:2]))
    ingest.record_hello("sg1-r01-n02", hello(T0, ["GPU-x"]))
    got = [(s["host"], s["gpu_index"]) for s in gpu_slots(db, host)]
    everything = [(HOST, 0), (HOST, 1), ("sg1-r01-n02", 0)]
    assert got == (everything[:2] if host else sorted(everything))
