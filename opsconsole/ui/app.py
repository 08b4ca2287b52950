"""The console app and its one factory, `make_app`, used by the CLI, the tests and the
benchmark alike (posting's `make_posting()` pattern)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import ClassVar, Protocol, runtime_checkable

import sqlite_utils
from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Input

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.leases import operator_name
from opsconsole.leases.times import use_timezone
from opsconsole.replay import ReplayClock
from opsconsole.ui.controllers.alerts import AlertsController
from opsconsole.ui.controllers.guard import changes_state, is_state_changing
from opsconsole.ui.controllers.leases import LeasesController
from opsconsole.ui.controllers.messages import (
    AlertsChanged,
    AlertsLoaded,
    AlertStoreTrouble,
    FleetBatchReady,
    LeasesChanged,
    LeasesLoaded,
    LeaseStoreTrouble,
)
from opsconsole.ui.controllers.palette import ConsoleCommands
from opsconsole.ui.feed.drivers import FeedDriver, InlineDriver, PollerFactory, PollingThread
from opsconsole.ui.feed.feed import FeedNotes, FleetFeed
from opsconsole.ui.feed.replay import ReplayPoller
from opsconsole.ui.gateway.alert_desk import AlertDesk
from opsconsole.ui.gateway.lease_desk import LeaseDesk
from opsconsole.ui.gateway.replay import ReplayAlertDesk, replay_source, replay_store
from opsconsole.ui.gateway.store import StoreGateway
from opsconsole.ui.screens.capacity import open_capacity
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.help import HelpScreen, key_label
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.prompt import PromptScreen
from opsconsole.ui.view.command_line import CommandError, command_suggestions, parse_command
from opsconsole.ui.view.fleet_rows import SORT_KEYS
from opsconsole.ui.view.metrics import METRICS
from opsconsole.ui.view.model import FleetModel

log = logging.getLogger("opsconsole.ui")

DETAIL_AFTER_S = 0.2
"""How long after Enter the polling thread is asked for the opened host's detail. Asked
at the next idle moment (call_after_refresh), its snapshot of every host ran on the
polling thread while the first frame was drawn, and the two shared the GIL: with the
machine loaded, Enter to paint 0.19 s p50 / 0.4-0.6 s p95; asked after this delay, 0.13 /
0.2 s (bench/ui.py --load 2). Textual has no public hook for "the frame is written"."""


@runtime_checkable
class DrawsBatches(Protocol):
    """A screen that draws fleet batches (fleet, host): `ready` once composed."""

    ready: bool

    def fleet_changed(self, changed: set[str]) -> None: ...


class OpsConsoleApp(App[None]):
    """One app; its lease and alert sides are controllers it holds (`leases`, `alerts`),
    its store calls go through one gateway (`gateway`), and new boards reach the screens
    as messages."""

    CSS_PATH: ClassVar[list[str | PurePath]] = ["app.tcss"]
    TITLE = "opsconsole"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    replay_banner: Callable[[], str] | None = None
    """In a replay (`opsconsole replay`), the banner naming the replayed moment."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_console", "Quit"),
        Binding("ctrl+q", "quit_console", "Quit", show=False, priority=True),
        Binding("colon", "command_mode", "Command", key_display=":"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("l", "leases", "Leases"),
        Binding("c", "capacity", "Capacity"),
    ]

    def __init__(
        self,
        fleet: Fleet,
        driver: FeedDriver,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        publish_interval_s: float | None = None,
        gateway: StoreGateway | None = None,
        lease_desk: LeaseDesk | None = None,
        alert_desk: AlertDesk | None = None,
    ) -> None:
        super().__init__()
        self.fleet = fleet
        self.driver = driver
        self.read_only = read_only
        self.clock = clock
        self.model = FleetModel(fleet)
        self.publish_interval_s = publish_interval_s or fleet.config.polling.interval_s
        self._host_screen: HostScreen | None = None
        self.refusals: list[str] = []
        """What the read-only guard refused, newest last (tests and the help read it)."""
        self.gateway = gateway
        self.leases = LeasesController(self, lease_desk)
        self.alerts = AlertsController(self, alert_desk)

    def _wake_for_batch(self) -> None:
        """From the polling thread: a batch waits in the mailbox (post_message is
        thread-safe)."""
        self.post_message(FleetBatchReady())

    def get_default_screen(self) -> FleetScreen:
        return FleetScreen()

    def on_mount(self) -> None:
        if self.read_only:
            self.sub_title = "read-only"
        self.driver.start(self._wake_for_batch)
        if not self.driver.threaded:
            # the caller's state is already there: show it before the first key (a test
            # or a benchmark must not see an empty fleet because a refresh came late)
            self.publish_now()
            self.set_interval(self.publish_interval_s, self.publish_now)
        self.leases.start()
        self.alerts.start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leases":  # without a lease store the key is hidden (`:leases` says why)
            return self.leases.desk is not None
        if action == "alerts":  # likewise without an alert store
            return self.alerts.desk is not None
        return True

    def on_unmount(self) -> None:
        self.driver.stop()
        if self.gateway is not None:
            self.gateway.retire()  # the lease and alert desks call through it

    def action_capacity(self) -> None:
        open_capacity(self)

    def action_leases(self) -> None:
        self.leases.action()

    def action_alerts(self) -> None:
        self.alerts.action()

    # --- boards -----------------------------------------------------------------------
    def on_leases_loaded(self, message: LeasesLoaded) -> None:
        self.leases.loaded(message.board)

    def on_lease_store_trouble(self, message: LeaseStoreTrouble) -> None:
        self.leases.unreadable(message.text)

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        self.alerts.loaded(message.board)

    def on_alert_store_trouble(self, message: AlertStoreTrouble) -> None:
        self.alerts.unreadable(message.text)

    def tell_screens(
        self, kind: type[LeasesChanged] | type[AlertsChanged], changed_hosts: set[str]
    ) -> None:
        """Post a new-board message to every screen on the stack, so screens under a
        dialog are current when it closes."""
        for screen in self.screen_stack:
            screen.post_message(kind(set(changed_hosts)))

    # --- batches ----------------------------------------------------------------------
    def publish_now(self) -> None:
        """Collect and apply at once (inline) or ask the polling thread to publish."""
        self.driver.publish_now()
        if not self.driver.threaded:
            self.apply_pending()

    def on_fleet_batch_ready(self, message: FleetBatchReady) -> None:
        self.apply_pending()

    def apply_pending(self) -> None:
        batch = self.driver.mailbox.take()
        if batch is None:
            return
        changed = self.model.apply(batch)
        # Only the screen in view draws; hidden ones catch up in on_screen_resume. Under a
        # modal (prompt, help) the screen beneath is still in view.
        for candidate in reversed(self.screen_stack):
            if isinstance(candidate, DrawsBatches) and candidate.ready:
                try:
                    candidate.fleet_changed(changed)
                except NoMatches:
                    pass  # the screen is being taken down (quit, pop) as the batch arrived
                except Exception:  # a drawing bug must not take the console down
                    log.exception("drawing a batch on %s failed", candidate)
                break

    # --- navigation -------------------------------------------------------------------
    @property
    def fleet_screen(self) -> FleetScreen:
        return next(s for s in self.screen_stack if isinstance(s, FleetScreen))

    def go_fleet(self) -> None:
        while len(self.screen_stack) > 1 and not isinstance(self.screen, FleetScreen):
            self.pop_screen()
        self.driver.feed.watch(None)

    def open_host(self, name: str, *, over_current: bool = False) -> None:
        """The host's screen, over the fleet view; `over_current` keeps the screen in
        view underneath (the Alerts screen), so Esc from the host returns to it."""
        if name not in self.model.host_versions:
            self.notify(f"No host named {name!r} in this fleet.", severity="error")
            return
        if not over_current or isinstance(self.screen, HostScreen):
            self.go_fleet()
        self.fleet_screen.grid.move_to(("host", name))
        self.driver.feed.watch(name)
        self.push_screen(self._host_screen_for(name))
        # Ask the polling thread for the host's detail (history, ports) once the last
        # known state is on screen, so its batch does not land in, and delay, the first
        # frame (0.4 s -> 0.2 s from Enter to paint, bench/ui.py). Inline: at once.
        if self.driver.threaded:
            self.set_timer(DETAIL_AFTER_S, self.publish_now)
        else:
            self.publish_now()

    def _host_screen_for(self, name: str) -> HostScreen:
        """One host screen, composed once and reused: composing its tables and panes cost
        0.6 s here (1.7 s on a loaded machine) on every Enter; switching the host it shows
        costs a repaint. The screen is installed, so popping it keeps it for next time."""
        screen = self._host_screen
        if screen is None:
            screen = self._host_screen = HostScreen(name)
            self.install_screen(screen, name="host-view")
        else:
            screen.switch_host(name)
        return screen

    def close_host(self) -> None:
        """Back to whatever the host was opened from."""
        if isinstance(self.screen, HostScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        self.driver.feed.watch(None)
        if isinstance(self.screen, HostScreen):
            self.go_fleet()

    # --- command mode -----------------------------------------------------------------
    def action_command_mode(self) -> None:
        names = [h.name for h in self.fleet.hosts]
        board = self.leases.board
        tenants = [t.name for t in board.tenants] if board is not None else []
        self.push_screen(
            PromptScreen(
                ":",
                placeholder="fleet · host NAME · leases · help",
                suggestions=command_suggestions(names, tenants),
            ),
            lambda text: self.run_command(text) if text else None,
        )

    def run_command(self, text: str) -> None:
        try:
            command = parse_command(text)
        except CommandError as exc:
            self.notify(str(exc), title="Command", severity="error")
            return
        verb, argument = command.verb, command.argument
        if verb == "fleet":
            self.go_fleet()
        elif verb == "host":
            self.open_host(argument)
        elif verb == "help":
            self.action_help()
        elif verb == "quit":
            self.action_quit_console()
        elif verb == "reconnect":
            self.action_reconnect_current(argument or None)
        elif verb == "metric":
            if argument not in METRICS:
                self.notify(f"metric is one of: {', '.join(METRICS)}", severity="error")
                return
            self.go_fleet()
            self.fleet_screen.set_metric(argument)
        elif verb == "sort":
            key, _, order = argument.partition(" ")
            if key not in SORT_KEYS:
                self.notify(f"sort by one of: {', '.join(SORT_KEYS)}", severity="error")
                return
            self.go_fleet()
            descending = {"desc": True, "asc": False}.get(order.strip())
            self.fleet_screen.set_sort(key, descending)
        elif verb == "filter":
            self.go_fleet()
            self.fleet_screen.set_filter(argument, remember=True)
        elif verb == "leases":
            self.leases.go(argument or None)
        elif verb == "allocate":
            self.leases.open_allocate(argument or None)
        elif verb == "alerts":
            self.alerts.go()
        elif verb == "capacity":
            self.action_capacity()
        elif verb == "replay":
            self.open_replay(argument)

    def open_replay(self, when: str) -> None:
        """`:replay TIME`: the replay runs in the same terminal, this console suspended."""
        import subprocess
        import sys

        argv = [sys.executable, "-m", "opsconsole", "replay", f"--at={when or '-10m'}",
                "--config", str(self.fleet.path)]  # fmt: skip
        if self.gateway is not None:
            argv += ["--store", self.gateway.path]
        with self.suspend():
            subprocess.run(argv, check=False)

    def action_quit_console(self) -> None:
        """`q` (and `:quit`, ctrl+q): leave at once, unless a dialog holds something typed
        but not yet written (an allocation, an extension, an acknowledgement): then ask
        first. In a text field `q` is just a letter; ctrl+q works there too."""
        if not self.has_unsaved_dialog():
            self.exit()
            return
        self.push_screen(
            ConfirmScreen("Quit? What is typed in the open dialog is not written yet."),
            lambda yes: self.exit() if yes else None,
        )

    def has_unsaved_dialog(self) -> bool:
        """A form dialog is open (allocate, extend, ack, silence): nothing of it is written
        until its Enter, so quitting would drop it."""
        return any(
            isinstance(screen, ModalScreen)
            and not isinstance(screen, PromptScreen)
            and bool(screen.query(Input))
            for screen in self.screen_stack
        )

    def filter_fleet(self) -> None:
        """The fleet view with its `/` filter prompt open (the command palette's entry)."""
        self.go_fleet()
        self.fleet_screen.action_filter()

    def action_help(self) -> None:
        """Every key bound on the screen in view, grouped by what it does."""
        grouped: dict[tuple[int, str], list[str]] = {}
        described: dict[tuple[int, str], tuple[str, bool]] = {}
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            what = (id(active.node), binding.action)
            label = binding.key_display or key_label(key)
            if label not in grouped.setdefault(what, []):
                grouped[what].append(label)
            method = getattr(active.node, f"action_{binding.action.split('(')[0]}", None)
            changes = method is not None and is_state_changing(method)
            described[what] = (binding.description or binding.action, changes)
        keys = [(", ".join(labels), *described[what]) for what, labels in grouped.items()]
        self.push_screen(HelpScreen(keys, self.read_only))

    # --- state-changing actions ---------------------------------------------------------
    def refuse_read_only(self, what: str) -> None:
        self.refusals.append(what)
        self.notify(
            f"This console is read-only: {what} is disabled.", title="Refused", severity="warning"
        )

    @changes_state("reconnect host")
    def action_reconnect_current(self, name: str | None = None) -> None:
        """Reconnect the host in view (host screen) or under the cursor (fleet)."""
        if name is None:
            screen = self.screen
            in_view = screen.host_name if isinstance(screen, HostScreen) else None
            name = in_view or self.fleet_screen.grid.current_host
        if name is None:
            self.notify("No host selected.", severity="warning")
            return
        self.request_reconnect(name)

    @changes_state("reconnect host")
    def request_reconnect(self, name: str) -> None:
        if name not in self.model.host_versions:
            self.notify(f"No host named {name!r} in this fleet.", severity="error")
            return
        self.push_screen(
            ConfirmScreen(f"Drop and reopen the SSH connection to {name} now?"),
            lambda yes: self.reconnect_host(name) if yes else None,
        )

    @changes_state("reconnect host")
    def reconnect_host(self, name: str) -> None:
        self.notify(self.driver.reconnect(name), title="Reconnect")


def make_app(
    fleet: Fleet,
    state: FleetState,
    *,
    read_only: bool = False,
    poller_factory: PollerFactory | None = None,
    clock: Callable[[], float] = time.time,
    store_note: str = "",
    publish_interval_s: float | None = None,
    store: sqlite_utils.Database | None = None,
    operator: str | None = None,
    alert_desk_type: type[AlertDesk] = AlertDesk,
) -> OpsConsoleApp:
    """The console on `state`. With `poller_factory(fleet, state)` the poller runs on its
    own thread and owns the state; without one, the caller drives the state on the UI
    thread (tests, benchmarks) and the app publishes it every interval.

    `store`: an open store connection for leases and alerts, used only by the console's
    workers (give it its own connection, not the poller's); without one the console has
    no lease or alert views. `operator`: who audit records and acknowledgements name
    (default: config, else login)."""
    use_timezone(fleet.config.timezone)  # every screen prints times in the operator's zone
    feed = FleetFeed(state, clock)
    interval_s = publish_interval_s or fleet.config.polling.interval_s
    if poller_factory is None:
        driver: FeedDriver = InlineDriver(feed, FeedNotes(store=store_note))
    else:
        driver = PollingThread(
            fleet, feed, poller_factory, interval_s=interval_s, store_note=store_note
        )
    gateway = desk = alert_desk = None
    if store is not None:
        who = operator or operator_name(fleet.config)
        gateway = StoreGateway(store)  # one connection, one lock, for both desks
        desk = LeaseDesk(gateway, fleet, operator=who, clock=clock)
        alert_desk = alert_desk_type(gateway, operator=who, clock=clock)
    return OpsConsoleApp(
        fleet,
        driver,
        read_only=read_only,
        clock=clock,
        publish_interval_s=interval_s,
        gateway=gateway,
        lease_desk=desk,
        alert_desk=alert_desk,
    )


def replay_app(fleet: Fleet, store_path: Path, at_ts: float, speed: float = 1.0) -> OpsConsoleApp:
    """The read-only console at `at_ts`, moving forward `speed` times as fast, fed from
    the flight recorder (`feed/replay.py`) with the alerts as they were then."""
    clock = ReplayClock(at_ts, speed)
    state = FleetState.from_fleet(fleet, now_ts=at_ts)
    poller = ReplayPoller(replay_source(store_path, state), clock)
    app = make_app(
        fleet,
        state,
        read_only=True,
        poller_factory=lambda _fleet, _state: poller,
        clock=clock,
        store=replay_store(store_path),
        publish_interval_s=min(1.0, fleet.config.polling.interval_s),
        alert_desk_type=ReplayAlertDesk,
    )
    app.replay_banner = poller.banner
    return app
