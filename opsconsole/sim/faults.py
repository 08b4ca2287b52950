"""The faults a simulated host can suffer, each as what it does to the hardware state, the
kernel log and NVML's event queue when it starts and when it is cleared.

The kernel lines copy the driver's real wording so the agent's own log parser is what
turns them into events. Faults named after an Xid leave that Xid in the kernel log; the
symptom-named ones (`ecc_dbe`, `row_remap_pending`) change only the counters, which is what
a host whose kernel log rotated away or was never readable looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsconsole.errors import SimError
from opsconsole.sim.hardware import (
    GPU_NVLINKS,
    IB_DEVICES,
    IB_RATE_DOWN,
    IB_RATE_FULL,
    IB_RATE_HALF,
    NVLINK_LINK_GBPS,
    NVLINK_SLOW_GBPS,
    SimGpu,
)

IB_SLOW_FACTOR = 0.46
"""A port retransmitting over a bad cable: ~180 Gb/s of RDMA on a 400 Gb/s link."""

if TYPE_CHECKING:
    from opsconsole.sim.world import SimHost

# NVML values (pynvml NVML_GPU_RECOVERY_ACTION_*, nvmlEventTypeXidCriticalError).
RECOVERY_NONE = 0
RECOVERY_GPU_RESET = 1
RECOVERY_NODE_REBOOT = 2
RECOVERY_DRAIN_AND_RESET = 4
EVENT_XID_CRITICAL = 0x8


@dataclass(frozen=True)
class Fault:
    start: Callable[[SimHost, dict[str, Any]], None]
    clear: Callable[[SimHost, dict[str, Any]], None]
    targets: tuple[str, ...]
    """Keyword arguments that pick what the fault hits: "gpu", "link", "port"."""
    description: str
    repeats: bool = False
    """An event rather than a condition: injecting it again fires it again."""


def _kernel_pci(gpu: SimGpu) -> str:
    """NVML's "00000000:19:00.0" as the driver writes it in Xid lines: "0000:19:00"."""
    return gpu.pci_bus_id[4:].rsplit(".", 1)[0]


def _xid(host: SimHost, gpu: SimGpu, code: int, text: str, pid: str = "'<unknown>'") -> None:
    name = "<unknown>" if pid.startswith("'") else "python3"
    host.log_kernel(f"NVRM: Xid (PCI:{_kernel_pci(gpu)}): {code}, pid={pid}, name={name}, {text}")
    if not gpu.lost:
        host.post_nvml_event(gpu.index, EVENT_XID_CRITICAL, code)


def _gpu_pid(gpu: SimGpu) -> str:
    return str(gpu.processes[0][0]) if gpu.processes else "'<unknown>'"


