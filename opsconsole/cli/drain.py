"""`opsconsole drain HOST[:GPU] --reason ...` and `opsconsole undrain HOST[:GPU]`.

A drain keeps placement off a node or GPU until an operator lifts it or its end time
passes; leases already on it stay and are listed as affected. `drain --list` shows the
drains in force or scheduled.
"""

from __future__ import annotations

import argparse

from opsconsole.cli.common import add_common, emit, open_context, table
from opsconsole.errors import LeaseError
from opsconsole.leases import drain, list_drains, undrain
from opsconsole.leases.slotspec import parse_target
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("drain", help="take a node or GPU out of placement")
    add_common(parser)
    parser.add_argument("target", nargs="?", metavar="HOST[:GPU]")
    parser.add_argument("--reason", help="why (required to drain)")
    parser.add_argument(
        "--until", help="end time: ISO 8601 or relative (+4h); default: until lifted"
    )
    parser.add_argument("--start", help="start time (default now), for planned maintenance")
    parser.add_argument("--list", action="store_true", help="list drains in force or scheduled")
    parser.add_argument("--all", action="store_true", help="with --list: past drains too")
    parser.set_defaults(handler=run_drain)

    lift = subparsers.add_parser(
        "undrain", help="lift the drains on a node (and its GPUs) or on one GPU"
    )
    add_common(lift)
    lift.add_argument("target", metavar="HOST[:GPU]")
    lift.set_defaults(handler=run_undrain)


def run_drain(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    if args.list:
        drains = list_drains(ctx.db, now_ts=ctx.now_ts, include_past=args.all)
        rows = [
            [
                d.id,
                d.target,
                "in force" if d.in_force(ctx.now_ts) else ("lifted" if d.lifted_ts else "-"),
                format_ts(d.start_ts),
                format_ts(d.until_ts),
                d.created_by,
                d.reason,
            ]
            for d in drains
        ]
        text = table(["ID", "TARGET", "STATE", "FROM", "UNTIL", "BY", "REASON"], rows)
        return emit(args, [d.as_dict(ctx.now_ts) for d in drains], text)
    if not args.target:
        raise LeaseError("name what to drain (HOST or HOST:GPU), or give --list")
    if not args.reason or not args.reason.strip():
        raise LeaseError("a drain needs a reason (--reason)")
    host, gpu_index = parse_target(args.target, ctx.fleet)
    result = drain(
        ctx.db,
        ctx.fleet,
        host,
        gpu_index,
        reason=args.reason,
        operator=ctx.operator,
        start_ts=ctx.time(args.start) if args.start else None,
        end_ts=ctx.time(args.until) if args.until else None,
        now_ts=ctx.now_ts,
    )
    d = result.drain
    affected = ", ".join(map(str, result.affected_lease_ids)) or "none"
    text = (
        f"drain {d.id}: {d.target} from {format_ts(d.start_ts)} until"
        f" {format_ts(d.end_ts) if d.end_ts else 'lifted'} ({d.reason})\n"
        f"  leases affected: {affected}"
    )
    data = {**d.as_dict(ctx.now_ts), "affected_lease_ids": list(result.affected_lease_ids)}
    return emit(args, data, text)


def run_undrain(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    host, gpu_index = parse_target(args.target, ctx.fleet)
    lifted = undrain(ctx.db, host, gpu_index, operator=ctx.operator, now_ts=ctx.now_ts)
    text = "\n".join(f"lifted drain {d.id}: {d.target} ({d.reason})" for d in lifted)
    return emit(args, [d.as_dict(ctx.now_ts) for d in lifted], text)
