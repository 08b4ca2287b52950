"""`opsconsole replay --at TIME [--speed N]`: the console's fleet, host, alerts and leases
views, read-only, as they were at TIME, stepping forward N times as fast as real time,
fed from the flight recorder (minute rollups outside its raw window, and it says so)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import load_fleet
from opsconsole.errors import ConfigError
from opsconsole.leases import parse_time


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("replay", help="the console as it was at a past moment")
    add_config_argument(parser)
    parser.add_argument("--at", required=True, metavar="TIME",
                        help="2026-12-01T03:10Z, or relative: --at=-2h")  # fmt: skip
    parser.add_argument("--speed", type=float, default=1.0, metavar="N",
                        help="replay N times as fast as real time (default 1)")  # fmt: skip
    parser.add_argument("--store", metavar="PATH", help="the store (default: the config's)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.speed <= 3600:
        raise ConfigError(f"--speed {args.speed:g}: expected a number above 0, at most 3600")
    fleet = load_fleet(args.config)
    at_ts = parse_time(args.at, time.time())
    store = Path(args.store) if args.store else fleet.store_path
    if not store.exists():
        raise ConfigError(f"store {store}: no such file; nothing was recorded there")
    from opsconsole.ui.app import replay_app

    app = replay_app(fleet, store, at_ts, args.speed)
    try:
        app.run()
    finally:
        if app.gateway is not None:
            app.gateway.close()
    return 0