def _xid79_start(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    host.log_kernel(f"NVRM: GPU at PCI:{_kernel_pci(gpu)}: {gpu.uuid}")
    host.log_kernel(f"NVRM: GPU Board Serial Number: {gpu.serial}")
    gpu.lost = True  # before the Xid: a GPU that is gone delivers no NVML event
    _xid(host, gpu, 79, "GPU has fallen off the bus.")
    host.log_kernel(f"NVRM: GPU {gpu.pci_bus_id[4:]}: GPU has fallen off the bus.")
    gpu.recovery_action = RECOVERY_NODE_REBOOT


def _xid79_clear(host: SimHost, kw: dict[str, Any]) -> None:
    """As after the node reboot the driver asked for: the GPU is back, counters kept."""
    gpu = host.gpus[kw["gpu"]]
    gpu.lost = False
    gpu.recovery_action = RECOVERY_NONE


def _dbe_start(host: SimHost, kw: dict[str, Any], log: bool) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.ecc_volatile_uncorrected += 1
    gpu.ecc_aggregate_uncorrected += 1
    gpu.recovery_action = RECOVERY_GPU_RESET
    if log:
        _xid(
            host,
            gpu,
            48,
            "An uncorrectable double bit error (DBE) has been detected on GPU in the "
            "framebuffer at partition 6, subpartition 0.",
            pid=_gpu_pid(gpu),
        )


def _dbe_clear(host: SimHost, kw: dict[str, Any]) -> None:
    """A GPU reset: volatile counts start again, aggregate ones stay."""
    gpu = host.gpus[kw["gpu"]]
    gpu.ecc_volatile_uncorrected = 0
    gpu.ecc_volatile_corrected = 0
    gpu.recovery_action = RECOVERY_NONE


def _remap_pending_start(host: SimHost, kw: dict[str, Any], log: bool) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.remap_uncorrected += 1
    gpu.remap_pending = True
    gpu.recovery_action = RECOVERY_GPU_RESET
    if log:
        _xid(
            host,
            gpu,
            63,
            "Row Remapper: New row (0x00000000000a3c91) marked for remapping, reset gpu to "
            "activate.",
        )


def _remap_pending_clear(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.remap_pending = False
    gpu.recovery_action = RECOVERY_NONE


def _xid64_start(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.remap_failed = True
    gpu.recovery_action = RECOVERY_DRAIN_AND_RESET
    _xid(host, gpu, 64, "Row Remapper Error: New row (0x00000000000a3c92) remapping failed.")


def _xid64_clear(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.remap_failed = False
    gpu.recovery_action = RECOVERY_NONE


def _nvlink_down_start(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    link = gpu.nvlinks[kw["link"]]
    link.up = False
    link.recovery_errors += 1
    link.replay_errors += 3
    _xid(
        host,
        gpu,
        74,
        f"NVLink: fatal error detected on link {kw['link']}(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
    )


def _nvlink_down_clear(host: SimHost, kw: dict[str, Any]) -> None:
    host.gpus[kw["gpu"]].nvlinks[kw["link"]].up = True


def _ib_down_start(host: SimHost, kw: dict[str, Any]) -> None:
    port = host.ib_port(kw["port"])
    port.state, port.phys_state = "1: DOWN", "2: Polling"
    port.rate_gbps, port.rate_text = IB_RATE_DOWN
    port.counters["link_downed"] += 1
    host.log_kernel(f"mlx5_core 0000:{_ib_pci(kw['port'])}:00.0 {kw['port']}: Link down")


def _ib_down_clear(host: SimHost, kw: dict[str, Any]) -> None:
    port = host.ib_port(kw["port"])
    port.state, port.phys_state = "4: ACTIVE", "5: LinkUp"
    port.rate_gbps, port.rate_text = IB_RATE_HALF if port.degraded else IB_RATE_FULL
    host.log_kernel(f"mlx5_core 0000:{_ib_pci(kw['port'])}:00.0 {kw['port']}: Link up")


def _ib_pci(device: str) -> str:
    return f"{0x18 + 0x20 * IB_DEVICES.index(device):02x}"


def _ib_degraded_start(host: SimHost, kw: dict[str, Any]) -> None:
    port = host.ib_port(kw["port"])
    port.degraded = True
    if port.up:
        port.rate_gbps, port.rate_text = IB_RATE_HALF


def _ib_degraded_clear(host: SimHost, kw: dict[str, Any]) -> None:
    port = host.ib_port(kw["port"])
    port.degraded = False
    if port.up:
        port.rate_gbps, port.rate_text = IB_RATE_FULL


def _thermal_start(host: SimHost, kw: dict[str, Any]) -> None:
    for gpu in _gpus(host, kw):
        gpu.cooling_failed = True


def _thermal_clear(host: SimHost, kw: dict[str, Any]) -> None:
    for gpu in _gpus(host, kw):
        gpu.cooling_failed = False


def _gpus(host: SimHost, kw: dict[str, Any]) -> list[SimGpu]:
    return host.gpus if kw.get("gpu") is None else [host.gpus[kw["gpu"]]]


def _workload_start(host: SimHost, fault: str, workload: str) -> None:
    """Every GPU of the host runs `workload`; what ran before comes back on clear."""
    host.saved_workloads[fault] = [(g.workload, list(g.processes)) for g in host.gpus]
    base_pid = 30_000 + host.index * 16
    for gpu in host.gpus:
        gpu.workload = workload
        if workload == "training":
            gpu.processes = [(base_pid + gpu.index, "python3", 131_072.0)]
        else:
            gpu.processes = []


def _workload_clear(host: SimHost, fault: str) -> None:
    saved = host.saved_workloads.pop(fault, None)
    for gpu, (workload, processes) in zip(host.gpus, saved or (), strict=False):
        gpu.workload, gpu.processes = workload, processes


def _unreachable_start(host: SimHost, kw: dict[str, Any]) -> None:
    host.reachable = False


def _unreachable_clear(host: SimHost, kw: dict[str, Any]) -> None:
    host.reachable = True


def _hang_start(host: SimHost, kw: dict[str, Any]) -> None:
    host.driver_released.clear()
    host.driver_hung = True


def _hang_clear(host: SimHost, kw: dict[str, Any]) -> None:
    host.driver_hung = False
    host.driver_released.set()


def _hbm_start(host: SimHost, kw: dict[str, Any]) -> None:
    host.gpus[kw["gpu"]].hbm_faulty = True


def _hbm_clear(host: SimHost, kw: dict[str, Any]) -> None:
    host.gpus[kw["gpu"]].hbm_faulty = False


def _nvlink_slow_start(host: SimHost, kw: dict[str, Any]) -> None:
    for link in host.gpus[kw["gpu"]].nvlinks:
        link.speed_gbps = NVLINK_SLOW_GBPS


def _nvlink_slow_clear(host: SimHost, kw: dict[str, Any]) -> None:
    for link in host.gpus[kw["gpu"]].nvlinks:
        link.speed_gbps = NVLINK_LINK_GBPS


def _ib_slow_start(host: SimHost, kw: dict[str, Any]) -> None:
    host.ib_port(kw["port"]).bw_factor = IB_SLOW_FACTOR


def _ib_slow_clear(host: SimHost, kw: dict[str, Any]) -> None:
    host.ib_port(kw["port"]).bw_factor = 1.0


def _dirty_start(host: SimHost, kw: dict[str, Any]) -> None:
    """A tenant process stuck in the driver: it survives kill and blocks the GPU reset."""
    gpu = host.gpus[kw["gpu"]]
    pid = 60_000 + host.index * 16 + gpu.index
    gpu.stuck_pids.add(pid)
    gpu.processes = [*gpu.processes, (pid, "python3", 2_048.0)]


def _dirty_clear(host: SimHost, kw: dict[str, Any]) -> None:
    gpu = host.gpus[kw["gpu"]]
    gpu.processes = [p for p in gpu.processes if p[0] not in gpu.stuck_pids]
    gpu.stuck_pids.clear()


FAULTS: dict[str, Fault] = {
    "xid79": Fault(_xid79_start, _xid79_clear, ("gpu",), "GPU falls off the bus"),
    "xid48": Fault(
        lambda h, kw: _dbe_start(h, kw, True), _dbe_clear, ("gpu",), "double-bit ECC error", True
    ),
    "ecc_dbe": Fault(
        lambda h, kw: _dbe_start(h, kw, False), _dbe_clear, ("gpu",), "DBE counters only", True
    ),
    "xid63": Fault(
        lambda h, kw: _remap_pending_start(h, kw, True),
        _remap_pending_clear,
        ("gpu",),
        "row remap pending",
        True,
    ),
    "row_remap_pending": Fault(
        lambda h, kw: _remap_pending_start(h, kw, False),
        _remap_pending_clear,
        ("gpu",),
        "row remap pending, counters only",
        True,
    ),
    "xid64": Fault(_xid64_start, _xid64_clear, ("gpu",), "row remap failed"),
    "nvlink_down": Fault(_nvlink_down_start, _nvlink_down_clear, ("gpu", "link"), "NVLink down"),
    "ib_port_down": Fault(_ib_down_start, _ib_down_clear, ("port",), "IB port down"),
    "ib_degraded": Fault(_ib_degraded_start, _ib_degraded_clear, ("port",), "IB port at half rate"),
    "thermal_runaway": Fault(_thermal_start, _thermal_clear, ("gpu",), "cooling failure"),
    "full_load": Fault(
        lambda h, kw: _workload_start(h, "full_load", "training"),
        lambda h, kw: _workload_clear(h, "full_load"),
        (),
        "every GPU training flat out",
    ),
    "job_ended": Fault(
        lambda h, kw: _workload_start(h, "job_ended", "idle"),
        lambda h, kw: _workload_clear(h, "job_ended"),
        (),
        "the job ended; GPUs idle (still leased)",
    ),
    "hbm_fail": Fault(_hbm_start, _hbm_clear, ("gpu",), "HBM fails DCGM's memory test"),
    "nvlink_slow": Fault(
        _nvlink_slow_start, _nvlink_slow_clear, ("gpu",), "a GPU's NVLinks at half speed"
    ),
    "ib_slow": Fault(
        _ib_slow_start, _ib_slow_clear, ("port",), "IB port ACTIVE at full rate, RDMA at half"
    ),
    "dirty_node": Fault(
        _dirty_start, _dirty_clear, ("gpu",), "a leftover process that survives kill"
    ),
    "host_unreachable": Fault(_unreachable_start, _unreachable_clear, (), "host unreachable"),
    "driver_hang": Fault(_hang_start, _hang_clear, (), "NVML calls block"),
}


def resolve_targets(host: SimHost, name: str, kw: dict[str, Any]) -> dict[str, Any]:
    """Check the fault's keyword arguments and fill the missing ones with seeded choices, so
    `inject("xid79")` hits a definite GPU that the same seed hits again."""
    fault = FAULTS.get(name)
    if fault is None:
        raise SimError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    unknown = set(kw) - set(fault.targets)
    if unknown:
        raise SimError(f"fault {name!r} takes no {', '.join(sorted(unknown))} argument")
    out = dict(kw)
    if "gpu" in fault.targets and name != "thermal_runaway" and out.get("gpu") is None:
        out["gpu"] = host.fault_rng.randrange(len(host.gpus))
    if "gpu" in out and out["gpu"] is not None and not 0 <= out["gpu"] < len(host.gpus):
        raise SimError(f"{host.name} has no GPU {out['gpu']}")
    if "link" in fault.targets:
        out.setdefault("link", host.fault_rng.randrange(GPU_NVLINKS))
        if not 0 <= out["link"] < GPU_NVLINKS:
            raise SimError(f"{host.name} GPU {out['gpu']} has no NVLink {out['link']}")
    if "port" in fault.targets:
        out.setdefault("port", IB_DEVICES[host.fault_rng.randrange(len(IB_DEVICES))])
        if out["port"] not in IB_DEVICES:
            raise SimError(f"{host.name} has no InfiniBand device {out['port']!r}")
    return out
