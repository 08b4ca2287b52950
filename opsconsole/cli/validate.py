"""`opsconsole validate HOSTS [--level quick|standard|long] [--fabric]` runs active checks
on nodes over SSH; `validate list|show ID|nodes|tick` reads runs and node handover states
and runs what is due (cleaning after leases, scheduled checks) once.

HOSTS is a hostlist (`sg1-r01-n[01-04]`) or several names. A run on GPUs leased during the
run's window is refused unless `--override REASON` is given (audited).
"""

from __future__ import annotations

import argparse

import hostlist

from opsconsole.cli.common import add_common, emit, open_context, table
from opsconsole.errors import ValidateError
from opsconsole.leases import handover
from opsconsole.leases.times import format_ts
from opsconsole.validate import schedule, store
from opsconsole.validate.service import validate_hosts
from opsconsole.validate.settings import validation_settings

ACTIONS = ("list", "show", "nodes", "tick")
LEVEL_NAMES = ("quick", "standard", "long", "clean")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="run active checks on nodes; list / show runs; node handover states",
        description="validate HOSTS [--level L] [--fabric] | validate list | validate show ID"
        " | validate nodes | validate tick",
    )
    add_common(parser)
    parser.add_argument("targets", nargs="+", metavar="HOSTS|ACTION")
    parser.add_argument("--level", default="quick", choices=["quick", "standard", "long"])
    parser.add_argument("--fabric", action="store_true", help="NCCL and ib_write_bw across nodes")
    parser.add_argument("--override", metavar="REASON", help="run on leased GPUs anyway")
    parser.add_argument("--host", help="list: only runs that included this host")
    parser.add_argument("--state", help="list: only runs in this state")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--raw", action="store_true", help="show: the tools' raw output too")
    parser.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    action = args.targets[0]
    if action in ACTIONS:
        return {"list": _list, "show": _show, "nodes": _nodes, "tick": _tick}[action](args)
    ctx = open_context(args)
    names = [n for t in args.targets for n in _expand(t)]
    run = validate_hosts(
        ctx.db, ctx.fleet, names, level=args.level, fabric=args.fabric,
        operator=ctx.operator, override_reason=args.override,
    )  # fmt: skip
    emit(args, run.as_dict(), describe_run(run))
    return 0 if run.state == "passed" else 3


def _expand(text: str) -> list[str]:
    try:
        names: list[str] = hostlist.expand_hostlist(text)
        return names
    except hostlist.BadHostlist as exc:
        raise ValidateError(f'bad host list "{text}": {exc}') from None


def describe_run(run: store.RunRecord, raw: bool = False) -> str:
    lines = [
        f"validation run {run.id}: {run.level}{' + fabric' if run.fabric else ''} on"
        f" {hostlist.collect_hostlist(list(run.hosts))}: {run.state.upper()}",
        f"  started  {format_ts(run.started_ts)} by {run.operator} ({run.reason})",
    ]
    if run.override_reason:
        lines.append(f"  override {run.override_reason}")
    if run.summary:
        lines.append(f"  summary  {run.summary}")
    for check in run.checks:
        who = ",".join(check.hosts) if len(check.hosts) < 3 else f"{len(check.hosts)} hosts"
        lines.append(f"  {check.status.upper():5} {check.name:12} {who:28} {check.summary}")
        if raw and check.raw:
            lines += [f"      $ {check.command}"] + [f"      {x}" for x in check.raw.splitlines()]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    runs = store.list_runs(ctx.db, host=args.host, state=args.state, limit=args.limit)
    rows = [
        [
            r.id, format_ts(r.started_ts), r.level + ("+fabric" if r.fabric else ""),
            hostlist.collect_hostlist(list(r.hosts)), r.state, r.operator, r.summary[:80],
        ]
        for r in runs
    ]  # fmt: skip
    text = table(["ID", "STARTED", "LEVEL", "HOSTS", "STATE", "BY", "SUMMARY"], rows)
    return emit(args, [r.as_dict() for r in runs], text)


def _show(args: argparse.Namespace) -> int:
    if len(args.targets) != 2 or not args.targets[1].isdigit():
        raise ValidateError("validate show takes one run id")
    ctx = open_context(args)
    run = store.get_run(ctx.db, int(args.targets[1]))
    return emit(args, run.as_dict(raw=args.raw), describe_run(run, raw=args.raw))


def _nodes(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    states = handover.node_states(ctx.db, ctx.fleet, now_ts=ctx.now_ts)
    rows = [
        [
            s.host, s.state, s.detail,
            *(format_ts(s.passes[lvl]) if lvl in s.passes else "-" for lvl in LEVEL_NAMES),
            s.failed_reason or "",
        ]
        for s in states.values()
    ]  # fmt: skip
    headers = ["HOST", "STATE", "DETAIL", "QUICK", "STANDARD", "LONG", "CLEAN", "FAILED"]
    text = table(headers, rows)
    return emit(args, [s.as_dict() for s in states.values()], text)


def _tick(args: argparse.Namespace) -> int:
    """Clean the nodes whose leases ended and run the scheduled checks that are due, once."""
    ctx = open_context(args)
    settings = validation_settings(ctx.fleet)
    runs = schedule.run_due(ctx.db, ctx.fleet, settings, operator=ctx.operator)
    text = "\n".join(describe_run(r) for r in runs) or "nothing due"
    return emit(args, [r.as_dict() for r in runs], text)
