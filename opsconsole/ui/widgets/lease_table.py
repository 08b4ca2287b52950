"""The Leases screen's table: one row per lease under the screen's tenant and state
filter, keyed by lease id so the cursor stays on its lease across refreshes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from opsconsole.leases import Lease
from opsconsole.leases.slotspec import format_slots
from opsconsole.ui.view.lease_board import LeaseBoard
from opsconsole.ui.view.lease_text import DIM, STATE_STYLES, short_ts

COLUMNS = (
    ("id", "ID", 5),
    ("tenant", "TENANT", 16),
    ("state", "STATE", 9),
    ("gpus", "GPUS", 5),
    ("start", "START", 12),
    ("end", "END", 12),
    ("flags", "NOTES", 16),
    ("slots", "SLOTS", None),
)


def lease_row(lease: Lease, board: LeaseBoard) -> tuple[Text, ...]:
    state = lease.state(board.now_ts)
    flags = []
    if lease.released_ts is not None:
        flags.append(f"rel {short_ts(lease.released_ts)}")
    if lease.affected_by_drains:
        flags.append("drained")
    if lease.override_reason:
        flags.append("override")
    return (
        Text(str(lease.id), justify="right"),
        Text(lease.tenant, f"bold {board.colour(lease.tenant)}"),
        Text(state, STATE_STYLES.get(state, "")),
        Text(str(lease.gpu_count), justify="right"),
        Text(short_ts(lease.start_ts)),
        Text(short_ts(lease.end_ts)),
        Text(" ".join(flags), "#ffd75f" if lease.affected_by_drains else DIM),
        Text(format_slots(lease.slots), DIM if state not in ("reserved", "active") else ""),
    )


class LeaseTable(DataTable[Text | str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)

    def on_mount(self) -> None:
        grow = max(0, len(short_ts(0.0)) - len("01-01 00:00Z"))  # a zone longer than "Z"
        for key, label, width in COLUMNS:
            if key in ("start", "end"):
                width = (width or 12) + grow
            self.add_column(label, key=key, width=width)

    def show(self, board: LeaseBoard) -> None:
        """Redraw from the board; a few dozen rows, so rebuilt whole rather than diffed."""
        current = self.current_lease_id
        with self.app.batch_update():
            self.clear()
            for lease in board.listed:
                self.add_row(*lease_row(lease, board), key=str(lease.id))
            if current is not None:
                try:
                    self.move_cursor(row=self.get_row_index(str(current)), animate=False)
                except RowDoesNotExist:  # the lease left the filter: stay where the row was
                    pass

    @property
    def current_lease_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return int(key) if key is not None else None
