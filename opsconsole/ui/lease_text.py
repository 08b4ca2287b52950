"""Leases in few characters: GPU index ranges, slots per host, short UTC times, state
colours. Shared by the Leases screen, the dialogs, the fleet grid and the host view."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import hostlist

from opsconsole.leases import GpuSlot, Lease

STATE_STYLES = {
    "reserved": "#87afd7",
    "active": "bold #5fd75f",
    "ended": "#8a8a8a",
    "released": "#8a8a8a",
    "cancelled": "#6c6c6c",
}
DIM = "#8a8a8a"


def index_ranges(indexes: Iterable[int]) -> str:
    """[0, 1, 2, 3, 6] → "0-3,6"."""
    runs: list[list[int]] = []
    for index in sorted(set(indexes)):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def slot_ranges(slots: Iterable[GpuSlot]) -> str:
    """ "sg1-r01-n[01-04]:0-7 sg1-r01-n05:0-3": hosts holding the same GPUs collapse
    into one hostlist range (the form `lease allocate --slot` accepts)."""
    by_host: dict[str, list[int]] = {}
    for slot in slots:
        by_host.setdefault(slot.host, []).append(slot.gpu_index)
    by_gpus: dict[str, list[str]] = {}
    for host, indexes in by_host.items():
        by_gpus.setdefault(index_ranges(indexes), []).append(host)
    return " ".join(f"{hostlist.collect_hostlist(hosts)}:{gpus}" for gpus, hosts in by_gpus.items())


def short_ts(ts: float | None) -> str:
    """ "06-22 15:06Z": the year is rarely in doubt on a lease table."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%MZ")


def lease_title(lease: Lease, now_ts: float) -> str:
    return f"lease {lease.id} · {lease.tenant} · {lease.gpu_count} GPUs · {lease.state(now_ts)}"
