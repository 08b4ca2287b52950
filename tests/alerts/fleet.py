"""A two-host fleet from the real config code and sample builders for alert tests."""

from __future__ import annotations

from pathlib import Path

from opsconsole.collect.state import FleetState
from opsconsole.config import fleet_from_dict
from opsconsole.wire import GpuEvent, GpuSample, IbPort, NvLinks, Sample

T0 = 1_750_000_000.0
HOST = "sg1-r01-n01"

RAW = {
    "sites": [{"name": "SG1"}],
    "racks": [{"names": "sg1-r01", "site": "SG1"}],
    "host_classes": {"hgx": {"gpus": 2, "gpu_model": "H200", "ib_ports": 1, "ib_rate_gbps": 400}},
    "hosts": [{"names": "sg1-r01-n[01-02]", "rack": "sg1-r01", "class": "hgx"}],
}


def fleet_state() -> FleetState:
    fleet = fleet_from_dict(RAW, Path("/nonexistent/alerts.toml"))
    return FleetState(fleet.hosts, stale_after_s=10, down_after_s=30, now_ts=T0)


# uuid None: the same UUID on two hosts is itself an alert (uuid_conflict).
def gpu(index: int, **readings: object) -> GpuSample:
    base: dict = {"temp_c": 50.0, "ecc_volatile_uncorrected": 0, "clock_event_reasons": 0}
    base["nvlink"] = NvLinks(up=[True, True], replay_errors=[None] * 2,
                             recovery_errors=[None] * 2, crc_flit_errors=[None] * 2,
                             crc_data_errors=[None] * 2)  # fmt: skip
    return GpuSample(index=index, uuid=None, **(base | readings))


def healthy(ts: float, *, gpus: list[GpuSample] | None = None, **fields: object) -> Sample:
    ib = [IbPort(device="mlx5_0", port=1, state="ACTIVE", phys_state="LinkUp", rate_gbps=400.0)]
    values: dict = {"gpu_count": 2, "gpus": gpus or [gpu(0), gpu(1)], "ib": ib}
    return Sample(seq=int(ts), ts=ts, **(values | fields))


def feed(state: FleetState, ts: float, sample: Sample | None = None, host: str = HOST) -> None:
    """Both hosts report at `ts`; `host` sends `sample` (healthy by default)."""
    for name, hs in state.hosts.items():
        hs.apply_sample(sample if (name == host and sample) else healthy(ts), ts)
    state.tick(ts)


def xid(code: int, ts: float, gpu_index: int = 0) -> GpuEvent:
    return GpuEvent(kind="xid", code=code, ts=ts, source="kmsg", gpu=gpu_index,
                    pci_bus_id=f"00000000:{0x19 + gpu_index:02X}:00.0")  # fmt: skip
