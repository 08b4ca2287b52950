"""The real agent, wired to a simulated host instead of a GPU driver and a kernel."""

from __future__ import annotations

from collections.abc import Callable

from opsconsole.agent.agent import Agent
from opsconsole.sim.nvml import SimNvml
from opsconsole.sim.shell import run_argv
from opsconsole.sim.sysfs import SimKernelLog, SimSysfs
from opsconsole.sim.world import SimHost


def make_agent(
    host: SimHost,
    clock: Callable[[], float],
    watchdog_timeout_s: float | None = None,
    interval_s: float = 2.0,
) -> Agent:
    """An Agent reading `host`. watchdog_timeout_s=None runs NVML calls inline (cheap,
    for a driver that cannot hang); give a timeout while `driver_hang` may be active.
    Its nvidia-smi fallback runs the simulated nvidia-smi, never a real process."""
    fs = SimSysfs(host)
    return Agent(
        nvml=SimNvml(host),
        fs=fs,
        kernel_log=SimKernelLog(host),
        clock=clock,
        watchdog_timeout_s=watchdog_timeout_s,
        expected_interval_s=interval_s,
        run_command=lambda argv, timeout_s: run_argv(host, fs, list(argv)),
    )
