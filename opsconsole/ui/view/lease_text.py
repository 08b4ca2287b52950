"""Leases in few characters: short times (zone named), state colours. Shared by the Leases screen,
the dialogs, the fleet grid and the host view. (Slot and GPU index ranges are the leases
layer's: `leases.slotspec.format_slots` and `format_indexes`, shared with the CLI.)"""

from __future__ import annotations

from opsconsole.leases import Lease
from opsconsole.leases.times import format_ts

STATE_STYLES = {
    "reserved": "#87afd7",
    "active": "bold #5fd75f",
    "ended": "#8a8a8a",
    "released": "#8a8a8a",
    "cancelled": "#6c6c6c",
}
DIM = "#8a8a8a"


def short_ts(ts: float | None) -> str:
    """ "06-22 15:06Z": the year is rarely in doubt on a lease table."""
    if ts is None:
        return "—"
    return format_ts(ts, "%m-%d %H:%M")


def lease_title(lease: Lease, now_ts: float) -> str:
    return f"lease {lease.id} · {lease.tenant} · {lease.gpu_count} GPUs · {lease.state(now_ts)}"
