"""`opsconsole audit verify|list`: check the hash chain of the audit log, or read it.

`verify` exits 1 naming the first edited or removed row, and prints the head (ID:HASH):
recorded somewhere else (a ticket, the NOC log), `--expect-head ID:HASH` later proves
the log up to that row was not rewritten wholesale either. It also checks that the
tenant, lease and drain tables say what the chain says, and that every head anchored
beside the store is still there; a good run anchors the head it saw.

`export` writes the rows of a period with the chain to the head, signed with the site
key; `verify --file FILE` checks such a file on any machine, without the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from opsconsole.cli.common import add_common, emit, open_context, table
from opsconsole.cli.keys import add_key_argument, site_key_path
from opsconsole.errors import LeaseError, ReportError
from opsconsole.leases import audit_entries, verify_audit
from opsconsole.leases.anchors import anchor_path, check_anchors, record_anchor, try_anchor
from opsconsole.leases.audit import parse_head
from opsconsole.leases.chain_check import tables_match_chain
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audit", help="verify, read, export or anchor the audit log")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check that no audit row was edited or removed")
    add_common(verify)
    verify.add_argument("--expect-head", metavar="ID:HASH", help="a head recorded earlier")
    verify.add_argument("--file", metavar="FILE", help="check an audit export instead")
    verify.add_argument("--pubkey", metavar="KEY", help="with --file: the pinned site key")
    verify.add_argument("--anchors", metavar="FILE", help="anchor file (default: beside store)")
    verify.set_defaults(handler=run_verify)
    export = actions.add_parser("export", help="signed rows of a period, with the chain")
    add_common(export)
    add_key_argument(export)
    export.add_argument("--from", dest="since", default="1970-01-01T00:00Z", metavar="TIME")
    export.add_argument("--to", dest="until", default="now", metavar="TIME")
    export.add_argument("file", metavar="FILE")
    export.set_defaults(handler=run_export)
    anchor = actions.add_parser("anchor", help="record the head beside the store (cron it)")
    add_common(anchor)
    anchor.set_defaults(handler=run_anchor)
    listing = actions.add_parser("list", help="audit rows, newest first")
    add_common(listing)
    listing.add_argument("--subject", help="lease:12, tenant:acme, drain:3")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_list)


def run_verify(args: argparse.Namespace) -> int:
    if args.file:
        from opsconsole.report.proof import verify_export

        result = verify_export(Path(args.file), args.pubkey)
        pinned = "pinned key" if result["pinned"] else "key in the file (NOT pinned: --pubkey)"
        return emit(
            args,
            result,
            f"audit export ok: {result['rows']} rows chained to head {result['head']},"
            f" signed by {result['signed_by']} ({pinned})",
        )
    expect = parse_head(args.expect_head) if args.expect_head else None
    ctx = open_context(args)
    report = verify_audit(ctx.db, expect_head=expect)
    anchors = Path(args.anchors) if args.anchors else anchor_path(ctx.fleet.store_path)
    # The tables are compared with the chain only once the chain itself holds: against a
    # tampered chain every difference would be noise around the one line that matters.
    problems = [report.problem] if not report.ok else []
    if report.ok:
        problems += [p for p in [check_anchors(ctx.db, anchors)] if p]
    if not problems:
        problems += tables_match_chain(ctx.db)
    if problems:
        if args.json:
            print(json.dumps({**report.as_dict(), "ok": False, "problems": problems}, indent=2))
        raise LeaseError("audit log tampered: " + "; ".join(problems), code="failed")
    note = try_anchor(anchors, report.head_id, report.head_hash, ctx.now_ts)
    if note:
        print(f"opsconsole: {note}", file=sys.stderr)
    return emit(
        args,
        report.as_dict(),
        f"audit log ok: {report.rows} rows, head {report.head_id}:{report.head_hash};"
        " tables agree with the chain",
    )


def run_export(args: argparse.Namespace) -> int:
    from opsconsole.report import build_export, signing

    key = signing.load_key(site_key_path(args))
    ctx = open_context(args)
    document = build_export(
        ctx.db,
        ctx.time(args.since),
        ctx.time(args.until),
        now_ts=ctx.now_ts,
        operator=ctx.operator,
        key=key,
    )
    head = document["head"]
    note = try_anchor(anchor_path(ctx.fleet.store_path), head["id"], head["hash"], ctx.now_ts)
    if note:
        print(f"opsconsole: {note}", file=sys.stderr)
    try:
        Path(args.file).write_text(signing.dump_document(document), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{args.file}: cannot write: {exc.strerror}") from None
    return emit(
        args,
        {"file": args.file, "rows": len(document["rows"]), "head": head},
        f"wrote {args.file}: {len(document['rows'])} rows, head {head['id']}:{head['hash']},"
        f" signed by {document['signature']['key_fingerprint']}",
    )


def run_anchor(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    report = verify_audit(ctx.db)
    if not report.ok:
        raise LeaseError(f"audit log tampered, not anchored: {report.problem}")
    path = anchor_path(ctx.fleet.store_path)
    record_anchor(path, report.head_id, report.head_hash, ctx.now_ts)
    return emit(
        args,
        {"anchors": str(path), "head_id": report.head_id, "head_hash": report.head_hash},
        f"anchored head {report.head_id}:{report.head_hash} in {path}",
    )


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    entries = audit_entries(ctx.db, subject=args.subject, limit=args.limit)
    rows = [
        [e["id"], format_ts(e["ts"]), e["operator"], e["action"], e["subject"]] for e in entries
    ]
    return emit(args, entries, table(["ID", "TIME", "OPERATOR", "ACTION", "SUBJECT"], rows))
