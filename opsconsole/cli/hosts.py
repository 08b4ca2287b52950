"""`opsconsole hosts list|keys|trust-key|reject-key|accept-gpus`: an operator's decision on
a changed SSH host key, or on GPUs a host reports beyond its configured count.

A changed key keeps its critical alert and the poller keeps refusing the host until one
of these runs. `trust-key` shows the known and offered fingerprints (SHA256, as OpenSSH
prints them), takes a required comment, records both in the audit chain, replaces the
host's known_hosts line, and only then lets the poller (which re-reads the files within a
second) connect. `reject-key` records the decision to keep the known key (the offered one
was an intruder, or a mistake now undone) and clears the alert. `accept-gpus` does the
same for extra GPUs (a host really upgraded): shown, commented, audited, then written to
the GPU ledger the poller reads within a second.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from opsconsole.cli.common import add_common, emit, open_context, table
from opsconsole.collect.gpu_ledger import ExtraGpus, GpuLedger
from opsconsole.collect.host_keys import KeyChange, KeyLedger, trusted_fingerprints
from opsconsole.collect.ssh import key_ledger_for
from opsconsole.config import Fleet
from opsconsole.errors import CollectError, LeaseError
from opsconsole.leases.host_gpus import accept_extra_gpus
from opsconsole.leases.host_keys import decide_host_key
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hosts", help="host keys and extra GPUs waiting for an operator's decision"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="configured hosts with the key fingerprints known_hosts trusts for them"
    )
    add_common(listing)
    listing.set_defaults(handler=run_list)
    keys = actions.add_parser("keys", help="changed host keys waiting for an operator")
    add_common(keys)
    keys.set_defaults(handler=run_keys)
    for name, verb in (("trust-key", "trust"), ("reject-key", "reject")):
        helptext = (
            "trust the key a host now offers (after checking it out of band)"
            if verb == "trust"
            else "keep the known key and clear the changed-key alert"
        )
        action = actions.add_parser(name, help=helptext)
        add_common(action)
        action.add_argument("host", metavar="HOST")
        action.add_argument("--comment", help="who checked the key and how (required)")
        action.add_argument("--yes", action="store_true", help="do not ask to confirm")
        action.set_defaults(handler=partial(run_decide, decision=verb))
    gpus = actions.add_parser(
        "accept-gpus", help="count the GPUs a host reports beyond its configured number"
    )
    add_common(gpus)
    gpus.add_argument("host", metavar="HOST")
    gpus.add_argument("--comment", help="why the extra GPUs are real (required)")
    gpus.add_argument("--yes", action="store_true", help="do not ask to confirm")
    gpus.set_defaults(handler=run_accept_gpus)


def ledger_of(fleet: Fleet) -> KeyLedger:
    ledger = key_ledger_for(fleet.config.ssh, fleet.path.parent)
    if ledger is None:
        raise CollectError("host keys are not checked (accept_unknown_host_keys_insecure)")
    ledger.refresh()
    return ledger


def change_lines(change: KeyChange) -> list[str]:
    known = ", ".join(change.old_fingerprints) or "(none)"
    return [
        f"host {change.host} ({change.address} port {change.port}): host key changed",
        f"  known    {known}",
        f"  offered  {change.new_fingerprint}",
        f"  seen     {format_ts(change.first_seen_ts)} to {format_ts(change.last_seen_ts)}",
    ]


def run_list(args: argparse.Namespace) -> int:
    """What to compare with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host."""
    ctx = open_context(args)
    ledger = ledger_of(ctx.fleet)
    data, rows = [], []
    for host in ctx.fleet.hosts:
        trusted = (
            trusted_fingerprints(ledger.known_hosts, host.address, host.port)
            if ledger.known_hosts is not None
            else []
        )
        change = ledger.get(host.name)
        data.append(
            {
                "host": host.name,
                "address": host.address,
                "port": host.port,
                "trusted_fingerprints": trusted,
                "offered_fingerprint": change.new_fingerprint if change else None,
            }
        )
        where = host.address if host.port == 22 else f"{host.address}:{host.port}"
        waiting = f"CHANGED: offered {change.new_fingerprint}" if change else ""
        rows.append([host.name, where, ", ".join(trusted) or "(none)", waiting])
    return emit(args, data, table(["HOST", "ADDRESS", "TRUSTED KEY", "WAITING"], rows))


def run_keys(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    changes = sorted(ledger_of(ctx.fleet).changes.values(), key=lambda c: c.host)
    rows = [
        [
            c.host,
            ", ".join(c.old_fingerprints) or "-",
            c.new_fingerprint,
            format_ts(c.first_seen_ts),
        ]
        for c in changes
    ]
    text = table(["HOST", "KNOWN", "OFFERED", "FIRST SEEN"], rows)
    return emit(args, [c.as_dict() for c in changes], text)


def operator_decision(
    args: argparse.Namespace, facts: list[str], comment_prompt: str, confirm_prompt: str
) -> str | None:
    """An audited decision's comment, asked for on a terminal when not given, and its
    confirmation (`--yes` off a terminal); None when the operator declines."""
    interactive = sys.stdin.isatty() and not args.json
    if interactive:
        print("\n".join(facts))
    comment: str | None = args.comment
    if comment is None and interactive:
        comment = input(comment_prompt)
    if not comment or not comment.strip():
        raise LeaseError(f"host {args.host}: a comment is required (--comment)")
    if not args.yes:
        if not interactive:
            raise LeaseError("not a terminal: confirm with --yes")
        if input(confirm_prompt).strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return None
    return comment


def run_decide(args: argparse.Namespace, decision: str) -> int:
    ctx = open_context(args)
    ledger = ledger_of(ctx.fleet)
    change = ledger.get(args.host)
    if change is None:
        raise CollectError(f"host {args.host}: no changed host key is waiting for a decision")
    verb = f"trust {change.new_fingerprint}" if decision == "trust" else "keep the known key"
    comment = operator_decision(
        args,
        change_lines(change),
        "comment (who checked the key, and how): ",
        f"{verb} for {args.host}? [y/N] ",
    )
    if comment is None:
        return 1
    decide_host_key(
        ctx.db,
        ledger,
        args.host,
        decision=decision,
        comment=comment,
        operator=ctx.operator,
        now_ts=ctx.now_ts,
    )
    done = (
        f"host {args.host}: key {change.new_fingerprint} trusted; the poller connects with it"
        if decision == "trust"
        else f"host {args.host}: offered key {change.new_fingerprint} rejected; known key kept"
    )
    return emit(args, {**change.as_dict(), "decision": decision, "comment": comment}, done)


def extra_gpu_lines(extra: ExtraGpus) -> list[str]:
    uuids = ", ".join(extra.extra_uuids) or "(none given)"
    more = extra.reported - extra.accepted
    return [
        f"host {extra.host}: configured {extra.configured} GPUs, accepted {extra.accepted},"
        f" reports {extra.reported} ({more} extra, kept out of totals)",
        f"  extra UUIDs  {uuids}",
        f"  seen         {format_ts(extra.seen_ts)}",
    ]


def run_accept_gpus(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    if args.host not in {h.name for h in ctx.fleet.hosts}:
        raise CollectError(f"host {args.host}: not in the config")
    ledger = GpuLedger.for_fleet(ctx.fleet)
    ledger.refresh()
    extra = ledger.pending.get(args.host)
    if extra is None:
        raise CollectError(f"host {args.host}: reports no GPUs beyond those accepted")
    comment = operator_decision(
        args,
        extra_gpu_lines(extra),
        "comment (why the extra GPUs are real): ",
        f"count {extra.reported} GPUs on {args.host}? [y/N] ",
    )
    if comment is None:
        return 1
    accept_extra_gpus(
        ctx.db, ledger, args.host, comment=comment, operator=ctx.operator, now_ts=ctx.now_ts
    )
    done = f"host {args.host}: {extra.reported} GPUs accepted; counted from its next sample"
    return emit(args, {**extra.as_dict(), "comment": comment}, done)
