"""`opsconsole usage`: leased GPU-hours, utilisation, unhealthy time, time under a
critical alert and energy (kWh, measured or estimated) per tenant for a period, as a
table, CSV (`--csv`) or JSON (`--json`), optionally to a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsconsole.cli.common import add_common, open_context, table
from opsconsole.errors import LeaseError
from opsconsole.leases import get_tenant
from opsconsole.leases.times import format_ts
from opsconsole.report.usage import TenantUsage, tenant_usage, usage_csv, usage_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("usage", help="per-tenant GPU-hours and utilisation")
    add_common(parser)
    parser.add_argument("--tenant", help="one tenant (default: all)")
    parser.add_argument("--since", default="-30d", help="period start (default -30d)")
    parser.add_argument("--until", default="now", help="period end (default now)")
    parser.add_argument("--csv", action="store_true", help="print CSV")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead")
    parser.set_defaults(handler=run)


HEADERS = (
    "TENANT",
    "LEASES",
    "GPU_HOURS",
    "UTIL_PCT_AVG",
    "UNHEALTHY_GPU_HOURS",
    "UNREPORTED_GPU_HOURS",
    "ALERT_AFFECTED_GPU_HOURS",
    "ENERGY_KWH",
    "ENERGY_SOURCE",
)
"""The JSON and CSV field names in capitals: one name per figure, whatever the format."""


def run(args: argparse.Namespace) -> int:
    """Validate the period and tenant before reading, so a typo is an error, not zeros."""
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
        text = f"usage {format_ts(since_ts)} → {format_ts(until_ts)}\n" + _table(rows)
    _write(args.output, text)
    return 0


def _table(rows: list[TenantUsage]) -> str:
    """One line per tenant, hours to one decimal, kWh to two; "-" for utilisation never
    read. ENERGY_SOURCE marks an estimate: measured, estimated, mixed or none."""
    cells = [
        [
            r.tenant,
            r.leases,
            f"{r.gpu_hours:.1f}",
            "-" if r.util_pct_avg is None else f"{r.util_pct_avg:.1f}",
            f"{r.unhealthy_gpu_hours:.1f}",
            f"{r.unreported_gpu_hours:.1f}",
            f"{r.alert_affected_gpu_hours:.1f}",
            f"{r.energy_kwh:.2f}",
            r.energy_source,
        ]
        for r in rows
    ]
    return table(list(HEADERS), cells)


def _write(output: str | None, text: str) -> None:
    """To the file asked for (a billing export), else to stdout."""
    if not output:
        print(text)
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise LeaseError(f"cannot write {output}: {exc.strerror or exc}") from None
