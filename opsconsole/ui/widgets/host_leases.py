"""The host view's lease lines: which tenant and lease hold which GPUs of this host now,
what is reserved next, and which GPUs are free. Shown only when the console has a
lease store."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from opsconsole.config import Host
from opsconsole.leases.slotspec import format_indexes
from opsconsole.ui.view.lease_board import LeaseBoard
from opsconsole.ui.view.lease_text import DIM, STATE_STYLES, short_ts
from opsconsole.ui.widgets.in_place import update_in_place

SHOWN = 3
"""Leases listed before "+N more" (the Leases screen has them all)."""


class HostLeases(Static):
    def show(self, host: Host, board: LeaseBoard | None, trouble: str = "") -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("LEASES ", "bold #87afd7")
        if board is None:
            text.append(trouble or "loading…", DIM)
            update_in_place(self, text)
            return
        leases = board.host_leases(host.name)
        held = board.by_host.get(host.name, {})
        free = [i for i in range(host.expected_gpus) if i not in held]
        if free:
            text.append(f"GPU {format_indexes(free)} free now", "#5fd75f")
        else:
            text.append("no GPU free now", DIM)
        for lease in leases[:SHOWN]:
            state = lease.state(board.now_ts)
            gpus = format_indexes(s.gpu_index for s in lease.slots if s.host == host.name)
            text.append(f"\n       GPU {gpus} ")
            text.append(lease.tenant, f"bold {board.colour(lease.tenant)}")
            text.append(f" · lease {lease.id} · ")
            text.append(state, STATE_STYLES.get(state, ""))
            if state == "active":
                text.append(f" until {short_ts(lease.end_ts)}", DIM)
            else:
                text.append(f" {short_ts(lease.start_ts)} → {short_ts(lease.end_ts)}", DIM)
        if len(leases) > SHOWN:
            text.append(f"\n       +{len(leases) - SHOWN} more (:leases)", DIM)
        update_in_place(self, text)
