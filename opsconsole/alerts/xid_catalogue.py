"""What an XID code means to an operator, and what to do about it.

Why a table of our own: the alert must say "restart the job" or "drain the node and return
the part" at 3 a.m., not "XID 79". The wording here is ours, summarised from NVIDIA's
published XID table; "likely cause" is the usual first suspect, not a diagnosis. Unknown
codes get a generic entry, so a new driver's new XID still alerts instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opsconsole.config.alerts import Severity

Cause = Literal["application", "driver", "hardware", "unknown"]

RESTART_JOB = "restart the job"
RESET_GPU = "reset the GPU"
REBOOT_NODE = "reboot the node"
RETURN_PART = "drain the node and return the part"
WATCH = "watch for repeats; no action unless it recurs"


@dataclass(frozen=True, slots=True)
class XidInfo:
    code: int
    meaning: str
    cause: Cause
    action: str
    severity: Severity

    @property
    def code_class(self) -> str:
        """The alert rule family: application faults page nobody, hardware ones do."""
        return f"xid_{self.cause}"


def _x(code: int, meaning: str, cause: Cause, action: str, severity: Severity) -> XidInfo:
    return XidInfo(code, meaning, cause, action, severity)


XID_CATALOGUE: dict[int, XidInfo] = {
    x.code: x
    for x in (
        _x(
            13,
            "graphics engine exception (bad memory access or illegal instruction in a kernel)",
            "application",
            RESTART_JOB,
            Severity.INFO,
        ),
        _x(
            31,
            "GPU memory page fault (the application touched an unmapped address)",
            "application",
            RESTART_JOB,
            Severity.INFO,
        ),
        _x(
            32,
            "invalid or corrupted push buffer stream (DMA from the host was bad)",
            "driver",
            RESET_GPU,
            Severity.WARNING,
        ),
        _x(38, "driver firmware error", "driver", RESET_GPU, Severity.WARNING),
        _x(
            43,
            "GPU stopped processing (the user's context faulted; others are unaffected)",
            "application",
            RESTART_JOB,
            Severity.INFO,
        ),
        _x(
            45,
            "preemptive cleanup after a context was killed (follows another fault)",
            "application",
            RESTART_JOB,
            Severity.INFO,
        ),
        _x(
            48,
            "double-bit ECC error (uncorrectable memory error)",
            "hardware",
            RESET_GPU,
            Severity.CRITICAL,
        ),
        _x(
            61,
            "internal micro-controller breakpoint or warning",
            "driver",
            RESET_GPU,
            Severity.WARNING,
        ),
        _x(62, "internal micro-controller halt", "hardware", RESET_GPU, Severity.CRITICAL),
        _x(63, "ECC page retirement or row remap recorded", "hardware", WATCH, Severity.WARNING),
        _x(
            64,
            "ECC page retirement or row remap failed to be recorded",
            "hardware",
            RETURN_PART,
            Severity.CRITICAL,
        ),
        _x(68, "video processor exception", "driver", RESET_GPU, Severity.WARNING),
        _x(69, "graphics engine class error", "driver", RESET_GPU, Severity.WARNING),
        _x(
            74,
            "NVLink error (link fault between GPUs or to an NVSwitch)",
            "hardware",
            RESET_GPU,
            Severity.CRITICAL,
        ),
        _x(79, "GPU has fallen off the bus", "hardware", REBOOT_NODE, Severity.CRITICAL),
        _x(92, "high single-bit ECC error rate", "hardware", WATCH, Severity.WARNING),
        _x(
            94,
            "contained uncorrectable ECC error (only the affected job was hit)",
            "hardware",
            RESTART_JOB,
            Severity.WARNING,
        ),
        _x(
            95,
            "uncontained uncorrectable ECC error (all work on the GPU is suspect)",
            "hardware",
            RESET_GPU,
            Severity.CRITICAL,
        ),
        _x(119, "GSP firmware RPC timeout", "driver", RESET_GPU, Severity.CRITICAL),
        _x(120, "GSP firmware error", "driver", RESET_GPU, Severity.CRITICAL),
        _x(121, "C2C (chip-to-chip) link error", "hardware", REBOOT_NODE, Severity.CRITICAL),
        _x(140, "unrecovered ECC error in GPU memory", "hardware", RETURN_PART, Severity.CRITICAL),
    )
}


def xid_info(code: int) -> XidInfo:
    """The catalogue entry for `code`; a generic warning for codes we do not know."""
    info = XID_CATALOGUE.get(code)
    if info is not None:
        return info
    return XidInfo(
        code,
        f"XID {code} (not in opsconsole's catalogue; see NVIDIA's XID documentation)",
        "unknown",
        "check the kernel log and NVIDIA's XID documentation",
        Severity.WARNING,
    )
