"""Bounds on every reading a host sends, from physics and from the host's own inventory.

Why: a tenant with root writes whatever numbers it likes. The decoder already refuses NaN,
infinities (JSON has none, and msgspec refuses a number out of float range) and negative
values; what passes it can still be absurd (1e308 W on two GPUs made the rack sum `inf`
and crashed the fleet view). A reading outside its bounds is set to None with
`na[field] = "invalid: <why>"`, so it is an `invalid` Reading the operator sees, and it
never reaches a sum, a chart, the store or an alert: all of them skip None.

Counters that only grow (aggregate ECC, retired pages, remaps, PCIe replays) going down
is a reset (driver reload, GPU reset), counted and reported, never a negative rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsconsole.wire import GpuInventory, GpuSample, Sample

INVALID = "invalid"
"""Prefix of the `na` reason of a reading refused here: `na[field] = "invalid: ..."`."""

POWER_LIMIT_MULTIPLE = 2.0
"""Power may exceed the GPU's own limit briefly (transients around the limit), never by
this much: a reading above twice the limit is not a measurement."""

MAX_COUNTER = 2**53
"""Error counters beyond this are not counts (and stop being exact as floats)."""

GPU_BOUNDS: dict[str, tuple[float, float, str]] = {
    "util_gpu_pct": (0.0, 100.0, "%"),
    "util_mem_pct": (0.0, 100.0, "%"),
    # NVML: the fan speed "may exceed 100 % in certain cases"; never twice that
    "fan_pct": (0.0, 200.0, "%"),
    "temp_c": (0.0, 150.0, "°C"),  # GPUs shut down near 100 °C; a sensor fault reads ~127
    "mem_used_mib": (0.0, 4 * 1024 * 1024, "MiB"),  # 4 TiB on one GPU: none comes near
    "mem_total_mib": (0.0, 4 * 1024 * 1024, "MiB"),
    "power_w": (0.0, 5000.0, "W"),  # the largest GPU module draws ~1.4 kW
    "power_limit_w": (0.0, 5000.0, "W"),
    "sm_clock_mhz": (0.0, 5000.0, "MHz"),  # no GPU clocks its SMs near 5 GHz
    "mem_clock_mhz": (0.0, 30000.0, "MHz"),  # GDDR reports ~10.5 GHz, HBM ~2.6 GHz
    "clock_event_reasons": (0.0, 2.0**64 - 1, ""),
    "recovery_action": (0.0, 16.0, ""),  # NVML defines 0-4
    "ecc_volatile_corrected": (0.0, MAX_COUNTER, ""),
    "ecc_volatile_uncorrected": (0.0, MAX_COUNTER, ""),
    "ecc_aggregate_corrected": (0.0, MAX_COUNTER, ""),
    "ecc_aggregate_uncorrected": (0.0, MAX_COUNTER, ""),
    "remap_corrected": (0.0, MAX_COUNTER, ""),
    "remap_uncorrected": (0.0, MAX_COUNTER, ""),
    "retired_pages_sbe": (0.0, MAX_COUNTER, ""),
    "retired_pages_dbe": (0.0, MAX_COUNTER, ""),
    "pcie_replay": (0.0, MAX_COUNTER, ""),
}
_GPU_BOUNDS = tuple((name, low, high, unit) for name, (low, high, unit) in GPU_BOUNDS.items())

MONOTONIC_COUNTERS: tuple[str, ...] = (
    "ecc_aggregate_corrected",
    "ecc_aggregate_uncorrected",
    "remap_corrected",
    "remap_uncorrected",
    "retired_pages_sbe",
    "retired_pages_dbe",
    "pcie_replay",
)
"""Counters that only grow until the GPU or driver is reset."""

MAX_GPU_INDEX = 1023
"""NVML numbers GPUs from 0; a host with a thousand is not a host."""
MAX_LOAD = 1e6
MAX_COLLECT_MS = 3_600_000.0
MAX_IB_RATE_GBPS = 10_000.0
MAX_ETH_SPEED_MBPS = 10_000_000
MAX_NET_COUNTER = 2**64


@dataclass
class BoundsReport:
    """What one sample's check found: refused readings and counter resets, one line each
    (at most a few kept: a host refusing hundreds of readings shows the first)."""

    invalid: int = 0
    resets: int = 0
    lines: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        if len(self.lines) < 4:
            self.lines.append(line)

    @property
    def first(self) -> str:
        return self.lines[0] if self.lines else ""


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _refuse(gpu: GpuSample, name: str, why: str, report: BoundsReport) -> None:
    setattr(gpu, name, None)
    if len(gpu.na) < 64:
        gpu.na[name] = f"{INVALID}: {why}"[:120]
    report.invalid += 1
    report.note(f"GPU {gpu.index} {name} {why}")


def _still_refused(gpu: GpuSample, report: BoundsReport) -> None:
    """Note again the readings refused in a row the host sent unchanged, so the host's
    "invalid readings" stays as long as the reading does (as with a v1 line)."""
    if gpu.na:
        for name, reason in gpu.na.items():
            if reason.startswith(INVALID):
                report.invalid += 1
                report.note(f"GPU {gpu.index} {name} {reason[len(INVALID) + 2 :]}")


def check_gpu(
    gpu: GpuSample,
    inventory: GpuInventory | None,
    previous: GpuSample | None,
    report: BoundsReport,
) -> None:
    """Bound one GPU's readings in place; see the module docstring."""
    for name, low, high, unit in _GPU_BOUNDS:
        value = getattr(gpu, name)
        # NaN fails the comparison and every bound is finite, so no isfinite call: this
        # runs for every field of every changed GPU row
        if value is not None and not (low <= value <= high):
            shown = f"{_fmt(value)} {unit}".strip()
            _refuse(gpu, name, f"{shown} outside {_fmt(low)}..{_fmt(high)}", report)
    total = gpu.mem_total_mib
    known_total = inventory.memory_total_mib if inventory is not None else None
    if total is not None and known_total and total > known_total * 1.05 + 1:
        _refuse(gpu, "mem_total_mib", f"{_fmt(total)} MiB above the {_fmt(known_total)} MiB"
                " the host reported in its inventory", report)  # fmt: skip
        total = None
    total = total if total is not None else known_total
    if gpu.mem_used_mib is not None and total and gpu.mem_used_mib > total + 1:
        _refuse(gpu, "mem_used_mib", f"{_fmt(gpu.mem_used_mib)} MiB above its total"
                f" {_fmt(total)} MiB", report)  # fmt: skip
    limit = gpu.power_limit_w
    if gpu.power_w is not None and limit and gpu.power_w > POWER_LIMIT_MULTIPLE * limit:
        _refuse(gpu, "power_w", f"{_fmt(gpu.power_w)} W above {POWER_LIMIT_MULTIPLE:g} x its"
                f" {_fmt(limit)} W limit", report)  # fmt: skip
    if gpu.mig or gpu.processes:
        _check_parts(gpu, total, report)
    if previous is not None:
        for name in MONOTONIC_COUNTERS:
            before, now = getattr(previous, name), getattr(gpu, name)
            if before is not None and now is not None and now < before:
                report.resets += 1
                report.note(f"GPU {gpu.index} {name} reset ({before} -> {now})")


