"""Builders for the protocol messages the store ingests, shared with the worker processes."""

from __future__ import annotations

from opsconsole.wire import GpuEvent, GpuInventory, GpuSample, Hello, HostFacts, Sample

T0 = 1_750_000_020  # a minute boundary (divisible by 60), UTC epoch seconds

FLEET = {
    "sites": [{"name": "SG1", "description": "Singapore"}],
    "racks": [{"names": "sg1-r[01-02]", "site": "SG1", "leaf": "leaf-01", "power_budget_kw": 40.0}],
    "host_classes": {"h200-8": {"gpus": 8, "gpu_model": "H200"}},
    "hosts": [
        {"names": "sg1-r01-n[01-04]", "rack": "sg1-r01", "class": "h200-8"},
        {"names": "sg1-r02-n[01-04]", "rack": "sg1-r02", "class": "h200-8"},
    ],
}
HOST = "sg1-r01-n01"


def gpu(index: int = 0, **readings: object) -> GpuSample:
    return GpuSample(index=index, uuid=f"GPU-{index:04d}", **readings)


def sample(ts: float, *gpus: GpuSample, seq: int = 0) -> Sample:
    return Sample(seq=seq, ts=ts, gpus=list(gpus))


def busy_sample(ts: float, gpu_count: int = 8, seq: int = 0) -> Sample:
    """A realistic sample: every GPU reading present, throttled now and then."""
    return Sample(
        seq=seq,
        ts=ts,
        gpus=[
            GpuSample(
                index=i,
                uuid=f"GPU-{i:04d}",
                util_gpu_pct=float((seq * 7 + i * 13) % 101),
                util_mem_pct=40.0,
                mem_used_mib=60_000.0 + i,
                mem_total_mib=141_000.0,
                temp_c=50.0 + (seq + i) % 30,
                power_w=400.0 + (seq * 11 + i) % 300,
                power_limit_w=700.0,
                clock_event_reasons=(0x4 if (seq + i) % 5 == 0 else 0),
            )
            for i in range(gpu_count)
        ],
    )


def hello(ts: float, uuids: list[str | None], *, driver: str = "550.90.07") -> Hello:
    return Hello(
        proto=1,
        agent_version="0.1.0",
        mode="nvml",
        ts=ts,
        host=HostFacts(hostname=HOST, kernel="6.8.0-45-generic", driver_version=driver),
        capabilities=["nvml", "kmsg"],
        gpus=[
            GpuInventory(
                index=i,
                uuid=uuid,
                name="NVIDIA H200",
                serial=f"SN{i}",
                pci_bus_id=f"00000000:{0x17 + i:02X}:00.0",
            )
            for i, uuid in enumerate(uuids)
        ],
    )


def xid(ts: float, code: int = 79, bus: str = "0000:17:00", source: str = "kmsg") -> GpuEvent:
    return GpuEvent(
        kind="xid",
        code=code,
        ts=ts,
        source=source,
        pci_bus_id=bus,
        message=f"NVRM: Xid (PCI:{bus}): {code}, pid=0",
    )
