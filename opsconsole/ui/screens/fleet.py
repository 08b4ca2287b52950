"""The default screen: the whole fleet, site → rack → host, GPU cells coloured by a metric.

Health at a glance first (k9s): the header counts what is wrong, each rack line carries
its power against budget, each host line its state; detail is one Enter away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertsChanged, LeasesChanged
from opsconsole.ui.screens.prompt import PromptScreen
from opsconsole.ui.view.fleet_rows import GROUPED_SORTS, SORT_KEYS, FilterError, parse_filter
from opsconsole.ui.view.metrics import METRIC_ORDER
from opsconsole.ui.widgets.fleet_grid import FleetGrid
from opsconsole.ui.widgets.fleet_summary import FleetSummary
from opsconsole.ui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

FILTER_HINT = "host, rack, state, temp>80, health=fault …"


def sort_words(sort_key: str, descending: bool) -> str:
    """What the sort does, in words, for the status line: the tree or a flat list."""
    if sort_key == "host":
        return f"site → rack, hosts by name {'Z→A' if descending else 'A→Z'}"
    if sort_key in GROUPED_SORTS:
        order = "reversed" if descending else "config order"
        return f"site → rack → host, {sort_key}s in {order}"
    if sort_key == "state":
        return "flat, " + ("down first" if descending else "fresh first")
    if sort_key == "health":
        return "flat, " + ("worst health first" if descending else "healthiest first")
    return f"flat, {'highest' if descending else 'lowest'} {sort_key} first, unknown last"


class FleetScreen(Screen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    ready = False
    """True once composed and drawn: from then on batches are drawn here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "back", "Back", show=False),
        Binding("m", "next_metric", "Metric", tooltip="cycle the metric GPU cells are coloured by"),
        Binding("1", "metric('util')", "colour by utilisation", show=False),
        Binding("2", "metric('temp')", "colour by temperature", show=False),
        Binding("3", "metric('power')", "colour by power", show=False),
        Binding("4", "metric('memory')", "colour by memory used", show=False),
        Binding("5", "metric('health')", "colour by health", show=False),
        Binding("6", "metric('tenant')", "colour by tenant (who holds each GPU)", show=False),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("r", "reconnect", "Reconnect"),
        Binding("a", "app.alerts", "Alerts"),
    ]

    def __init__(self) -> None:
        super().__init__(id="fleet")
        self.filter_stack: list[str] = []  # filters to return to with Esc

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield Static(id="view-status")
        yield FleetGrid(self.app.model, self.app.clock, id="fleet-grid")
        yield KeyBar()  # the screen's keys and q Quit, at 120 columns

    @property
    def grid(self) -> FleetGrid:
        return self.query_one(FleetGrid)

    def on_mount(self) -> None:
        self.grid.painter.alert_marks = self.app.alerts.marks
        self.grid.focus()
        self.update_view_status()
        self.set_interval(1.0, self._tick)
        self.ready = True  # composed: batches may now be drawn here
        if self.app.model.generation:  # a batch came before: it was not drawn here
            self.grid.rebuild()

    def on_unmount(self) -> None:
        self.ready = False

    def _tick(self) -> None:
        if self.is_current:
            self.grid.refresh_ages()

    # --- batches ----------------------------------------------------------------------
    def fleet_changed(self, changed: set[str]) -> None:
        self.grid.fleet_changed(changed)
        self.query_one(FleetSummary).update_summary()
        if self.grid.row_filter.dynamic:
            self.update_view_status()

    def on_leases_changed(self, message: LeasesChanged) -> None:
        """Holders changed on these hosts: repaint their lines (TENANT) and the header."""
        if self.ready:
            self.grid.fleet_changed(message.changed_hosts)
            self.query_one(FleetSummary).update_summary()

    def on_alerts_changed(self, message: AlertsChanged) -> None:
        """Hosts whose alert marker changed: repaint their lines and the header."""
        self.grid.painter.alert_marks = self.app.alerts.marks
        if self.ready:
            self.grid.fleet_changed(message.changed_hosts)
            self.query_one(FleetSummary).update_summary()

    def on_screen_resume(self) -> None:
        """Batches were not drawn while hidden; catch up in one go."""
        self.grid.rebuild()
        self.grid.refresh()
        self.query_one(FleetSummary).update_summary()
        self.update_view_status()

    def update_view_status(self) -> None:
        grid = self.grid
        hosts = sum(1 for kind, _ in grid.lines if kind == "host")
        total = len(self.app.model.fleet.hosts)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" metric ", "#8a8a8a")
        text.append(grid.metric.label, "bold")
        text.append("   sort ", "#8a8a8a")
        arrow = "▼" if grid.descending else "▲"
        text.append(f"{grid.sort_key} {arrow}", "bold")
        text.append(f" ({sort_words(grid.sort_key, grid.descending)})", "#8a8a8a")
        text.append("   filter ", "#8a8a8a")
        if grid.row_filter.text:
            text.append(grid.row_filter.text, "bold #ffd75f")
            text.append(f"  {hosts} of {total} hosts", "#8a8a8a")
        else:
            text.append(f"none  {total} hosts", "#8a8a8a")
        self.query_one("#view-status", Static).update(text)

    # --- view actions -----------------------------------------------------------------
    def set_metric(self, metric: str) -> None:
        self.grid.set_view(metric=metric)
        self.update_view_status()

    def action_metric(self, metric: str) -> None:
        self.set_metric(metric)

    def action_next_metric(self) -> None:
        order = METRIC_ORDER
        self.set_metric(order[(order.index(self.grid.metric.key) + 1) % len(order)])

    def set_sort(self, sort_key: str, descending: bool | None = None) -> None:
        if descending is None:  # metrics and state read worst-first by default
            descending = sort_key not in GROUPED_SORTS
        self.grid.set_view(sort_key=sort_key, descending=descending)
        self.update_view_status()

    def action_next_sort(self) -> None:
        keys = SORT_KEYS
        self.set_sort(keys[(keys.index(self.grid.sort_key) + 1) % len(keys)])

    def action_reverse_sort(self) -> None:
        self.grid.set_view(descending=not self.grid.descending)
        self.update_view_status()

    def on_fleet_grid_sort_clicked(self, event: FleetGrid.SortClicked) -> None:
        if event.sort_key == self.grid.sort_key:
            self.action_reverse_sort()
        else:
            self.set_sort(event.sort_key)

    def set_filter(self, text: str, *, remember: bool = False) -> bool:
        """Apply a filter; False (and a message) when it cannot be parsed."""
        try:
            row_filter = parse_filter(text)
        except FilterError as exc:
            self.notify(
                f"{exc}. The filter is unchanged.", title="Filter", severity="error", markup=False
            )
            return False
        if remember:
            self.filter_stack.append(self.grid.row_filter.text)
        self.grid.set_view(row_filter=row_filter)
        self.update_view_status()
        return True

    def action_filter(self) -> None:
        before = self.grid.row_filter.text

        def live(text: str) -> None:
            try:
                self.grid.set_view(row_filter=parse_filter(text))
                self.update_view_status()
            except FilterError:
                pass  # half-typed; the final text is checked on Enter

        def done(text: str | None) -> None:
            if text is None:
                self.set_filter(before)
            elif self.set_filter(text):
                if text.strip() != before:
                    self.filter_stack.append(before)
            else:  # refused: the filter in force before typing stays, not a half-typed one
                self.set_filter(before)

        self.app.push_screen(
            PromptScreen(
                "/", value=before, placeholder="host, rack, state, temp>80 …", on_change=live
            ),
            done,
        )

    def action_back(self) -> None:
        """Esc: undo the last drill-down or filter."""
        if self.filter_stack:
            self.set_filter(self.filter_stack.pop())
        elif self.grid.row_filter.text:
            self.set_filter("")

    def on_fleet_grid_line_chosen(self, event: FleetGrid.LineChosen) -> None:
        kind, name = event.line
        if kind == "host":
            self.app.open_host(name)

    @changes_state("reconnect host")
    def action_reconnect(self) -> None:
        name = self.grid.current_host
        if name is None:
            self.notify("Move the cursor to a host first.", severity="warning")
            return
        self.app.request_reconnect(name)
