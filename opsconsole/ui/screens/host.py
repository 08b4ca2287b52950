"""One host in detail: per-GPU table, the selected GPU's history, fabric ports, and how
the console is hearing the host. Opened with Enter on the fleet or `:host NAME`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import events, getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen

from opsconsole.collect.readings import GpuView
from opsconsole.errors import OpsconsoleError
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import (
    AlertsChanged,
    LeasesChanged,
    ValidationRan,
    ValidationRefused,
)
from opsconsole.ui.widgets.fleet_summary import FleetSummary
from opsconsole.ui.widgets.gpu_history import GpuHistory
from opsconsole.ui.widgets.gpu_table import GpuTable
from opsconsole.ui.widgets.host_alerts import HostAlerts, host_filter
from opsconsole.ui.widgets.host_facts import HostFacts
from opsconsole.ui.widgets.host_leases import HostLeases
from opsconsole.ui.widgets.host_validation import HostValidation
from opsconsole.ui.widgets.key_bar import KeyBar
from opsconsole.ui.widgets.link_table import LinkTable

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp
    from opsconsole.ui.view.snapshot import HostDetail, HostSnapshot


class HostScreen(Screen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BLANK = True
    """The screen itself draws only its (opaque) background: Textual then paints it as
    blank lines rather than rendering a background renderable into every line, three
    times per host opened (7 ms of the first frame's 30, bench/ui.py)."""

    ready = False
    """True once composed and drawn: from then on batches are drawn here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "reconnect", "Reconnect"),
        Binding("a", "alerts", "Alerts"),
        Binding("K", "trust_key", "Trust changed host key", show=False),
        Binding("G", "accept_gpus", "Accept extra GPUs", show=False),
        Binding("v", "validate", "Validate"),
    ]

    def __init__(self, host_name: str) -> None:
        super().__init__(classes="host-screen")
        self.host_name = host_name
        self._just_switched = False
        self._styled_for: tuple[str, bool | None] | None = None
        """The theme the widgets were last styled for (see on_screen_resume)."""

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield HostFacts(id="host-facts")
        if self.app.leases.desk is not None:
            yield HostLeases(id="host-leases")
            yield HostValidation(id="host-validation")
        if self.app.alerts.desk is not None:
            yield HostAlerts(id="host-alerts")
        yield GpuTable(id="gpu-table")
        with Horizontal(id="host-lower"):
            yield GpuHistory(id="gpu-history")
            yield LinkTable(id="link-table")
        yield KeyBar()  # the screen's keys and q Quit, at 120 columns

    def on_mount(self) -> None:
        self.sub_title = self.host_name
        self.query_one(GpuTable).focus()
        self.set_interval(1.0, self._tick)
        # The last known state at once, in the very first frame (a busy machine may take
        # seconds to bring the history and ports): they say "loading…" until they come.
        # Widgets inside containers (history, ports) are mounted after this handler.
        self._show_snapshot()
        self.call_after_refresh(self._first_show)

    def _first_show(self) -> None:
        self.show()
        self.ready = True  # composed: batches may now be drawn here

    def on_unmount(self) -> None:
        self.ready = False

    def switch_host(self, host_name: str) -> None:
        """Show another host (the app reuses this screen); drawn now from its snapshot,
        its history and ports marked loading until they arrive."""
        self.host_name = host_name
        self.sub_title = host_name
        if self.ready:
            self.show()
            self._just_switched = True  # the resume that follows need not draw it again

    def _tick(self) -> None:
        if self.is_current and self.ready:  # ages move even when no batch arrives
            self._show_facts()

    def fleet_changed(self, changed: set[str]) -> None:
        self.query_one(FleetSummary).update_summary()
        if self.host_name in changed or self.app.model.detail_for(self.host_name) is not None:
            self.show()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if self.ready and not self._just_switched:
            self.show()
        self._just_switched = False
        # Textual re-styles every widget of a pushed screen (and so drops the ports
        # table's rendered rows and header): with the layouts cut in widgets/in_place.py,
        # 20 -> 13 ms of CPU per open (ARCHITECTURE.md). This screen is reused, and
        # nothing re-styles it while away but a theme change. (This handler runs before
        # Screen's own, which reads the flag.)
        styled_for = (self.app.theme, self.app.ansi_color)
        if self.ready and styled_for == self._styled_for:
            event.refresh_styles = False
        self._styled_for = styled_for

    def on_leases_changed(self, message: LeasesChanged) -> None:
        if self.ready:
            self._show_leases()
            self.query_one(FleetSummary).update_summary()

    def on_alerts_changed(self, message: AlertsChanged) -> None:
        if self.ready:
            self._show_alerts()

    def _show_alerts(self) -> None:
        for widget in self.query(HostAlerts):
            widget.show(self.host_name, self.app.alerts.board, self.app.alerts.trouble)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "alerts":  # hidden without an alert store
            return self.app.alerts.desk is not None
        if action == "validate":  # runs are stored: needs the store
            return self.app.leases.desk is not None
        return True

    @changes_state("validate host")
    def action_validate(self) -> None:
        """A quick validation of this host (refused while its GPUs are leased)."""
        from opsconsole.ui.screens.confirm import ConfirmScreen

        question = (
            f"Run a quick validation on {self.host_name}? It is held out of placement while"
            " it runs; refused if its GPUs are leased."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._validate("quick")

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def _validate(self, level: str) -> None:
        desk = self.app.leases.desk
        if desk is None:  # check_action hides `v` without a store
            return
        host = self.host_name
        desk.gateway.ask(
            self,
            lambda: desk.validate(host, level),
            ValidationRan,
            ValidationRefused,
            group="validate",
            exclusive=False,
            answer_when_cancelled=True,  # a run is written either way: say how it ended
        )

    def on_validation_ran(self, message: ValidationRan) -> None:
        from opsconsole.ui.gateway.validation_run import run_line

        run = message.run
        passed = run.state == "passed"
        self.app.notify(run_line(run), severity="information" if passed else "error", timeout=10)
        self.app.leases.refresh()

    def on_validation_refused(self, message: ValidationRefused) -> None:
        self.app.notify(message.text, severity="error", timeout=10)
        self.app.leases.refresh()

    def action_alerts(self) -> None:
        """The Alerts screen over this host, filtered to it (Esc clears, then Esc leaves)."""
        from opsconsole.ui.screens.alerts import AlertsScreen

        self.app.alerts.filter = host_filter(self.host_name)
        self.app.push_screen(AlertsScreen())

    def _show_leases(self) -> None:
        app = self.app
        for leases in self.query(HostLeases):
            leases.show(app.model.fleet.host(self.host_name), app.leases.board, app.leases.trouble)
        for runs in self.query(HostValidation):
            runs.show(self.host_name, app.leases.board, app.clock())

    def _detail(self) -> tuple[HostSnapshot | None, HostDetail | None]:
        model = self.app.model
        snap = model.hosts.get(self.host_name)
        detail = model.detail_for(self.host_name)
        if detail is not None and snap is not None and detail.snapshot is not snap:
            detail = None if detail.snapshot.last_sample_ts != snap.last_sample_ts else detail
        return snap, detail

    def _show_snapshot(self) -> tuple[HostSnapshot | None, HostDetail | None]:
        """What the fleet's snapshot of the host already tells: facts, leases, alerts, the
        GPU table. Returns the snapshot and the detail (history, ports), if any yet."""
        snap, detail = self._detail()
        self._show_facts()
        self._show_leases()
        self._show_alerts()
        views: Sequence[GpuView] = (
            detail.gpu_views if detail is not None else snap.gpu_views() if snap else ()
        )
        self.query_one(GpuTable).show(snap, views)
        if detail is None and snap is not None:
            self.sub_title = f"{self.host_name} · loading history…"
        return snap, detail

    def show(self) -> None:
        _, detail = self._show_snapshot()
        self.query_one(LinkTable).show(detail)
        self._show_history(detail, self.query_one(GpuTable).current_gpu)

    def _show_facts(self) -> None:
        model = self.app.model
        host = model.fleet.host(self.host_name)
        self.query_one(HostFacts).show(host, model.hosts.get(self.host_name), self.app.clock())

    def _show_history(self, detail: HostDetail | None, gpu_index: int | None) -> None:
        interval_s = self.app.model.fleet.config.polling.interval_s
        loading = detail is None and self.host_name in self.app.model.hosts
        self.sub_title = f"{self.host_name} · loading history…" if loading else self.host_name
        self.query_one(GpuHistory).show(
            detail, gpu_index, interval_s, self.app.clock(), loading=loading
        )

    def on_gpu_table_gpu_highlighted(self, event: GpuTable.GpuHighlighted) -> None:
        if self.ready:
            self._show_history(self.app.model.detail_for(self.host_name), event.gpu_index)

    def action_back(self) -> None:
        self.app.close_host()

    @changes_state("reconnect host")
    def action_reconnect(self) -> None:
        self.app.request_reconnect(self.host_name)

    @changes_state("trust a changed host key")
    def action_trust_key(self) -> None:
        """The changed-key dialog (`opsconsole hosts trust-key` from the keyboard)."""
        from opsconsole.collect.ssh import key_ledger_for
        from opsconsole.ui.screens.host_key import HostKeyScreen

        fleet = self.app.model.fleet
        ledger = key_ledger_for(fleet.config.ssh, fleet.path.parent)
        if ledger is None:
            self.notify("Host keys are not checked in this config.", severity="warning")
            return
        try:
            ledger.refresh()
        except OpsconsoleError as exc:
            self.notify(str(exc), severity="error")
            return
        change = ledger.get(self.host_name)
        if change is None:
            self.notify(f"No changed host key is waiting on {self.host_name}.")
            return
        if self.app.leases.desk is None:
            self.notify(
                "No store: the decision could not be audited; use `opsconsole hosts trust-key`.",
                severity="error",
            )
            return
        name = self.host_name

        def done(text: str | None) -> None:
            if text:
                self.notify(text, title="Host key")
                self.app.reconnect_host(name)

        self.app.push_screen(HostKeyScreen(ledger, change), done)

    @changes_state("accept extra GPUs")
    def action_accept_gpus(self) -> None:
        """The extra-GPU dialog (`opsconsole hosts accept-gpus` from the keyboard)."""
        from opsconsole.collect.gpu_ledger import GpuLedger
        from opsconsole.ui.screens.host_gpus import AcceptGpusScreen

        ledger = GpuLedger.for_fleet(self.app.model.fleet)
        try:
            ledger.refresh()
        except OpsconsoleError as exc:
            self.notify(str(exc), severity="error")
            return
        extra = ledger.pending.get(self.host_name)
        if extra is None:
            self.notify(f"{self.host_name} reports no GPUs beyond those accepted.")
            return
        if self.app.leases.desk is None:
            self.notify(
                "No store: the decision could not be audited; use `opsconsole hosts accept-gpus`.",
                severity="error",
            )
            return

        def done(text: str | None) -> None:
            if text:
                self.notify(text, title="GPUs")

        self.app.push_screen(AcceptGpusScreen(ledger, extra), done)
