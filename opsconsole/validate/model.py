"""The records a validation run produces: one `CheckResult` per tool per host (or per
pair / per run for fabric checks), rolled up into a `RunResult` with a verdict per host."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    """The tool is not installed or the check does not apply (one node, no DCGM)."""
    ERROR = "error"
    """The tool ran but its output could not be read, or SSH failed: not a pass."""


class Level(StrEnum):
    QUICK = "quick"
    STANDARD = "standard"
    LONG = "long"
    CLEAN = "clean"
    """The cleaning run after a lease: processes, GPU reset, then the quick checks."""


LEVELS = (Level.QUICK, Level.STANDARD, Level.LONG)
LEVEL_RANK = {Level.QUICK: 1, Level.CLEAN: 1, Level.STANDARD: 2, Level.LONG: 3}
"""A pass at a higher level also proves the lower ones (a clean run proves quick)."""


class RunState(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    """Could not complete (SSH down, tool output unreadable): proves nothing either way."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    """dcgm, pcie, nvlink, ib_ports, nccl_local, processes, gpu_reset, nccl_fabric, ib_write_bw"""
    hosts: tuple[str, ...]
    """The host checked; two for a pairwise test, all for a fabric run."""
    status: CheckStatus
    summary: str
    """One line an operator reads: "mlx5_3 181.2 Gb/s, expected >= 360 Gb/s"."""
    figures: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    raw: str = ""
    """The tool's stdout and stderr as received (capped)."""
    exit_status: int | None = None
    blame: tuple[str, ...] = ()
    """Hosts this failure is attributed to (a pairwise test fails both ends unless the
    other measurements tell which one is slow)."""

    def as_dict(self, raw: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        if not raw:
            out.pop("raw")
        return out


def blamed(check: CheckResult) -> tuple[str, ...]:
    """Whom a check's outcome counts against: its blame, else its host when it has one.
    A multi-node check with no blame (an all-reduce that nothing pins on one node) counts
    against the run, not against every node in it."""
    if check.blame:
        return check.blame
    return check.hosts if len(check.hosts) == 1 else ()


def host_verdicts(checks: list[CheckResult], hosts: list[str]) -> dict[str, RunState]:
    """A host fails if a check blamed on it failed; errors make it `error` (unproven)."""
    out = {}
    for host in hosts:
        mine = [c for c in checks if host in blamed(c)]
        if any(c.status == CheckStatus.FAIL for c in mine):
            out[host] = RunState.FAILED
        elif any(c.status == CheckStatus.ERROR for c in mine):
            out[host] = RunState.ERROR
        else:
            out[host] = RunState.PASSED
    return out


def failure_reason(checks: list[CheckResult], host: str) -> str:
    """The drain reason for a failed host: its failed checks' summaries."""
    lines = [
        f"{c.name}: {c.summary}"
        for c in checks
        if c.status == CheckStatus.FAIL and host in blamed(c)
    ]
    return "; ".join(lines)
