"""The simulated hardware of one GPU host and how it moves from one instant to the next.

Everything here is plain state plus small step functions; the randomness comes from the
host's own `random.Random` and the time from the caller, so a seed and a sequence of
timestamps fully determine every reading (see `world.SimHost.advance`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# NVIDIA H200 SXM (HGX board), as nvidia-smi and NVML report it.
GPU_NAME = "NVIDIA H200"
GPU_MEMORY_TOTAL_MIB = 143_771
"""What nvidia-smi shows for the "141 GB" H200: 141 GiB less the driver's reservation."""
GPU_POWER_LIMIT_W = 700.0
GPU_SM_CLOCK_MAX_MHZ = 1980
GPU_SM_CLOCK_IDLE_MHZ = 345
GPU_MEM_CLOCK_MHZ = 3201
GPU_NVLINKS = 18
GPU_VBIOS = "96.00.9F.00.04"
HGX_PCI_BUSES = ("19", "3B", "4C", "5D", "9B", "BB", "CB", "DB")
"""PCI buses of the eight GPUs on an HGX H200 board, in NVML index order."""

# NVML clock-event reason bits (nvmlClocksEventReason*); the values are NVML's.
CLOCK_EVENT_GPU_IDLE = 0x1
CLOCK_EVENT_SW_POWER_CAP = 0x4
CLOCK_EVENT_SW_THERMAL = 0x20
CLOCK_EVENT_HW_THERMAL = 0x40

THERMAL_SLOWDOWN_C = 87.0
"""The GPU's own slowdown threshold; it releases a few degrees lower (hysteresis)."""
THERMAL_RELEASE_C = 83.0
TEMP_TAU_S = 30.0
"""Time constant of the die temperature following power (heat sink + coolant)."""
THERMAL_RESISTANCE_C_PER_W = 0.055
"""Die-to-inlet rise per watt: 700 W is about 38 °C above the inlet."""
RUNAWAY_HEAT_RATE_C_PER_S = 0.25
RUNAWAY_HEAT_MAX_C = 62.0
"""A failed cooling loop raises the inlet until even a throttled GPU sits above 90 °C."""

IB_DEVICES = tuple(f"mlx5_{i}" for i in range(8))
IB_RATE_FULL = (400.0, "400 Gb/sec (4X NDR)")
IB_RATE_HALF = (200.0, "200 Gb/sec (2X NDR)")
IB_RATE_DOWN = (10.0, "10 Gb/sec (4X SDR)")
"""What sysfs shows for the rate of a port that has not trained."""
IB_COUNTERS = (
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_xmit_discards",
    "port_xmit_constraint_errors",
    "port_rcv_constraint_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "VL15_dropped",
    "port_xmit_wait",
    "port_rcv_data",
    "port_xmit_data",
    "port_rcv_packets",
    "port_xmit_packets",
)
ETH_INTERFACES = (("eno1", 1000), ("ens21f0np0", 200_000))
"""(name, speed_mbps): the management port and the storage port."""
ETH_COUNTERS = (
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
)


NVLINK_LINK_GBPS = 26.562
"""What `nvidia-smi nvlink -s` prints per NVLink 4 link of an H200 (one direction)."""
NVLINK_SLOW_GBPS = 13.281
"""A link that trained at half its lanes: up, but slow."""


@dataclass(slots=True)
class NvLinkState:
    up: bool = True
    speed_gbps: float = NVLINK_LINK_GBPS
    replay_errors: int = 0
    recovery_errors: int = 0
    crc_flit_errors: int = 0
    crc_data_errors: int = 0