def _check_parts(gpu: GpuSample, total: float | None, report: BoundsReport) -> None:
    """MIG instances and processes: memory within the GPU's; a bad one loses its number."""
    cap = total or GPU_BOUNDS["mem_total_mib"][1]
    for mig in gpu.mig:
        for name in ("mem_used_mib", "mem_total_mib"):
            value = getattr(mig, name)
            if value is not None and not (0 <= value <= cap + 1):
                setattr(mig, name, None)
                report.invalid += 1
                report.note(f"GPU {gpu.index} MIG {mig.gi} {name} {_fmt(value)} MiB out of range")
    for proc in gpu.processes:
        value = proc.mem_used_mib
        if value is not None and not (0 <= value <= cap + 1):
            proc.mem_used_mib = None
            report.invalid += 1
            report.note(f"GPU {gpu.index} pid {proc.pid} memory {_fmt(value)} MiB out of range")


def check_sample(
    sample: Sample,
    inventory: list[GpuInventory] | None = None,
    previous: Sample | None = None,
) -> BoundsReport:
    """Bound every reading of `sample` in place against physics, the host's inventory
    (from its hello) and its previous sample; returns what was refused or reset."""
    report = BoundsReport()
    if sample.gpus and max(g.index for g in sample.gpus) > MAX_GPU_INDEX:
        kept = [g for g in sample.gpus if g.index <= MAX_GPU_INDEX]
        report.invalid += len(sample.gpus) - len(kept)
        report.note(f"{len(sample.gpus) - len(kept)} GPU(s) with an index above {MAX_GPU_INDEX}")
        sample.gpus = kept
    by_index = {g.index: g for g in inventory} if inventory else {}
    before = {g.index: g for g in previous.gpus} if previous is not None else {}
    for gpu in sample.gpus:
        last = before.get(gpu.index)
        if gpu is last:  # the lean wire's unchanged row, checked (in place) already:
            _still_refused(gpu, report)  # what it refused then is still refused now
            continue
        check_gpu(gpu, by_index.get(gpu.index), last, report)
    load = sample.load
    for name in ("load1", "load5", "load15"):
        value = getattr(load, name)
        if value is not None and not (0 <= value <= MAX_LOAD):
            setattr(load, name, None)
            report.invalid += 1
            report.note(f"{name} {_fmt(value)} out of range")
    if sample.collect_ms is not None and not (0 <= sample.collect_ms <= MAX_COLLECT_MS):
        sample.collect_ms = None
    checked = {id(p) for p in previous.ib} if previous is not None and previous.ib else ()
    for port in sample.ib:
        if id(port) in checked:  # the lean wire's unchanged port, checked already
            continue
        if port.rate_gbps is not None and not (0 <= port.rate_gbps <= MAX_IB_RATE_GBPS):
            report.invalid += 1
            report.note(f"ib {port.device}/{port.port} rate {_fmt(port.rate_gbps)} Gb/s")
            port.rate_gbps = None
        if port.counters and max(port.counters.values()) >= MAX_NET_COUNTER:
            port.counters = _bounded_counters(port.counters, f"ib {port.device}", report)
    for iface in sample.eth:
        speed = iface.speed_mbps
        if speed is not None and not (0 <= speed <= MAX_ETH_SPEED_MBPS):
            iface.speed_mbps = None  # Linux says -1 for "unknown": not worth a report
        if iface.counters and max(iface.counters.values()) >= MAX_NET_COUNTER:
            iface.counters = _bounded_counters(iface.counters, f"eth {iface.name}", report)
    return report


def _bounded_counters(counters: dict[str, int], where: str, report: BoundsReport) -> dict[str, int]:
    kept = {k: v for k, v in counters.items() if v < MAX_NET_COUNTER}
    report.invalid += len(counters) - len(kept)
    report.note(f"{where}: {len(counters) - len(kept)} counter(s) beyond 64 bits")
    return kept


def check_inventory(gpus: list[GpuInventory]) -> None:
    """A hello's memory totals bound later samples, so they are bounded first."""
    high = GPU_BOUNDS["mem_total_mib"][1]
    for gpu in gpus:
        total = gpu.memory_total_mib
        if total is not None and not (0 < total <= high):
            gpu.memory_total_mib = None
