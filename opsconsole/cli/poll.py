"""`opsconsole poll`: collect from the fleet without the UI.

`--once` connects to every host, waits for each one's first sample (or the timeout),
prints one snapshot (JSON with `--json`) and exits 5 (`hosts_down`) when any host is
down, so a cron job or a health check notices; `--ok-when-down` keeps it 0 (a down host
is then a finding in the output only). Exit 1 means the config or the store could not
be used. Without `--once` it runs until SIGINT/SIGTERM, writing into the
store and printing one status line a minute; on a signal it flushes and exits cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opsconsole.alerts.engine import AlertEngine, engine_for_fleet
from opsconsole.alerts.runner import AlertingPoller
from opsconsole.alerts.store import Alert
from opsconsole.cli import EXIT_CODES
from opsconsole.cli.check_config import add_config_argument
from opsconsole.collect.poller import Poller
from opsconsole.collect.sink import TelemetrySink
from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet, load_fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.plugin.host import PluginSet, load_plugins
from opsconsole.plugin.runner import PluginPoller, publish_interval
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.store.recorder import recorder_for

if TYPE_CHECKING:
    from opsconsole.validate.schedule import HandoverWorker

STATUS_LINE_INTERVAL_S = 60.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "poll", help="collect from every host without the UI (headless, or --once)"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--once", action="store_true", help="wait for one sample from each host, report, exit"
    )
    parser.add_argument("--json", action="store_true", help="with --once: print JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="with --once: give up on hosts silent after S seconds (default 30)",
    )
    parser.add_argument(
        "--no-store", action="store_true", help="do not write to the store (--once only)"
    )
    parser.add_argument(
        "--ok-when-down",
        action="store_true",
        help="with --once: exit 0 even when hosts are down (default: exit 5)",
    )
    parser.add_argument(
        "--relay",
        action="store_true",
        help="serve as a site relay: collect --site SITE and write its hosts' stream to stdout",
    )
    parser.add_argument("--site", metavar="SITE", help="with --relay: the site to collect")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "relay", False) or getattr(args, "site", None):
        from opsconsole.cli.relay import run_relay

        return run_relay(args)
    if (args.json or args.no_store) and not args.once:
        raise OpsconsoleError("--json and --no-store go with --once")
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    fleet = load_fleet(args.config)
    engine = None
    plugins = None
    if not (args.once and args.no_store):
        # A bad [plugins.NAME] or [alerts] key stops here, with its key path.
        plugins = load_plugins(fleet)
        engine = engine_for_fleet(
            fleet,
            role="opsconsole poll",
            notifiers=plugins.notifiers(),
            condition_sources=plugins.condition_sources(),
        )
    ingest = None
    if not (args.once and args.no_store):
        ingest = TelemetryIngest(open_store(fleet.store_path), recorder=recorder_for(fleet))
    if args.once:
        try:
            snapshot = asyncio.run(_poll_once(fleet, ingest, args.timeout, engine))
        finally:
            if plugins is not None:
                plugins.close()  # queued notifications are handed over (or kept) first
        print(json.dumps(snapshot, indent=2) if args.json else describe_snapshot(snapshot))
        down = snapshot["counts"].get("down", 0)
        return EXIT_CODES["hosts_down"] if down and not args.ok_when_down else 0
    return asyncio.run(_poll_forever(fleet, ingest, engine, plugins))


async def _poll_once(
    fleet: Fleet, ingest: TelemetrySink | None, timeout_s: float, engine: AlertEngine | None
) -> dict[str, Any]:
    """One snapshot; with a store, the rules are evaluated once on it and the open alerts
    are part of the snapshot (rules with a `for` duration cannot fire from one sample)."""
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    snapshot = await Poller(fleet, state, ingest=ingest).poll_once(timeout_s)
    if engine is not None:
        snapshot["alerts"] = await asyncio.to_thread(_alerts_once, engine, state)
    return snapshot


def _alerts_once(engine: AlertEngine, state: FleetState) -> list[dict[str, Any]]:
    now = time.time()
    try:
        engine.resume(now)
        engine.step(state, now)
        return [alert_summary(a) for a in engine.open_alerts()]
    finally:
        engine.close()


def alert_summary(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "summary": alert.summary,
        "labels": alert.labels,
        "acked_by": alert.acked_by,
        "silenced_by": alert.silenced_by,
    }


async def _poll_forever(
    fleet: Fleet,
    ingest: TelemetrySink | None,
    engine: AlertEngine | None,
    plugins: PluginSet | None,
) -> int:
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    probes = plugins.host_probes() if plugins is not None else ()
    poller: Poller | AlertingPoller | PluginPoller = Poller(
        fleet, state, ingest=ingest, probes=probes
    )
    if engine is not None:
        poller = AlertingPoller(poller, engine)
    if plugins is not None:
        poller = PluginPoller(
            poller, plugins, store_path=fleet.store_path, publish_interval_s=publish_interval(fleet)
        )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await poller.start()
    print(status_line(poller), flush=True)
    handover = _start_handover(fleet)
    try:
        while not stopping.is_set():
            try:
                async with asyncio.timeout(STATUS_LINE_INTERVAL_S):
                    await stopping.wait()
            except TimeoutError:
                print(status_line(poller), flush=True)
    finally:
        if handover is not None:
            await asyncio.to_thread(handover.stop)
        await poller.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print(status_line(poller) + " (stopped)", flush=True)
    return 0


def _start_handover(fleet: Fleet) -> HandoverWorker | None:
    """Cleaning after leases and scheduled checks, when `[validation]` asks for them."""
    from opsconsole.leases import operator_name
    from opsconsole.validate.schedule import start_handover_worker

    return start_handover_worker(fleet, fleet.store_path, operator=operator_name(fleet.config))


def status_line(poller: Poller | AlertingPoller | PluginPoller) -> str:
    """One line for a log: host counts, GPUs seen vs expected, store health."""
    state = poller.state
    counts = state.counts()
    gpus_seen = sum(h.gpu_count or 0 for h in state.hosts.values() if h.status == "fresh")
    gpus_expected = sum(h.expected_gpus for h in state.hosts.values())
    bad_lines = sum(h.protocol_errors for h in state.hosts.values())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"{now} hosts {len(state.hosts)}: {counts['fresh']} fresh, {counts['stale']} stale,"
        f" {counts['down']} down, {counts['pending']} pending;"
        f" GPUs {gpus_seen}/{gpus_expected}; refused lines {bad_lines}"
    )
    engine = getattr(poller, "engine", None)
    if engine is not None:
        line += f"; alerts notified {engine.notified_total}"
        if engine.standby_for:
            line += f", on stand-by (recorded by {engine.standby_for})"
        if engine.last_error:
            line += f", alerts error: {engine.last_error}"
    plugins = getattr(poller, "plugins", None)
    troubled = plugins.trouble() if plugins is not None else []
    if troubled:
        line += f"; plugins: {', '.join(troubled)}"
    writer = poller.writer
    if writer is not None:
        line += f"; store queue {writer.pending_calls}"
        if writer.dropped_calls:
            line += f", {writer.dropped_calls} samples dropped"
        if writer.last_error:
            line += f", error: {writer.last_error}"
    return line


def describe_snapshot(snapshot: dict[str, Any]) -> str:
    """A table for people: one line per host, problems first."""
    order = {"down": 0, "stale": 1, "pending": 2, "fresh": 3}
    hosts = sorted(snapshot["hosts"].values(), key=lambda h: (order[h["status"]], h["name"]))
    width = max((len(h["name"]) for h in hosts), default=4)
    lines = []
    for h in hosts:
        gpus = f"{h['gpu_count'] if h['gpu_count'] is not None else '-'}/{h['expected_gpus']}"
        why = f"{h['reason']}: {h['detail']}" if h["detail"] else h["reason"]
        events = f"  {len(h['events'])} XID/SXID" if h["events"] else ""
        line = f"{h['name']:<{width}}  {h['status']:<7} GPUs {gpus:<6} {why}{events}"
        lines.append(line.rstrip())
    counts = snapshot["counts"]
    lines.append(
        f"{len(hosts)} hosts: {counts['fresh']} fresh, {counts['stale']} stale,"
        f" {counts['down']} down"
    )
    return "\n".join(lines)