@dataclass(slots=True)
class SimGpu:
    index: int
    uuid: str
    serial: str
    pci_bus_id: str
    """NVML's form, "00000000:19:00.0"."""
    workload: str
    """"training", "inference" or "idle"."""
    max_draw_w: float
    """What this part would draw at 100 % if nothing capped it; varies part to part."""
    idle_w: float
    util_gpu_pct: float = 0.0
    util_mem_pct: float = 0.0
    mem_used_mib: float = 0.0
    temp_c: float = 30.0
    power_w: float = 0.0
    sm_clock_mhz: float = GPU_SM_CLOCK_IDLE_MHZ
    mem_clock_mhz: float = GPU_MEM_CLOCK_MHZ
    clock_event_reasons: int = CLOCK_EVENT_GPU_IDLE
    ecc_volatile_corrected: int = 0
    ecc_volatile_uncorrected: int = 0
    ecc_aggregate_corrected: int = 0
    ecc_aggregate_uncorrected: int = 0
    remap_corrected: int = 0
    remap_uncorrected: int = 0
    remap_pending: bool = False
    remap_failed: bool = False
    pcie_replay: int = 0
    recovery_action: int = 0
    energy_mj: float = 0.0
    """NVML's total energy counter: power integrated since the simulated driver loaded."""
    """NVML_GPU_RECOVERY_ACTION_*: what the driver asks the operator to do."""
    lost: bool = False
    extra_heat_c: float = 0.0
    cooling_failed: bool = False
    nvlinks: list[NvLinkState] = field(default_factory=list)
    processes: list[tuple[int, str, float]] = field(default_factory=list)
    """(pid, name, mem_used_mib) of compute processes."""
    hbm_faulty: bool = False
    """DCGM's memory test fails on this GPU (no ECC error counted yet)."""
    stuck_pids: set[int] = field(default_factory=set)
    """Processes that survive a kill (uninterruptible sleep in the driver)."""


@dataclass(slots=True)
class IbPort:
    device: str
    port: int = 1
    state: str = "4: ACTIVE"
    phys_state: str = "5: LinkUp"
    rate_gbps: float = IB_RATE_FULL[0]
    rate_text: str = IB_RATE_FULL[1]
    link_layer: str = "InfiniBand"
    degraded: bool = False
    bw_factor: float = 1.0
    """Share of the line rate RDMA traffic reaches (a bad cable retransmitting: the port is
    ACTIVE at full rate and only a bandwidth test shows it)."""
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IB_COUNTERS, 0))

    @property
    def up(self) -> bool:
        return self.state.endswith("ACTIVE")


@dataclass(slots=True)
class EthInterface:
    name: str
    speed_mbps: int
    operstate: str = "up"
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ETH_COUNTERS, 0))


def target_util_pct(gpu: SimGpu, rng: random.Random, now_ts: float, phase_s: float) -> float:
    """Utilisation the workload asks for now: steady training with checkpoint dips every
    half hour, inference following the local (UTC+8) day, idle at zero."""
    if gpu.workload == "training":
        if (now_ts + phase_s) % 1800.0 < 60.0:
            return 8.0 + rng.uniform(0, 4)
        return min(100.0, 95.0 + rng.gauss(0, 1.5))
    if gpu.workload == "inference":
        hour = ((now_ts / 3600.0) + 8.0) % 24.0
        daily = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4.0) / 24.0)
        return max(0.0, min(100.0, 15.0 + 65.0 * daily + rng.gauss(0, 5)))
    return 0.0


