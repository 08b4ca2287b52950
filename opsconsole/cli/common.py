"""What the sub-commands share: the config and store they act on, who the operator is,
times as typed, and printing (text or --json).

Health for placement: the CLI has no live state, so it passes what the store last
recorded (`health_from_events`) and says so; the console passes its live state.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import Fleet, load_fleet
from opsconsole.leases import Lease, operator_name, parse_time
from opsconsole.leases.slotspec import format_slots
from opsconsole.leases.times import TIME_HELP, format_ts, format_window, use_timezone
from opsconsole.store import open_store

HEALTH_NOTE = "health from stored events (host_down, gpu_lost); live state not consulted"


@dataclass
class Context:
    fleet: Fleet
    db: sqlite_utils.Database
    operator: str
    now_ts: float

    def time(self, text: str) -> float:
        return parse_time(text, self.now_ts)


_opened: list[sqlite_utils.Database] = []
"""Stores opened by `open_context` during the command now running."""


def open_context(args: argparse.Namespace) -> Context:
    fleet = load_fleet(args.config)
    use_timezone(fleet.config.timezone)
    db = open_store(fleet.store_path)
    _opened.append(db)
    return Context(fleet, db, operator_name(fleet.config), time.time())


def close_contexts() -> None:
    """Close the stores the command opened: `main` calls it when the command ends, so a
    caller in the same process (a script, a test) is not left holding connections."""
    while _opened:
        _opened.pop().close()


def add_common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.epilog = TIME_HELP


def emit(args: argparse.Namespace, data: object, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; "(none)" for no rows."""
    if not rows:
        return "(none)"
    cells = [[str(c) for c in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def lease_line(lease: Lease, now_ts: float) -> str:
    return (
        f"lease {lease.id} for {lease.tenant}: {lease.gpu_count} GPU(s),"
        f" {format_window(lease.start_ts, lease.end_ts)} ({lease.state(now_ts)})"
    )


def describe_lease(lease: Lease, now_ts: float) -> str:
    lines = [
        lease_line(lease, now_ts),
        f"  slots      {format_slots(lease.slots)}",
        f"  placement  {lease.placement}",
        f"  created    {format_ts(lease.created_ts)} by {lease.created_by}",
    ]
    if lease.released_ts is not None:
        lines.append(f"  released   {format_ts(lease.released_ts)}")
    if lease.cancelled_ts is not None:
        lines.append(f"  cancelled  {format_ts(lease.cancelled_ts)}")
    if lease.override_reason:
        lines.append(f"  override   {lease.override_reason}")
    if lease.note:
        lines.append(f"  note       {lease.note}")
    if lease.affected_by_drains:
        lines.append(f"  AFFECTED   by drain(s) {', '.join(map(str, lease.affected_by_drains))}")
    return "\n".join(lines)
