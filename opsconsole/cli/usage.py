"""`opsconsole usage`: leased GPU-hours, utilisation and unhealthy time per tenant for a
period, as a table, CSV (`--csv`) or JSON (`--json`), optionally to a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsconsole.cli.lease_common import add_common, open_context, table
from opsconsole.errors import LeaseError
from opsconsole.leases import get_tenant, tenant_usage, usage_csv, usage_json
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("usage", help="per-tenant GPU-hours and utilisation")
    add_common(parser)
    parser.add_argument("--tenant", help="one tenant (default: all)")
    parser.add_argument("--since", default="-30d", help="period start (default -30d)")
    parser.add_argument("--until", default="now", help="period end (default now)")
    parser.add_argument("--csv", action="store_true", help="print CSV")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.csv and args.json:
        raise LeaseError("choose one of --csv and --json")
    ctx = open_context(args)
    since_ts, until_ts = ctx.time(args.since), ctx.time(args.until)
    if until_ts <= since_ts:
        raise LeaseError(f"--until {args.until} is not after --since {args.since}")
    if args.tenant:
        get_tenant(ctx.db, args.tenant)  # an unknown name is an error, not an empty report
    rows = tenant_usage(ctx.db, since_ts, until_ts, tenant=args.tenant, now_ts=ctx.now_ts)
    if args.json:
        text = usage_json(rows)
    elif args.csv:
        text = usage_csv(rows).rstrip("\n")
    else:
        cells = [
            [
                r.tenant,
                r.leases,
                f"{r.gpu_hours:.1f}",
                "-" if r.util_pct_avg is None else f"{r.util_pct_avg:.1f}",
                f"{r.unhealthy_gpu_hours:.1f}",
                f"{r.unreported_gpu_hours:.1f}",
            ]
            for r in rows
        ]
        headers = ["TENANT", "LEASES", "GPU-HOURS", "UTIL %", "UNHEALTHY GPU-H", "UNREPORTED GPU-H"]
        text = f"usage {format_ts(since_ts)} → {format_ts(until_ts)}\n" + table(headers, cells)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise LeaseError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        print(text)
    return 0
