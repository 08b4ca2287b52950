"""A deterministic synthetic fleet for UI tests, snapshots and the UI benchmark: sites of
16-host racks like the simulator's, 8-GPU hosts, readings that are pure functions of
(host, GPU, sequence number), fed through the real FleetState."""

from __future__ import annotations

import zlib
from pathlib import Path

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet, fleet_from_dict
from opsconsole.wire import (
    EthInterface,
    GpuEvent,
    GpuInventory,
    GpuSample,
    Hello,
    HostFacts,
    IbPort,
    NvLinks,
    Sample,
)

T0 = 1_750_000_000.0
"""A fixed 'now' (UTC epoch seconds) for snapshot tests."""
HOSTS_PER_RACK = 16
RACKS_PER_SITE = 32


def host_name(index: int) -> str:
    rack, node = divmod(index, HOSTS_PER_RACK)
    site, rack_in_site = divmod(rack, RACKS_PER_SITE)
    return f"{('sg1', 'my1')[site]}-r{rack_in_site + 1:02d}-n{node + 1:02d}"


def synthetic_fleet(hosts: int = 32, gpus: int = 8, path: Path | None = None, **polling) -> Fleet:
    racks = (hosts + HOSTS_PER_RACK - 1) // HOSTS_PER_RACK
    sites = ["SG1"] + (["MY1"] if racks > RACKS_PER_SITE else [])
    rack_entries, host_entries = [], []
    for r in range(racks):
        site_i, rack_i = divmod(r, RACKS_PER_SITE)
        site = sites[site_i]
        rack = f"{site.lower()}-r{rack_i + 1:02d}"
        entry = {"names": rack, "site": site, "leaf": f"{site.lower()}-leaf-{rack_i // 4 + 1:02d}"}
        if r % 5 != 4:  # every fifth rack has no budget set
            entry |= {"power_budget_kw": 75.0, "host_overhead_w": 1200.0}
        rack_entries.append(entry)
        first, last = r * HOSTS_PER_RACK, min(hosts, (r + 1) * HOSTS_PER_RACK)
        host_entries.append(
            {
                "names": f"{rack}-n[{1:02d}-{last - first:02d}]",
                "rack": rack,
                "class": "hgx",
                "address": "127.0.0.1",
                "port": 20000 + r,
            }
        )
    raw = {
        "ssh": {"known_hosts": None, "use_ssh_config": False},
        "polling": {"interval_s": 2.0, "stale_after_s": 10.0, "down_after_s": 30.0, **polling},
        "sites": [{"name": s} for s in sites],
        "racks": rack_entries,
        "host_classes": {"hgx": {"gpus": gpus, "gpu_model": "NVIDIA H200", "ib_ports": 2}},
        "hosts": host_entries,
    }
    # one address per host: ports differ per host within the rack
    for group in raw["hosts"]:
        group.pop("address")
    return fleet_from_dict(raw, path or Path("/nonexistent/synthetic.toml"))


def synthetic_hello(name: str, ts: float, gpus: int = 8) -> Hello:
    return Hello(
        proto=1,
        agent_version="0.1.0",
        mode="nvml",
        ts=ts,
        host=HostFacts(hostname=name, driver_version="550.90.07", cuda_version="12.4"),
        capabilities=["nvml", "kmsg", "ib", "eth"],
        gpus=[
            GpuInventory(
                index=i,
                uuid=f"GPU-{zlib.crc32(f'{name}/{i}'.encode()):08x}-0000",
                name="NVIDIA H200",
                pci_bus_id=f"00000000:{0x19 + i:02X}:00.0",
                memory_total_mib=143771.0,
            )
            for i in range(gpus)
        ],
    )


def _gpu(host_i: int, i: int, seq: int) -> GpuSample:
    wave = (host_i * 7 + i * 13 + seq * 3) % 100
    return GpuSample(
        index=i,
        uuid=f"GPU-{host_i:04d}{i:04d}-0000",
        util_gpu_pct=float(wave),
        util_mem_pct=float(wave // 2),
        mem_used_mib=float(20_000 + wave * 1200),
        mem_total_mib=143771.0,
        temp_c=float(38 + wave * 0.45),
        power_w=float(90 + wave * 6),
        power_limit_w=700.0,
        sm_clock_mhz=1980.0 if wave > 5 else 345.0,
        mem_clock_mhz=3201.0,
        clock_event_reasons=0x1 if wave <= 5 else (0x4 if wave > 95 else 0),
        ecc_volatile_corrected=0,
        ecc_volatile_uncorrected=0,
        remap_corrected=0,
        remap_uncorrected=0,
        remap_pending=False,
        remap_failed=False,
        nvlink=nvlinks([True] * 18),
    )


def nvlinks(up: list[bool | None]) -> NvLinks:
    """A GPU's NVLinks with these link states and their error counters not read."""
    unread = [None] * len(up)
    return NvLinks(up, unread, unread, unread, unread)


def synthetic_sample(host_i: int, seq: int, ts: float, gpus: int = 8) -> Sample:
    rx = 10**12 + seq * 2_000_000_000
    return Sample(
        seq=seq,
        ts=ts,
        gpu_count=gpus,
        gpus=[_gpu(host_i, i, seq) for i in range(gpus)],
        ib=[
            IbPort(
                device=f"mlx5_{p}",
                port=1,
                state="ACTIVE",
                phys_state="LinkUp",
                rate_gbps=400.0,
                link_layer="InfiniBand",
                counters={"port_rcv_data": rx // 4, "port_xmit_data": rx // 5, "symbol_error": 0},
            )
            for p in range(2)
        ],
        eth=[
            EthInterface(
                name="eth0",
                operstate="up",
                speed_mbps=25000,
                counters={"rx_bytes": rx // 100, "tx_bytes": rx // 200, "rx_errors": 0},
            )
        ],
    )


def new_state(fleet: Fleet, now_ts: float = T0) -> FleetState:
    return FleetState.from_fleet(fleet, now_ts=now_ts)


def feed_all(state: FleetState, ts: float, seq: int, *, skip: set[str] = frozenset()) -> None:
    """Every host (but `skip`) sends a hello (first time) and a sample at `ts`."""
    for i, (name, host) in enumerate(state.hosts.items()):
        if name in skip:
            continue
        if host.hello is None:
            host.apply_hello(synthetic_hello(name, ts, host.expected_gpus), ts)
            state.changed(host, "hello")
        changed = host.apply_sample(synthetic_sample(i, seq, ts, host.expected_gpus), ts)
        state.changed(host, "status" if changed else "sample")


def xid_event(ts: float, gpu: int, code: int = 79) -> GpuEvent:
    return GpuEvent(kind="xid", code=code, ts=ts, source="kmsg", gpu=gpu, message=f"Xid {code}")


def warm_fleet(fleet: Fleet, samples: int = 5, now_ts: float = T0) -> FleetState:
    """A state where every host has `samples` samples, the last one at now_ts."""
    state = new_state(fleet, now_ts - samples * 2.0)
    for seq in range(samples):
        feed_all(state, now_ts - (samples - 1 - seq) * 2.0, seq)
    return state
