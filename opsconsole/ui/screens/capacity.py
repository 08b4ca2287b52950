"""Capacity: what limits the fleet now and over the lease calendar, ranked. Opened with
`c` (any screen without its own `c`; the Leases screen's cancels a lease) or `:capacity`.

Per-site bars (who holds the GPUs, what is free and whether it is whole nodes), the runway
as a chart over days (`textual-plotext`: committed GPUs against healthy capacity per
site, the first over-committed day marked), and the ranked bottlenecks; Enter on one
jumps to what it names: the fleet view filtered to a rack, leaf or site, a host, or the
lease on the Leases screen.

The report is built by `opsconsole.capacity` through the gateway (`gateway/capacity_desk.py`:
a thread worker that reads the store on a connection of its own; rollup aggregates are
reused for a minute) and comes back as a message; the live parts (power, IB ports,
health) are taken from the same frozen snapshots the fleet view draws, never from the
poller's state, and handed to the worker as plain data.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from opsconsole.capacity import (
    Bottleneck,
    CapacityReport,
    PortErrorRates,
    StoreFacts,
    Target,
    live_readings,
)
from opsconsole.ui.gateway.capacity_desk import CapacityDesk, CapacityRead
from opsconsole.ui.view.lease_form import placement_health
from opsconsole.ui.view.lease_text import DIM, short_ts
from opsconsole.ui.widgets.fleet_summary import FleetSummary
from opsconsole.ui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

CAPACITY_REFRESH_S = 15.0
"""Live power and IB ports move every poll; leases change from anywhere."""
BAR_WIDTH = 40
BAR_PARTS = (
    ("leased", "#5f87d7"),
    ("unhealthy", "#ff5f5f"),
    ("drained", "#ffaf5f"),
    ("reserved", "#af87d7"),
    ("free", "#5fd75f"),
)
SEVERITY_STYLE = {"critical": "bold #ff5f5f", "warning": "bold #ffd75f"}
NO_STORE = (
    " No store: capacity needs the leases and the minute rollups (this console was started"
    " without one, or it could not be opened)."
)

_rates: weakref.WeakKeyDictionary[App[None], PortErrorRates] = weakref.WeakKeyDictionary()
"""Per console: each IB port's last counters, so error rates survive reopening the screen."""


class CapacityLoaded(Message):
    def __init__(self, read: CapacityRead) -> None:
        super().__init__()
        self.report = read.report
        self.facts = read.facts


