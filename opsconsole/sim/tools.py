"""The validation tools on a simulated host, printing each tool's own format: `dcgmi diag
-j` (DCGM 4 JSON), nccl-tests' `all_reduce_perf` (alone or under `mpirun` across hosts),
perftest's `ib_write_bw`, `nvidia-smi nvlink -s`, `--gpu-reset`, `--query-compute-apps`
and `kill`.

Figures follow the simulated hardware: an HGX H200 board's all-reduce plateaus near
480 GB/s over NVLink, NDR ports near 392 Gb/s in `ib_write_bw`, two or more nodes near
370 GB/s bus bandwidth. The validation faults (`hbm_fail`, `nvlink_slow`, `ib_slow`,
`dirty_node`) change what these tools measure and nothing the agent sees, which is the
point: they are the faults passive telemetry misses.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from opsconsole.sim import hardware as hw

if TYPE_CHECKING:
    from opsconsole.sim.world import SimHost

EXIT_NOT_FOUND = 127
EXIT_DCGM_FAILED = 226
"""What dcgmi returns when a test failed (DCGM_ST_NVVS_ERROR as an exit byte)."""
NVLINK_BUSBW_GBPS = 480.0
FABRIC_BUSBW_GBPS = 370.0
IB_WRITE_BW_GBPS = 392.2
"""What an NDR 400 port reaches in ib_write_bw with 64 KiB messages."""
DCGM_VERSION = "4.2.3"


def _rng(host: SimHost, what: str) -> random.Random:
    """Noise of a percent or so, different per run, fixed per host and moment."""
    return random.Random(f"{host.name}:{what}:{host.now_ts:.0f}")


# -- dcgmi -----------------------------------------------------------------------------------

_TESTS_BY_LEVEL = (
    (1, "Deployment", "software"),
    (2, "Integration", "pcie"),
    (2, "Hardware", "memory"),
    (3, "Hardware", "diagnostic"),
    (3, "Stress", "targeted_stress"),
    (3, "Stress", "targeted_power"),
    (3, "Stress", "memory_bandwidth"),
)
_MEMORY_TESTS = {"memory", "memory_bandwidth"}


def run_dcgmi(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    if len(argv) < 2 or argv[1] != "diag" or "-r" not in argv:
        return 255, "", "Usage: dcgmi diag -r <level> [-j]\n"
    try:
        level = int(argv[argv.index("-r") + 1])
    except (IndexError, ValueError):
        return 255, "", "Error: the run level must be 1, 2, 3 or 4\n"
    gpus = [g for g in host.gpus if not g.lost]
    categories: dict[str, list[dict[str, Any]]] = {}
    failed = False
    for min_level, category, name in _TESTS_BY_LEVEL:
        if level < min_level:
            continue
        results = []
        for gpu in gpus:
            result = {"entity_group": "GPU", "entity_group_id": 1, "entity_id": gpu.index}
            if gpu.hbm_faulty and name in _MEMORY_TESTS:
                failed = True
                result |= {
                    "status": "Fail",
                    "warnings": [
                        {
                            "error_category": 4,
                            "error_id": 38,
                            "error_severity": 2,
                            "warning": f"A memory mismatch was detected on GPU {gpu.index}, but"
                            " no error was reported by CUDA or NVML. Run a field diagnostic on"
                            " the GPU.",
                        }
                    ],
                }
            else:
                result["status"] = "Pass"
            results.append(result)
        summary = "Fail" if any(r["status"] == "Fail" for r in results) else "Pass"
        categories.setdefault(category, []).append(
            {"name": name, "results": results, "test_summary": {"status": summary}}
        )
    doc = {
        "DCGM Diagnostic": {
            "test_categories": [
                {"category": category, "tests": tests} for category, tests in categories.items()
            ]
        },
        "entity_groups": [
            {
                "entity_group": "GPU",
                "entity_group_id": 1,
                "entities": [
                    {"device_id": "2335", "entity_id": g.index, "serial_num": g.serial}
                    for g in gpus
                ],
            }
        ],
        "metadata": {"Driver Version Detected": host.driver_version, "version": DCGM_VERSION},
    }
    text = json.dumps(doc, indent=3) + "\n"
    if "-j" not in argv:
        text = "Successfully ran diagnostic for group.\n" + text
    return (EXIT_DCGM_FAILED if failed else 0), text, ""


# -- nvidia-smi nvlink / reset / processes ----------------------------------------------------


def run_nvlink_status(host: SimHost) -> tuple[int, str, str]:
    lines = []
    for gpu in host.gpus:
        if gpu.lost:
            continue
        lines.append(f"GPU {gpu.index}: {hw.GPU_NAME} (UUID: {gpu.uuid})")
        for i, link in enumerate(gpu.nvlinks):
            speed = f"{link.speed_gbps:.3f} GB/s" if link.up else "<inactive>"
            lines.append(f"\t Link {i}: {speed}")
    return 0, "\n".join(lines) + "\n", ""


def run_compute_apps(host: SimHost) -> tuple[int, str, str]:
    lines = [
        f"{pid}, {name}, {gpu.pci_bus_id}, {int(mem)}"
        for gpu in host.gpus
        if not gpu.lost
        for pid, name, mem in gpu.processes
    ]
    return 0, "".join(line + "\n" for line in lines), ""


def run_gpu_reset(host: SimHost) -> tuple[int, str, str]:
    busy = [g for g in host.gpus if g.processes]
    if busy:
        lines = ["The following GPUs could not be reset:"]
        lines += [f"  GPU {g.pci_bus_id}: In use by another client" for g in busy]
        lines += [
            "",
            f"{len(busy)} device{'s are' if len(busy) > 1 else ' is'} currently being used by"
            " one or more other processes (e.g., Fabric Manager, CUDA application, graphics"
            " application such as an X server, or a monitoring application such as another"
            " instance of nvidia-smi). Please first kill all processes using this device and"
            " all compute applications running in the system.",
        ]
        return 255, "\n".join(lines) + "\n", ""
    lines = [f"GPU {g.pci_bus_id} was successfully reset." for g in host.gpus if not g.lost]
    for gpu in host.gpus:
        gpu.ecc_volatile_corrected = gpu.ecc_volatile_uncorrected = 0
    return 0, "\n".join([*lines, "All done."]) + "\n", ""


def run_kill(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    """`kill [-9] PID...`: a process stuck in the driver (`dirty_node`) survives."""
    pids = []
    for word in argv[1:]:
        if word.startswith("-"):
            continue
        if not word.isdigit():
            return 1, "", f"bash: kill: {word}: arguments must be process or job IDs\n"
        pids.append(int(word))
    err = []
    found = set()
    for gpu in host.gpus:
        kept = []
        for proc in gpu.processes:
            if proc[0] in pids and proc[0] not in gpu.stuck_pids:
                found.add(proc[0])
                continue
            if proc[0] in gpu.stuck_pids:
                found.add(proc[0])
            kept.append(proc)
        gpu.processes = kept
        if not kept:
            gpu.workload = "idle"
    err = [f"bash: kill: ({pid}) - No such process\n" for pid in pids if pid not in found]
    return (1 if err else 0), "", "".join(err)


# -- nccl-tests -------------------------------------------------------------------------------

_NCCL_SIZES = [8 << 20 << i for i in range(8)]  # 8 MiB .. 1 GiB
_RAMP_B = 24 << 20
"""Message size at which all-reduce reaches half its plateau (latency-bound below)."""


def _nccl_table(
    ranks: list[tuple[str, int, str]], plateau_gbps: float, rng: random.Random, args: list[str]
) -> str:
    n = len(ranks)
    lines = [
        f"# nThread 1 nGpus {1 if n > 1 else n} minBytes {_NCCL_SIZES[0]} maxBytes"
        f" {_NCCL_SIZES[-1]} step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1"
        " validation: 1 graph: 0",
        "#",
        "# Using devices",
    ]
    for rank, (host_name, gpu_index, bus) in enumerate(ranks):
        lines.append(
            f"#  Rank {rank:2d} Group  0 Pid {400000 + rank:6d} on {host_name:>10} device"
            f" {gpu_index:2d} [0x{bus.lower()}] {hw.GPU_NAME}"
        )
    lines += [
        "#",
        "#                                                              out-of-place"
        "                       in-place          ",
        "#       size         count      type   redop    root     time   algbw   busbw"
        " #wrong     time   algbw   busbw #wrong",
        "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)"
        "            (us)  (GB/s)  (GB/s)       ",
    ]
    factor = 2.0 * (n - 1) / n if n > 1 else 1.0
    total = 0.0
    for size in _NCCL_SIZES:
        cells = []
        for _ in range(2):
            busbw = plateau_gbps * size / (size + _RAMP_B) * rng.uniform(0.985, 1.0)
            algbw = busbw / factor
            time_us = size / (algbw * 1e3) if algbw else 0.0
            cells.append((time_us, algbw, busbw))
        total += cells[0][2]
        (t1, a1, b1), (t2, a2, b2) = cells
        lines.append(
            f"{size:12d}  {size // 4:12d}     float     sum      -1  {t1:7.1f}  {a1:6.2f}"
            f"  {b1:6.2f}      0  {t2:7.1f}  {a2:6.2f}  {b2:6.2f}      0"
        )
    lines += [
        "# Out of bounds values : 0 OK",
        f"# Avg bus bandwidth    : {total / len(_NCCL_SIZES):.3f} ",
        "#",
    ]
    return "\n".join(lines) + "\n"


def _nvlink_factor(host: SimHost) -> float:
    """An all-reduce ring runs at its slowest GPU's NVLink bandwidth."""
    shares = [
        sum(link.speed_gbps for link in g.nvlinks if link.up)
        / (hw.NVLINK_LINK_GBPS * len(g.nvlinks))
        for g in host.gpus
        if not g.lost and g.nvlinks
    ]
    return min(shares, default=1.0)


