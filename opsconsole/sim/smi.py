"""nvidia-smi's query output for a simulated host, in nvidia-smi's own format.

Only the query modes the console and agent use: `--query-gpu=` and
`--query-remapped-rows=` with `--format=csv[,noheader][,nounits]`. Values an H200 lacks
print "[N/A]" as a real one does; a GPU that fell off the bus gets nvidia-smi's "Unable to
determine the device handle" line instead of a row, and exit status 15; an unknown field
is refused for the whole query, like nvidia-smi does.
"""

from __future__ import annotations

from collections.abc import Callable

from opsconsole.sim import hardware as hw
from opsconsole.sim.world import SimHost

NA = "[N/A]"
EXIT_GPU_LOST = 15
EXIT_INVALID_ARGUMENT = 2


def _reasons(g: hw.SimGpu) -> str:
    return f"0x{g.clock_event_reasons:016X}"


# name -> (unit or "", value of a GPU on a host)
GPU_FIELDS: dict[str, tuple[str, Callable[[SimHost, hw.SimGpu], str]]] = {
    "index": ("", lambda h, g: str(g.index)),
    "uuid": ("", lambda h, g: g.uuid),
    "gpu_uuid": ("", lambda h, g: g.uuid),
    "name": ("", lambda h, g: hw.GPU_NAME),
    "serial": ("", lambda h, g: g.serial),
    "pci.bus_id": ("", lambda h, g: g.pci_bus_id),
    "vbios_version": ("", lambda h, g: hw.GPU_VBIOS),
    "driver_version": ("", lambda h, g: h.driver_version),
    "persistence_mode": ("", lambda h, g: "Enabled"),
    "pstate": ("", lambda h, g: "P8" if g.util_gpu_pct < 1 else "P0"),
    "utilization.gpu": ("%", lambda h, g: str(int(g.util_gpu_pct))),
    "utilization.memory": ("%", lambda h, g: str(int(g.util_mem_pct))),
    "memory.used": ("MiB", lambda h, g: str(int(g.mem_used_mib))),
    "memory.total": ("MiB", lambda h, g: str(hw.GPU_MEMORY_TOTAL_MIB)),
    "memory.free": ("MiB", lambda h, g: str(int(hw.GPU_MEMORY_TOTAL_MIB - g.mem_used_mib))),
    "temperature.gpu": ("", lambda h, g: str(round(g.temp_c))),
    "temperature.memory": ("", lambda h, g: str(round(g.temp_c + 6))),
    "power.draw": ("W", lambda h, g: f"{g.power_w:.2f}"),
    "power.limit": ("W", lambda h, g: f"{hw.GPU_POWER_LIMIT_W:.2f}"),
    "enforced.power.limit": ("W", lambda h, g: f"{hw.GPU_POWER_LIMIT_W:.2f}"),
    "clocks.sm": ("MHz", lambda h, g: str(int(g.sm_clock_mhz))),
    "clocks.gr": ("MHz", lambda h, g: str(int(g.sm_clock_mhz))),
    "clocks.mem": ("MHz", lambda h, g: str(int(g.mem_clock_mhz))),
    "clocks_event_reasons.active": ("", lambda h, g: _reasons(g)),
    "clocks_throttle_reasons.active": ("", lambda h, g: _reasons(g)),
    "ecc.errors.corrected.volatile.total": ("", lambda h, g: str(g.ecc_volatile_corrected)),
    "ecc.errors.uncorrected.volatile.total": ("", lambda h, g: str(g.ecc_volatile_uncorrected)),
    "ecc.errors.corrected.aggregate.total": ("", lambda h, g: str(g.ecc_aggregate_corrected)),
    "ecc.errors.uncorrected.aggregate.total": (
        "",
        lambda h, g: str(g.ecc_aggregate_uncorrected),
    ),
    # Hopper replaced page retirement with row remapping; SXM boards have no fan.
    "retired_pages.single_bit_ecc.count": ("", lambda h, g: NA),
    "retired_pages.double_bit.count": ("", lambda h, g: NA),
    "retired_pages.pending": ("", lambda h, g: NA),
    "fan.speed": ("%", lambda h, g: NA),
    # Idle GPUs drop their PCIe link to Gen1 to save power, as real ones do.
    "pcie.link.gen.current": ("", lambda h, g: "1" if g.util_gpu_pct < 1 else "5"),
    "pcie.link.gen.max": ("", lambda h, g: "5"),
    "pcie.link.width.current": ("", lambda h, g: "16"),
    "pcie.link.width.max": ("", lambda h, g: "16"),
    "utilization.encoder": ("%", lambda h, g: "0"),
    "utilization.decoder": ("%", lambda h, g: "0"),
    "remapped_rows.correctable": ("", lambda h, g: str(g.remap_corrected)),
    "remapped_rows.uncorrectable": ("", lambda h, g: str(g.remap_uncorrected)),
    "remapped_rows.pending": ("", lambda h, g: str(int(g.remap_pending))),
    "remapped_rows.failure": ("", lambda h, g: str(int(g.remap_failed))),
}
_REMAP_ONLY = {"gpu_uuid"} | {f for f in GPU_FIELDS if f.startswith("remapped_rows.")}


