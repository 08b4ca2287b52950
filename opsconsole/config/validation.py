"""`[validation]`: what proves a node healthy before a lease starts and after it ends, the
commands each check runs, and the thresholds per host class.

Shapes and ranges only; that `classes` names known host classes and that a level exists
is checked by `opsconsole.validate.settings`, which sees the whole fleet. Without a
`[validation]` section nothing changes: no validation is required and ended leases
return their nodes at once (`required_level` and `clean_after_lease` default off)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opsconsole.config.base import Section

Level = Literal["quick", "standard", "long"]


class ClassThresholds(Section):
    """`[validation.classes.<host class>]`: what a healthy node of that class measures."""

    nccl_busbw_gbps: dict[str, float] = Field(default_factory=dict)
    """Least NCCL all-reduce bus bandwidth (GB/s, largest message) by GPUs in the run:
    `{ "8" = 420.0, "16" = 320.0 }`; a run uses the entry for the largest count <= its own."""
    ib_write_bw_gbps: float | None = Field(None, gt=0)
    """Least `ib_write_bw` average (Gb/s) per port, pairwise between nodes."""
    nvlink_link_gbps: float | None = Field(None, gt=0)
    """Least per-link NVLink speed (GB/s) as `nvidia-smi nvlink -s` reports it."""
    pcie_gen_min: int | None = Field(None, ge=1, le=7)
    """Least PCIe generation the link can train to (`pcie.link.gen.max`)."""
    pcie_width_min: int | None = Field(None, ge=1, le=32)
    """Least PCIe link width now (`pcie.link.width.current`)."""


class ValidationCommands(Section):
    """Command templates run over SSH; `{name}` fields are filled in by the runner."""

    dcgm: str = "dcgmi diag -r {dcgm_level} -j"
    pcie: str = (
        "nvidia-smi --query-gpu=index,pci.bus_id,pcie.link.gen.current,pcie.link.gen.max,"
        "pcie.link.width.current,pcie.link.width.max --format=csv,noheader,nounits"
    )
    nvlink: str = "nvidia-smi nvlink -s"
    ib_ports: str = (
        "grep -rHs . /sys/class/infiniband/*/ports/*/state /sys/class/infiniband/*/ports/*/rate"
    )
    processes: str = (
        "nvidia-smi --query-compute-apps=pid,process_name,gpu_bus_id,used_memory"
        " --format=csv,noheader,nounits"
    )
    kill: str = "kill -9 {pids}"
    gpu_reset: str = "nvidia-smi --gpu-reset"
    nccl_local: str = "all_reduce_perf -b 8M -e 1G -f 2 -g {gpus}"
    """Single-node all-reduce over NVLink."""
    nccl_fabric: str = (
        "mpirun --allow-run-as-root -np {ranks} -H {host_slots} --bind-to none"
        " all_reduce_perf -b 8M -e 1G -f 2 -g 1"
    )
    """Multi-node all-reduce, run on the first node; {host_slots} is `a:8,b:8`."""
    ib_server: str = "ib_write_bw -d {device} --report_gbits -D 2 -F"
    ib_client: str = "ib_write_bw -d {device} --report_gbits -D 2 -F {server}"


class ScheduleConfig(Section):
    """`[validation.schedule]`: checks on idle nodes, spread over racks and leaves."""

    enabled: bool = False
    level: Level = "standard"
    every_h: float = Field(168.0, gt=0)
    """A free node whose last passed run at `level` is older than this is due."""
    max_share_per_rack: float = Field(0.25, gt=0, le=1)
    """At most this share of a rack's nodes under test at once (at least one node)."""
    max_share_per_leaf: float = Field(0.25, gt=0, le=1)


class ValidationConfig(Section):
    required_level: Level | None = None
    """Level a node must have passed before a lease starts on it; unset: none required."""
    max_age_h: float = Field(168.0, gt=0)
    """How recent that pass must be."""
    clean_after_lease: bool = False
    """Ended leases send their nodes to `cleaning` (processes, reset, quick run) before free."""
    kill_leftover_processes: bool = True
    """Cleaning ends compute processes a tenant left behind before it checks."""
    dcgm_levels: dict[str, int] = Field(
        default_factory=lambda: {"quick": 1, "standard": 2, "long": 3}
    )
    """`dcgmi diag -r N` per level."""
    run_window_min: dict[str, float] = Field(
        default_factory=lambda: {"quick": 10.0, "standard": 45.0, "long": 180.0, "clean": 15.0}
    )
    """How long a run at each level may take: GPUs leased anywhere in [start, start + this)
    refuse the run, and the nodes are held out of placement for at most this long."""
    command_timeout_s: float = Field(900.0, gt=0)
    """One command over SSH; `dcgmi diag -r 3` takes tens of minutes on real nodes."""
    commands: ValidationCommands = ValidationCommands()
    classes: dict[str, ClassThresholds] = Field(default_factory=dict)
    schedule: ScheduleConfig = ScheduleConfig()