def step_gpu(
    gpu: SimGpu, rng: random.Random, now_ts: float, dt_s: float, inlet_c: float, phase_s: float
) -> None:
    """Advance one GPU by dt_s: power follows utilisation up to the limit, the clock drops
    when power or temperature caps it, the die temperature lags power (first order)."""
    if gpu.lost:
        return
    util = target_util_pct(gpu, rng, now_ts, phase_s)
    demand_w = gpu.idle_w + (gpu.max_draw_w - gpu.idle_w) * util / 100.0
    reasons = 0
    clock_scale = 1.0
    if demand_w > GPU_POWER_LIMIT_W:
        reasons |= CLOCK_EVENT_SW_POWER_CAP
        clock_scale = (GPU_POWER_LIMIT_W / demand_w) ** 0.4
        demand_w = GPU_POWER_LIMIT_W - rng.uniform(0.0, 6.0)
    hot = gpu.temp_c >= THERMAL_SLOWDOWN_C or (
        gpu.clock_event_reasons & CLOCK_EVENT_HW_THERMAL and gpu.temp_c > THERMAL_RELEASE_C
    )
    if hot:
        reasons |= CLOCK_EVENT_HW_THERMAL | CLOCK_EVENT_SW_THERMAL
        clock_scale *= 0.5
        demand_w = gpu.idle_w + (demand_w - gpu.idle_w) * 0.35
    if util < 1.0:
        reasons |= CLOCK_EVENT_GPU_IDLE
    gpu.util_gpu_pct = round(util)
    gpu.power_w = min(demand_w + rng.uniform(-2.0, 2.0), GPU_POWER_LIMIT_W)
    gpu.energy_mj += gpu.power_w * dt_s * 1000.0
    gpu.sm_clock_mhz = (
        GPU_SM_CLOCK_IDLE_MHZ if util < 1.0 else int(GPU_SM_CLOCK_MAX_MHZ * clock_scale // 15) * 15
    )
    gpu.clock_event_reasons = reasons
    if gpu.cooling_failed:
        gpu.extra_heat_c = min(
            RUNAWAY_HEAT_MAX_C, gpu.extra_heat_c + RUNAWAY_HEAT_RATE_C_PER_S * dt_s
        )
    else:
        gpu.extra_heat_c *= math.exp(-dt_s / 120.0)
    target_c = steady_temp_c(gpu, inlet_c)
    gpu.temp_c += (target_c - gpu.temp_c) * (1.0 - math.exp(-dt_s / TEMP_TAU_S))
    _step_memory(gpu, util)
    if rng.random() < dt_s / 86_400.0:  # about one corrected (single-bit) error a day
        gpu.ecc_volatile_corrected += 1
        gpu.ecc_aggregate_corrected += 1


def steady_temp_c(gpu: SimGpu, inlet_c: float) -> float:
    """Where the die temperature settles if power and cooling stay as they are now."""
    return inlet_c + gpu.extra_heat_c + gpu.power_w * THERMAL_RESISTANCE_C_PER_W


def _step_memory(gpu: SimGpu, util: float) -> None:
    if gpu.workload == "training":
        gpu.util_mem_pct = round(util * 0.5)
    elif gpu.workload == "inference":
        gpu.util_mem_pct = round(util * 0.35)
    else:
        gpu.util_mem_pct = 0
    gpu.mem_used_mib = sum(mem for _, _, mem in gpu.processes) + (
        0.0 if not gpu.processes else 512.0
    )


def step_ib_port(port: IbPort, rng: random.Random, dt_s: float, traffic_frac: float) -> None:
    """Traffic counters follow the host's training load; a degraded link keeps
    accumulating symbol errors and the odd recovery."""
    c = port.counters
    if port.up:
        bytes_per_s = traffic_frac * port.rate_gbps * 1e9 / 8.0
        words = int(bytes_per_s * dt_s / 4.0)  # *_data counters count 4-octet words
        packets = int(bytes_per_s * dt_s / 4096.0)
        c["port_rcv_data"] += words
        c["port_xmit_data"] += words + rng.randrange(0, 1024)
        c["port_rcv_packets"] += packets
        c["port_xmit_packets"] += packets
        c["port_xmit_wait"] += int(traffic_frac * 1000 * dt_s)
    if port.degraded:
        c["symbol_error"] += max(1, int(rng.expovariate(1 / 4.0) * dt_s))
        if rng.random() < dt_s / 60.0:
            c["link_error_recovery"] += 1
        if rng.random() < dt_s / 30.0:
            c["port_rcv_errors"] += 1


def step_eth(iface: EthInterface, rng: random.Random, dt_s: float, busy_frac: float) -> None:
    if iface.operstate != "up":
        return
    bytes_per_s = iface.speed_mbps * 1e6 / 8.0 * (0.02 + 0.2 * busy_frac)
    moved = int(bytes_per_s * dt_s * rng.uniform(0.9, 1.1))
    c = iface.counters
    c["rx_bytes"] += moved
    c["tx_bytes"] += moved // 3
    c["rx_packets"] += moved // 1500
    c["tx_packets"] += moved // 4500
    c["multicast"] += int(dt_s)
