"""`opsconsole report tenant NAME --from … --to …` and `opsconsole report verify FILE`.

The report is built from the store, signed with the site key, and printed as a summary
(default), JSON (`--json`, the form a tenant verifies), Markdown (`--md`) or written as
a PDF (`--pdf FILE`, with the detached signature `FILE.sig`). The audit head it saw is
anchored beside the store (see `opsconsole.leases.anchors`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from opsconsole.cli.common import add_common, open_context
from opsconsole.cli.keys import add_key_argument, site_key_path
from opsconsole.errors import ReportError
from opsconsole.leases.anchors import anchor_path, try_anchor
from opsconsole.leases.audit_proof import current_head
from opsconsole.report import Period, build_tenant_report, signing, verify_report
from opsconsole.report.proof import pdf_signature
from opsconsole.report.tables import markdown, summary_lines


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("report", help="signed per-tenant compliance reports")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    tenant = actions.add_parser("tenant", help="a tenant's leases, GPUs, usage and proof")
    add_common(tenant)
    add_key_argument(tenant)
    tenant.add_argument("name", metavar="NAME", help="the tenant")
    tenant.add_argument(
        "--from",
        dest="since",
        required=True,
        metavar="TIME",
        help="period start: 2026-11-01T00:00Z, or relative: --from=-30d",
    )
    tenant.add_argument(
        "--to", dest="until", default="now", metavar="TIME", help="period end (default now)"
    )
    form = tenant.add_mutually_exclusive_group()
    form.add_argument("--md", action="store_true", help="print Markdown")
    form.add_argument("--pdf", metavar="FILE", help="write a PDF (and FILE.sig)")
    tenant.add_argument("-o", "--output", metavar="FILE", help="write JSON/Markdown here")
    tenant.add_argument("--unsigned", action="store_true", help="without the site key")
    tenant.set_defaults(handler=run_tenant)
    verify = actions.add_parser("verify", help="check a report's signature and audit proof")
    verify.add_argument("file", metavar="FILE", help="report JSON, or a PDF beside FILE.sig")
    verify.add_argument("--pubkey", metavar="KEY", help="the site public key you pinned")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=run_verify)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror}") from None


def run_tenant(args: argparse.Namespace) -> int:
    key = None if args.unsigned else signing.load_key(site_key_path(args))
    ctx = open_context(args)
    period = Period(ctx.time(args.since), ctx.time(args.until))
    report = build_tenant_report(
        ctx.db, ctx.fleet, args.name, period, now_ts=ctx.now_ts, operator=ctx.operator
    )
    if key is not None:
        report = signing.sign_document(report, key)
    head_id, head_hash = current_head(ctx.db)
    note = try_anchor(anchor_path(ctx.fleet.store_path), head_id, head_hash, ctx.now_ts)
    if note:
        print(f"opsconsole: {note}", file=sys.stderr)
    if args.pdf:
        from opsconsole.report.pdf import render_pdf  # fpdf2 only when a PDF is asked for

        target = Path(args.pdf)
        data = render_pdf(report)
        _write(target, data)
        if key is not None:
            sig = pdf_signature(data, report, key, target.name)
            _write(target.with_name(target.name + ".sig"), signing.dump_document(sig).encode())
        signed = "" if key is None else f" and {target.name}.sig"
        print(f"wrote {target} ({len(data):,} bytes){signed}")
        return 0
    if args.json:
        text = signing.dump_document(report)
    elif args.md:
        text = markdown(report)
    else:
        width = max(len(k) for k, _ in summary_lines(report))
        text = "\n".join(f"{k.ljust(width)}  {v}" for k, v in summary_lines(report)) + "\n"
    if args.output:
        _write(Path(args.output), text.encode())
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    result = verify_report(Path(args.file), args.pubkey)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pinned = "pinned key" if result["pinned"] else "key in the file (NOT pinned: pass --pubkey)"
    print(
        f"report ok: signed by {result['signed_by']} ({pinned}); audit head at period end"
        f" {result['head_at_period_end']}"
    )
    return 0
