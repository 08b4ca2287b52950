"""One word per GPU for "can this GPU take work": ok, warn, fault, or unknown.

Why a single level: the fleet grid has one cell per GPU; the reason behind the level goes
to the host view. The rules are conservative: anything that needs a reset or a technician
is a fault; anything that degrades work (throttling, a pending remap, a link down) warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opsconsole.ui.view.gpu_words import FAULT_XIDS, THROTTLE_BITS
from opsconsole.wire import GpuEvent, GpuSample

HealthLevel = Literal["ok", "warn", "fault", "unknown"]

XID_RELEVANT_S = 3600.0
"""An XID older than this no longer colours the GPU (it stays listed in the host view)."""

RECOVERY_ACTIONS = {
    1: "GPU reset needed",
    2: "node reboot needed",
    3: "drain P2P",
    4: "drain and reset",
}


@dataclass(frozen=True, slots=True)
class GpuHealth:
    level: HealthLevel
    why: str = ""


UNKNOWN = GpuHealth("unknown", "host not fresh")
OK = GpuHealth("ok")


def gpu_health(gpu: GpuSample, last_xid: GpuEvent | None, now_ts: float) -> GpuHealth:
    """Health of one GPU of a FRESH host's latest sample (read raw: building Readings for
    8,000 GPUs every interval costs seconds; a host that is not fresh is UNKNOWN)."""
    if gpu.state != "ok":
        return GpuHealth("fault", f"GPU {gpu.state}")
    recent_xid = last_xid is not None and now_ts - last_xid.ts < XID_RELEVANT_S
    if recent_xid and last_xid is not None and last_xid.code in FAULT_XIDS:
        return GpuHealth("fault", f"XID {last_xid.code}")
    if (gpu.ecc_volatile_uncorrected or 0) > 0:
        return GpuHealth("fault", "uncorrectable ECC errors")
    if gpu.remap_failed:
        return GpuHealth("fault", "row remap failed")
    if gpu.recovery_action:
        action = gpu.recovery_action
        return GpuHealth("fault", RECOVERY_ACTIONS.get(action, f"recovery action {action}"))
    if gpu.remap_pending:
        return GpuHealth("warn", "row remap pending (reset to apply)")
    if gpu.retired_pages_pending:
        return GpuHealth("warn", "page retirement pending")
    links_down = gpu.nvlink.up.count(False)  # bools and nulls only: null is not down
    if links_down:
        return GpuHealth("warn", f"{links_down} NVLink{'s' if links_down > 1 else ''} down")
    if recent_xid and last_xid is not None:
        return GpuHealth("warn", f"XID {last_xid.code}")
    if (gpu.clock_event_reasons or 0) & THROTTLE_BITS:
        return GpuHealth("warn", "throttled by heat or power")
    return OK