def run_nvidia_smi(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `nvidia-smi ARGS` on the simulated host."""
    query = fmt = None
    remap = False
    if argv[1:] == ["--help-query-gpu"]:
        return 0, help_query_gpu(), ""
    for arg in argv[1:]:
        if arg.startswith("--query-gpu="):
            query = arg.split("=", 1)[1]
        elif arg.startswith("--query-remapped-rows="):
            query, remap = arg.split("=", 1)[1], True
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1].split(",")
        else:
            return EXIT_INVALID_ARGUMENT, f'Invalid combination of input arguments "{arg}".\n', ""
    if query is None or fmt is None or fmt[0] != "csv":
        return EXIT_INVALID_ARGUMENT, "Only --query-* with --format=csv is simulated.\n", ""
    fields = [f.strip() for f in query.split(",") if f.strip()]
    for field in fields:
        allowed = field in GPU_FIELDS and (remap or field not in _REMAP_ONLY)
        if not allowed or (remap and field not in _REMAP_ONLY):
            return EXIT_INVALID_ARGUMENT, f'Field "{field}" is not a valid field to query.\n', ""
    units = "nounits" not in fmt
    lines = []
    if "noheader" not in fmt:
        lines.append(", ".join(_header(f, units) for f in fields))
    status = 0
    for gpu in host.gpus:
        if gpu.lost:
            lines.append(
                f"Unable to determine the device handle for GPU{gpu.pci_bus_id}: GPU is lost.  "
                "Reboot the system to recover this GPU"
            )
            status = EXIT_GPU_LOST
            continue
        lines.append(", ".join(_cell(host, gpu, f, units) for f in fields))
    return status, "\n".join(lines) + "\n", ""


def help_query_gpu() -> str:
    """`nvidia-smi --help-query-gpu` in its own shape: a quoted name, then what it is."""
    lines = ['List of valid properties to query for the switch "--query-gpu=":', ""]
    for field in GPU_FIELDS:
        if field not in _REMAP_ONLY:
            lines += [f'"{field}"', f"The {field} of the GPU.", ""]
    return "\n".join(lines) + "\n"


def _header(field: str, units: bool) -> str:
    unit = GPU_FIELDS[field][0]
    return f"{field} [{unit}]" if units and unit else field


def _cell(host: SimHost, gpu: hw.SimGpu, field: str, units: bool) -> str:
    unit, value_of = GPU_FIELDS[field]
    value = value_of(host, gpu)
    if units and unit and not value.startswith("["):
        return f"{value} {unit}" if unit != "%" else f"{value} %"
    return value
