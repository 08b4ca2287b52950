"""`opsconsole console`: the live console on a real config.

The store is opened here, before the app: a store that cannot be opened (locked, read-only
disk) is not a reason to refuse to show the fleet, so the console runs without recording
and says so in its header. Logging goes to a file (or nowhere): a log line written to the
terminal would tear through the screen.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opsconsole.alerts.notify import AlertTransition, TransitionKind
from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import Fleet, load_fleet
from opsconsole.errors import StoreError

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp
    from opsconsole.validate.store import RunRecord

_TOASTED = (TransitionKind.FIRING, TransitionKind.REFIRED)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("console", help="open the live rack status console")
    add_config_argument(parser)
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="for NOC wall screens: refuse every action that changes anything",
    )
    parser.add_argument("--log", metavar="FILE", help="write collection logs to FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fleet = load_fleet(args.config)
    return run_console(
        fleet, read_only=args.read_only, log_path=Path(args.log) if args.log else None
    )


class OnceLongCommands(logging.Filter):
    """asyncssh logs every channel's command at INFO; the agent's command carries the
    agent's whole source (~35 KB), so 64 hosts reconnecting wrote megabytes. A long
    command is logged in full the first time, then by its size and a digest."""

    LONG = 200

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            record.name.startswith("asyncssh")
            and isinstance(args, tuple)
            and len(args) == 1
            and isinstance(args[0], str | bytes)
            and len(args[0]) > self.LONG
            and "Command" in str(record.msg)
        ):
            command = args[0] if isinstance(args[0], str) else args[0].decode("utf-8", "replace")
            digest = hashlib.sha256(command.encode()).hexdigest()[:12]
            if digest in self.seen:
                record.args = (f"<{len(command)} characters, {digest}, logged in full above>",)
            else:
                self.seen.add(digest)
                record.args = (f"{command}  [{digest}]",)
        return True


def route_logs(log_path: Path | None) -> None:
    """Send every log record to a file, or drop them; never to the terminal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_path is None:
        root.addHandler(logging.NullHandler())
        return
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.addFilter(OnceLongCommands())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def build_console(
    fleet: Fleet, *, read_only: bool = False, store_path: Path | None = None
) -> tuple[OpsConsoleApp, Callable[[], None]]:
    """The console app on `fleet` with the real poller and store (telemetry and leases),
    and a function that releases the store afterwards. A store that cannot be opened
    becomes a header note."""
    from opsconsole.alerts.engine import engine_for_fleet
    from opsconsole.alerts.runner import AlertingPoller
    from opsconsole.collect.poller import Poller
    from opsconsole.collect.state import FleetState
    from opsconsole.plugin.host import load_plugins
    from opsconsole.plugin.runner import PluginPoller, publish_interval
    from opsconsole.store import TelemetryIngest, open_store
    from opsconsole.store.recorder import recorder_for
    from opsconsole.ui.app import make_app

    path = store_path or fleet.store_path
    db, lease_db, ingest, store_note = None, None, None, ""
    try:
        db = open_store(path)
        ingest = TelemetryIngest(db, recorder=recorder_for(fleet))
        # Leases get their own connection: SQLite transactions belong to a connection,
        # and the ingest thread's telemetry writes must not share a lease's transaction.
        lease_db = open_store(path)
    except StoreError as exc:
        store_note = f"not recording: {exc}" if db is None else f"no leases: {exc}"
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    # Built before the app: a bad [alerts] rule is a config error, reported before the
    # screen opens. The engine writes to its own connection on its own thread.
    plugins = load_plugins(fleet, store_path=path if db is not None else None)
    toasts = ConsoleToasts()  # the app is built below; the toasts reach it once it runs
    engine = None
    if db is not None:
        engine = engine_for_fleet(
            fleet,
            store_path=path,
            role="console",
            notifiers=[*plugins.notifiers(), toasts],
            condition_sources=plugins.condition_sources(),
        )

    def poller_factory(fleet: Fleet, state: FleetState) -> PluginPoller:
        poller: Poller | AlertingPoller = Poller(
            fleet, state, ingest=ingest, probes=plugins.host_probes()
        )
        if engine is not None:
            poller = AlertingPoller(poller, engine)
        return PluginPoller(
            poller,
            plugins,
            store_path=path if db is not None else None,
            publish_interval_s=publish_interval(fleet),
        )

    app = make_app(
        fleet,
        state,
        read_only=read_only,
        poller_factory=poller_factory,
        store_note=store_note,
        store=lease_db,
    )
    toasts.attach(app)

    def release_store() -> None:
        if app.gateway is not None:
            app.gateway.close()  # waits for a lease or alert worker still inside a call
        if db is not None:
            db.close()

    return app, release_store


def _redraw_leases(app: OpsConsoleApp) -> Callable[[list[RunRecord]], None]:
    """A finished cleaning or scheduled run changes node states: re-read the lease board,
    and say so when a node failed (it is drained now)."""

    def redraw(runs: list[RunRecord]) -> None:
        if app.is_running:
            try:
                app.call_from_thread(app.leases.refresh)
                for run in runs:
                    if run.state == "failed":
                        text = f"validation run {run.id} ({run.reason}): {run.summary}"
                        app.call_from_thread(
                            app.notify, text, title="Validation", severity="error",
                            timeout=15, markup=False,
                        )  # fmt: skip
            except RuntimeError:
                pass  # the app is closing

    return redraw


class ConsoleToasts:
    """An `AlertNotifier` that hands new firings to the console as toasts; called on the
    engine's thread. Acknowledgements and resolutions are already on screen.

    Built before the app, because the engine takes its notifiers when it is built (and a
    bad rule must fail before the screen opens); `attach` names the app once it exists.
    Until the app runs, firings are in the store and the log only."""

    def __init__(self) -> None:
        self.app: OpsConsoleApp | None = None

    def attach(self, app: OpsConsoleApp) -> None:
        self.app = app

    def alert_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        app = self.app
        alerts = [t.alert for t in transitions if t.kind in _TOASTED]
        if not alerts or app is None or not app.is_running:
            return
        try:
            app.call_from_thread(app.alerts.notified, alerts)
        except RuntimeError:
            pass  # the app is closing; the alerts are in the store and the log


def run_console(
    fleet: Fleet,
    *,
    read_only: bool = False,
    store_path: Path | None = None,
    log_path: Path | None = None,
) -> int:
    from opsconsole.ui.feed.runtime import tune_garbage_collector

    route_logs(log_path)
    app, release_store = build_console(fleet, read_only=read_only, store_path=store_path)
    tune_garbage_collector()
    handover = None
    if not read_only:  # cleaning after leases and scheduled checks ([validation])
        from opsconsole.leases import operator_name
        from opsconsole.validate.schedule import start_handover_worker

        handover = start_handover_worker(
            fleet,
            store_path or fleet.store_path,
            operator=operator_name(fleet.config),
            on_runs=_redraw_leases(app),
        )
    try:
        app.run()
    finally:
        if handover is not None:
            handover.stop()
        release_store()
    return app.return_code or 0