class CapacityTrouble(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CapacityScreen(Screen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    DEFAULT_CSS = """
    #capacity-status { height: 1; background: #121a22; }
    #capacity-top { height: 14; }
    #capacity-sites { width: 62; padding: 1 0 0 0; }
    #capacity-runway { width: 1fr; }
    #bottleneck-table { height: 1fr; }
    #bottleneck-detail { height: auto; max-height: 8; background: #121a22; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh_report", "Refresh"),
        Binding("s", "next_site", "Site"),
    ]

    def __init__(self) -> None:
        super().__init__(id="capacity")
        self.report: CapacityReport | None = None
        self.facts: StoreFacts | None = None
        """The last store reads: their rollup aggregates are reused for a minute."""
        self.trouble = ""
        self.site: str | None = None

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield Static(id="capacity-status")
        with Horizontal(id="capacity-top"):
            yield Static(id="capacity-sites")
            yield PlotextPlot(id="capacity-runway")
        table: DataTable[Text | str] = DataTable(
            id="bottleneck-table", cursor_type="row", zebra_stripes=True
        )
        yield table
        yield Static(id="bottleneck-detail")
        yield KeyBar()  # the screen's keys and q Quit, at 120 columns

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#bottleneck-table", DataTable)

    def on_mount(self) -> None:
        self.sub_title = "capacity"
        for key, label, width in (
            ("rank", "#", 3),
            ("severity", "SEVERITY", 9),
            ("title", "BOTTLENECK", 88),
            ("gpus", "GPUs", 5),
        ):
            self.table.add_column(label, key=key, width=width)
        self.table.focus()
        self._show_status()
        self.action_refresh_report()
        self.set_interval(CAPACITY_REFRESH_S, self.action_refresh_report)

    # --- reading ----------------------------------------------------------------------
    def action_refresh_report(self) -> None:
        app = self.app
        gateway = app.gateway
        if app.leases.desk is None or gateway is None:
            self._show_status()
            return
        rates = _rates.get(app)
        if rates is None:
            rates = _rates[app] = PortErrorRates(app.fleet.config.capacity.ib_error_counters)
        snapshots = app.model.hosts
        hosts = [(name, snap.status, snap.sample) for name, snap in snapshots.items()]
        node_power = {
            name: snap.node_power_w
            for name, snap in snapshots.items()
            if snap.node_power_w is not None
        }
        readings = live_readings(hosts, rates, node_power)
        desk = CapacityDesk(gateway, app.fleet)
        health, site, reuse, now_ts = (
            placement_health(app.model),
            self.site,
            self.facts,
            app.clock(),
        )
        gateway.ask(
            self,
            lambda: desk.report(now_ts, readings=readings, health=health, site=site, reuse=reuse),
            CapacityLoaded,
            CapacityTrouble,
            group="capacity",
        )

    def on_capacity_loaded(self, message: CapacityLoaded) -> None:
        message.stop()
        self.report = message.report
        self.facts = message.facts
        self.trouble = ""
        self._draw()

    def on_capacity_trouble(self, message: CapacityTrouble) -> None:
        message.stop()
        self.trouble = message.text
        self._show_status()

    # --- drawing ----------------------------------------------------------------------
    def _draw(self) -> None:
        report = self.report
        if report is None:
            return
        self._show_status()
        self.query_one("#capacity-sites", Static).update(site_bars(report))
        draw_runway(self.query_one(PlotextPlot), report)
        self._fill_table(report.bottlenecks)
        self._show_detail()

    def _show_status(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.app.leases.desk is None:
            text.append(NO_STORE, "#ffd75f")
        else:
            text.append(" site ", DIM)
            text.append(self.site or "all", "bold #ffd75f" if self.site else "bold")
            report = self.report
            if report is not None:
                text.append(f"   as of {short_ts(report.now_ts)}", DIM)
                text.append(f"   {len(report.bottlenecks)} bottleneck(s)", "bold")
                text.append(f"   power {report.sources['power']}", DIM)
                text.append(f" · IB errors {report.sources['ib_error_rates']}", DIM)
            elif not self.trouble:
                text.append("   reading…", DIM)
            if self.trouble:
                text.append(f"   ⚠ {self.trouble}", "bold #ffd75f")
        self.query_one("#capacity-status", Static).update(text)

    def _fill_table(self, bottlenecks: tuple[Bottleneck, ...]) -> None:
        table = self.table
        current = self.current
        table.clear()
        for b in bottlenecks:
            table.add_row(
                str(b.rank),
                Text(b.severity, SEVERITY_STYLE[b.severity]),
                Text(b.title, overflow="ellipsis", no_wrap=True),
                str(b.gpus_affected),
                key=str(b.rank),
            )
        if current is not None:  # keep the cursor on the same finding when it is still there
            for b in bottlenecks:
                if (b.kind, b.subject) == (current.kind, current.subject):
                    table.move_cursor(row=b.rank - 1)
                    break

    @property
    def current(self) -> Bottleneck | None:
        report = self.report
        table = self.table
        if report is None or not table.row_count or not report.bottlenecks:
            return None
        row = table.cursor_row
        return report.bottlenecks[row] if 0 <= row < len(report.bottlenecks) else None

    def _show_detail(self) -> None:
        b = self.current
        text = Text()
        if b is not None:
            for label, value in (
                ("measured ", b.measured),
                ("threshold", b.threshold),
                ("why      ", b.why),
                ("action   ", b.action),
            ):
                text.append(f" {label} ", DIM)
                text.append(value + "\n")
            text.append(f" Enter: open {b.target.kind} {b.target.name}", DIM)
        elif self.report is not None:
            text.append(" No bottleneck: every figure is inside its threshold.", "#5fd75f")
        self.query_one("#bottleneck-detail", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        b = self.current
        if b is not None:
            self.jump(b.target)

    # --- navigation -------------------------------------------------------------------
    def jump(self, target: Target) -> None:
        """Open what a bottleneck names: the fleet view filtered to a rack / leaf / site,
        a host, or a lease (the Leases screen on its tenant, cursor on the lease)."""
        app = self.app
        if target.kind in ("rack", "leaf", "site"):
            app.go_fleet()
            fleet_screen = app.fleet_screen
            if fleet_screen.set_filter(f"{target.kind}={target.name}", remember=True):
                fleet_screen.grid.move_to((target.kind, target.name))
        elif target.kind == "host":
            app.open_host(target.name, over_current=True)  # Esc comes back here
        elif target.kind == "tenant":
            app.leases.go(target.name)
        elif target.kind == "lease":
            board = app.leases.board
            lease = board.lease(int(target.name)) if board is not None else None
            app.leases.go(lease.tenant if lease is not None else None)
            app.set_timer(0.2, lambda: _focus_lease(app, target.name, 20))

    def action_back(self) -> None:
        self.app.go_fleet()

    def action_next_site(self) -> None:
        sites = [None, *self.app.fleet.sites]
        self.site = sites[(sites.index(self.site) + 1) % len(sites)]
        self._show_status()
        self.action_refresh_report()


def _focus_lease(app: App[None], lease_id: str, tries: int) -> None:
    """Put the Leases screen's cursor on a lease once its row is there (the board is read
    again in a worker when the tenant filter changes)."""
    from opsconsole.ui.screens.leases import LeasesScreen

    screen = app.screen
    if not isinstance(screen, LeasesScreen):
        return
    table = screen.table
    try:
        row = table.get_row_index(lease_id)
    except Exception:  # not drawn yet (RowDoesNotExist): look again shortly
        if tries > 0:
            app.set_timer(0.2, lambda: _focus_lease(app, lease_id, tries - 1))
        return
    table.move_cursor(row=row)


def site_bars(report: CapacityReport) -> Text:
    """One stacked bar per site (each GPU once: leased, unhealthy, drained, reserved, free)
    with its figures, then a legend. Lines stay under the panel's width."""
    text = Text(no_wrap=True, overflow="ellipsis")
    over = {s.name: s.first_over_committed for s in report.series("site")}
    for row in report.site_rows():
        text.append(f" {row.name:<6}", "bold")
        filled = 0
        total = max(1, row.total_gpus)
        for part, colour in BAR_PARTS:
            cells = min(round(BAR_WIDTH * row.bar.get(part, 0) / total), BAR_WIDTH - filled)
            text.append("█" * cells, colour)
            filled += cells
        text.append("░" * (BAR_WIDTH - filled), "#3a3a3a")
        text.append(f" {row.total_gpus} GPUs\n")
        text.append(f"   {row.leased_gpus} leased · {row.reserved_gpus} reserved · ", DIM)
        text.append(f"{row.free_gpus} free\n", "bold #5fd75f")
        text.append(
            f"   {row.free_whole_nodes} whole nodes · {row.scattered_free_gpus} scattered"
            f" · {row.drained_gpus} drained · {row.total_gpus - row.healthy_gpus} unhealthy\n",
            DIM,
        )
        largest = " · ".join(f"{lv.level} {lv.gpus}" for lv in row.largest)
        text.append(f"   largest lease now: {largest}\n", DIM)
        if over.get(row.name):
            text.append(f"   over-committed from {over[row.name]}\n", "bold #ff5f5f")
        racks = [p for p in report.power if p.site == row.name and p.use_pct is not None]
        if racks:
            worst = max(racks, key=lambda p: p.use_pct or 0.0)
            style = "bold #ff5f5f" if (worst.use_pct or 0) >= 100 else DIM
            text.append(
                f"   fullest rack {worst.rack}: {worst.measured_kw:.1f} of"
                f" {worst.budget_kw:.1f} kW ({worst.use_pct:.0f} %)\n",
                style,
            )
    text.append(" ")
    for part, colour in BAR_PARTS:
        text.append("█", colour)
        text.append(f" {part} ", DIM)
    return text


def draw_runway(plot: PlotextPlot, report: CapacityReport) -> None:
    """Committed GPUs against available capacity per site over the days ahead."""
    plt = plot.plt
    plt.clear_figure()
    series = report.series("site")
    x = list(range(len(series[0].days))) if series else []
    for s in series:
        plt.plot(x, [d.committed_gpus for d in s.days], label=f"{s.name} committed", marker="hd")
        plt.plot(x, [d.capacity_gpus for d in s.days], label=f"{s.name} available", marker="hd")
        if s.first_over_committed is not None:
            day = next(i for i, d in enumerate(s.days) if d.date == s.first_over_committed)
            plt.vline(day, "red")
    if x:
        step = max(1, len(x) // 4)
        ticks = x[::step]
        plt.xticks([float(t) for t in ticks], [series[0].days[i].date[5:] for i in ticks])
        plt.ylim(0, max(s.total_gpus for s in series) * 1.05)
    plt.title("runway: GPUs committed vs available")
    plot.refresh()


def open_capacity(app: OpsConsoleApp) -> None:
    """`c`: the Capacity screen over the fleet view (a key pressed on a dialog is the
    dialog's; on the Capacity screen itself it reads the report again)."""
    if isinstance(app.screen, ModalScreen):
        return
    if isinstance(app.screen, CapacityScreen):
        app.screen.action_refresh_report()
        return
    app.go_fleet()
    app.push_screen(CapacityScreen())
