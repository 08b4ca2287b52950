"""`opsconsole audit verify|list`: check the hash chain of the audit log, or read it.

`verify` exits 1 naming the first edited or removed row, and prints the head (ID:HASH):
recorded somewhere else (a ticket, the NOC log), `--expect-head ID:HASH` later proves
the log up to that row was not rewritten wholesale either.
"""

from __future__ import annotations

import argparse
import json

from opsconsole.cli.lease_common import add_common, emit, open_context, table
from opsconsole.errors import LeaseError
from opsconsole.leases import audit_entries, verify_audit
from opsconsole.leases.audit import parse_head
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="verify or read the audit log")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check that no audit row was edited or removed")
    add_common(verify)
    verify.add_argument("--expect-head", metavar="ID:HASH", help="a head recorded earlier")
    verify.set_defaults(handler=run_verify)
    listing = actions.add_parser("list", help="audit rows, newest first")
    add_common(listing)
    listing.add_argument("--subject", help="lease:12, tenant:acme, drain:3")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=run_list)


def run_verify(args: argparse.Namespace) -> int:
    expect = parse_head(args.expect_head) if args.expect_head else None
    ctx = open_context(args)
    report = verify_audit(ctx.db, expect_head=expect)
    if not report.ok:
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
        raise LeaseError(f"audit log tampered: {report.problem}", code="failed")
    return emit(
        args,
        report.as_dict(),
        f"audit log ok: {report.rows} rows, head {report.head_id}:{report.head_hash}",
    )


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    entries = audit_entries(ctx.db, subject=args.subject, limit=args.limit)
    rows = [
        [e["id"], format_ts(e["ts"]), e["operator"], e["action"], e["subject"]] for e in entries
    ]
    return emit(args, entries, table(["ID", "TIME", "OPERATOR", "ACTION", "SUBJECT"], rows))
