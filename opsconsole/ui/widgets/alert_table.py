"""The Alerts screen's table: a heading row per severity, then its alerts, keyed by alert
id so the cursor stays on its alert across refreshes. The cursor steps over headings.

Why compare cells before redrawing: the board is re-read every two seconds and usually
says the same thing; an unchanged table is left alone (no flicker, no lost scroll).
"""

from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from opsconsole.alerts import Alert
from opsconsole.ui.view.alert_board import AlertBoard
from opsconsole.ui.view.alert_text import Cell, alert_cells, group_cells

COLUMNS = (
    ("state", "STATE", 27),
    ("rule", "RULE", 20),
    ("where", "WHERE", 20),
    ("tenant", "TENANT", 14),
    ("age", "AGE", 4),
    ("summary", "SUMMARY", None),
)
GROUP = "sev:"
"""Row keys of severity headings start with this; alert rows are keyed by their id."""


class AlertTable(DataTable[Text]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id)
        self._shown: list[tuple[str, tuple[Cell, ...]]] = []
        self._last_row = 0

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, board: AlertBoard, groups: list[tuple[str, list[Alert]]]) -> bool:
        """Redraw from the board if any cell changed; True when it did."""
        rows: list[tuple[str, tuple[Cell, ...]]] = []
        for severity, alerts in groups:
            rows.append((GROUP + severity, group_cells(severity, len(alerts), len(COLUMNS))))
            rows += [(str(a.id), alert_cells(a, board)) for a in alerts]
        if rows == self._shown:
            return False
        current = self.current_alert_id
        self._shown = rows
        with self.app.batch_update():
            self.clear()
            for key, cells in rows:
                self.add_row(*(Text(text, style) for text, style in cells), key=key)
            index = 1 if len(rows) > 1 else 0
            if current is not None:
                try:
                    index = self.get_row_index(str(current))
                except RowDoesNotExist:  # left the filter or the list: stay where it was
                    index = min(self._last_row, max(0, len(rows) - 1))
            self._land(index, step=1)
        return True

    @property
    def current_alert_id(self) -> int | None:
        key = self._row_key(self.cursor_row)
        return int(key) if key is not None and not key.startswith(GROUP) else None

    def _row_key(self, index: int) -> str | None:
        if not 0 <= index < self.row_count:
            return None
        return self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value

    def _land(self, index: int, step: int) -> None:
        """Put the cursor on `index`, or the nearest alert row in the direction `step`."""
        for candidate in (index, index + step, index - step):
            key = self._row_key(candidate)
            if key is not None and not key.startswith(GROUP):
                index = candidate
                break
        self._last_row = index
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Step over a heading in the direction the cursor was moving."""
        if event.cursor_row != self.cursor_row:
            return  # queued before a rebuild or a later move: the cursor is elsewhere now
        key = event.row_key.value
        if key is not None and key.startswith(GROUP):
            step = 1 if event.cursor_row >= self._last_row else -1
            self._land(event.cursor_row, step)
        else:
            self._last_row = event.cursor_row