def _ib_factor(host: SimHost) -> float:
    """Rail-optimised: every rail carries 1/8 of the traffic, so the slowest rail limits."""
    return min((p.bw_factor if p.up else 0.0) for p in host.ib_ports)


def run_all_reduce(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    gpus = [g for g in host.gpus if not g.lost]
    count = len(gpus)
    if "-g" in argv:
        try:
            count = int(argv[argv.index("-g") + 1])
        except (IndexError, ValueError):
            return 1, "", "Invalid value for -g\n"
    if count > len(gpus):
        return 1, "", f"Error: requested {count} GPUs but only {len(gpus)} are available\n"
    ranks = [(host.name, g.index, g.pci_bus_id[9:11]) for g in gpus[:count]]
    plateau = NVLINK_BUSBW_GBPS * _nvlink_factor(host)
    return 0, _nccl_table(ranks, plateau, _rng(host, "nccl"), argv), ""


def run_mpirun(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    """`mpirun ... -H a:8,b:8 ... all_reduce_perf ...`: one rank per GPU across hosts."""
    if "-H" not in argv or "all_reduce_perf" not in " ".join(argv):
        return 1, "", "mpirun: only `mpirun -H host:slots,... all_reduce_perf` is simulated\n"
    spec = argv[argv.index("-H") + 1]
    hosts = []
    for part in spec.split(","):
        name, _, slots = part.partition(":")
        peer = host.fleet.hosts.get(name)
        if peer is None or not peer.reachable:
            return 1, "", (
                "--------------------------------------------------------------------------\n"
                f"ORTE was unable to reliably start one or more daemons. Host: {name}\n"
            )  # fmt: skip
        hosts.append((peer, int(slots or len(peer.gpus))))
    ranks = [
        (peer.name, g.index, g.pci_bus_id[9:11])
        for peer, slots in hosts
        for g in [g for g in peer.gpus if not g.lost][:slots]
    ]
    if len(hosts) == 1:
        plateau = NVLINK_BUSBW_GBPS * _nvlink_factor(hosts[0][0])
    else:
        plateau = FABRIC_BUSBW_GBPS * min(
            min(_ib_factor(peer), _nvlink_factor(peer)) for peer, _ in hosts
        )
    return 0, _nccl_table(ranks, plateau, _rng(host, "mpirun"), argv), ""


# -- perftest ---------------------------------------------------------------------------------


def _perftest_header(device: str) -> list[str]:
    rule = "-" * 87
    return [
        rule,
        "                    RDMA_Write BW Test",
        f" Dual-port       : OFF\t\tDevice         : {device}",
        " Number of qps   : 1\t\tTransport type : IB",
        " Connection type : RC\t\tUsing SRQ      : OFF",
        " PCIe relax order: ON",
        " TX depth        : 128",
        " CQ Moderation   : 100",
        " Mtu             : 4096[B]",
        " Link type       : IB",
        " Max inline data : 0[B]",
        " rdma_cm QPs\t : OFF",
        " Data ex. method : Ethernet",
        rule,
    ]


def run_ib_write_bw(host: SimHost, argv: list[str]) -> tuple[int, str, str]:
    """Server (no destination): answers as if the client came at once. Client: the pair's
    bandwidth is the slower port's."""
    device = (
        argv[argv.index("-d") + 1]
        if "-d" in argv and argv.index("-d") + 1 < len(argv)
        else "mlx5_0"
    )
    if device not in hw.IB_DEVICES:
        return 1, "", f" IB device {device} not found\n Unable to find the Infiniband/RoCE device\n"
    positional = [
        a for i, a in enumerate(argv[1:], 1) if not a.startswith("-") and not _is_value(argv, i)
    ]
    mine = host.ib_port(device)
    factor = mine.bw_factor if mine.up else 0.0
    if positional:
        peer = host.fleet.hosts.get(positional[0])
        if peer is None or not peer.reachable:
            return (
                1,
                "",
                f"Couldn't connect to {positional[0]}:18515\n"
                "Unable to open file descriptor for socket connection\n",
            )
        theirs = peer.ib_port(device)
        factor = min(factor, theirs.bw_factor if theirs.up else 0.0)
    if factor <= 0.0:
        return 1, "", " Failed to modify QP to RTR\n Unable to Connect the HCA's through the link\n"
    rng = _rng(host, f"ib:{device}")
    avg = IB_WRITE_BW_GBPS * factor * rng.uniform(0.992, 1.0)
    gbits = "--report_gbits" in argv
    unit = "Gb" if gbits else "MB"
    shown = avg if gbits else avg * 1e9 / 8 / 1048576
    iterations = int(avg * 1e9 / 8 / 65536 * 2)
    mpps = avg * 1e9 / 8 / 65536 / 1e6
    lines = [
        *_perftest_header(device),
        f" #bytes     #iterations    BW peak[{unit}/sec]    BW average[{unit}/sec]   MsgRate[Mpps]",
        f" 65536      {iterations:<10d}       0.00               {shown:.2f}\t\t   {mpps:.6f}",
        "-" * 87,
    ]
    return 0, "\n".join(lines) + "\n", ""


_TAKES_VALUE = {"-d", "-D", "-s", "-n", "-q", "-m", "-x", "-i", "-p", "-F_unused"}


def _is_value(argv: list[str], i: int) -> bool:
    return i > 0 and argv[i - 1] in _TAKES_VALUE
