"""`opsconsole lease allocate|preview|list|show|extend|shorten|release|cancel`.

`preview` takes the same arguments as `allocate` and prints the slots it would choose,
and why, without writing anything.
"""

from __future__ import annotations

import argparse

from opsconsole.cli.common import (
    HEALTH_NOTE,
    Context,
    add_common,
    describe_lease,
    emit,
    lease_line,
    open_context,
    table,
)
from opsconsole.errors import LeaseError
from opsconsole.leases import (
    LEASE_STATES,
    LeaseRequest,
    allocate_lease,
    cancel_lease,
    extend_lease,
    get_lease,
    health_from_events,
    list_leases,
    parse_duration,
    preview_lease,
    release_lease,
    shorten_lease,
)
from opsconsole.leases.booking import check_window
from opsconsole.leases.model import OPEN_STATES
from opsconsole.leases.slotspec import format_slots, parse_slots
from opsconsole.leases.times import format_ts, format_window


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("lease", help="allocate, preview, change and list leases")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("allocate", run_allocate, "book GPUs for a tenant"),
        ("preview", run_preview, "show what allocate would choose; changes nothing"),
    ):
        sub = actions.add_parser(name, help=help_text)
        add_common(sub)
        _add_request(sub)
        sub.set_defaults(handler=handler)

    listing = actions.add_parser("list", help="list leases (reserved and active by default)")
    add_common(listing)
    listing.add_argument("--tenant")
    listing.add_argument("--host", help="leases holding a GPU of this host")
    listing.add_argument("--state", help=f"comma-separated: {', '.join(LEASE_STATES)}")
    listing.add_argument("--all", action="store_true", help="every state")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one lease in full")
    add_common(show)
    show.add_argument("id", type=int)
    show.set_defaults(handler=run_show)

    extend = actions.add_parser("extend", help="move a lease's end later (same slots)")
    add_common(extend)
    extend.add_argument("id", type=int)
    when = extend.add_mutually_exclusive_group(required=True)
    when.add_argument("--end", help="new end: ISO 8601 or relative to now (+3d)")
    when.add_argument("--by", help="how much later than the current end (2d, 12h)")
    extend.add_argument("--override", metavar="REASON", help="extend over drained/unhealthy GPUs")
    extend.set_defaults(handler=run_extend)

    shorten = actions.add_parser("shorten", help="move a lease's end earlier")
    add_common(shorten)
    shorten.add_argument("id", type=int)
    shorten.add_argument("--end", required=True, help="new end: ISO 8601 or relative to now")
    shorten.set_defaults(handler=run_shorten)

    for name, handler, help_text in (
        ("release", run_release, "end an active lease now"),
        ("cancel", run_cancel, "withdraw a reservation that has not started"),
    ):
        sub = actions.add_parser(name, help=help_text)
        add_common(sub)
        sub.add_argument("id", type=int)
        sub.set_defaults(handler=handler)


def _add_request(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--start", default="now", help="ISO 8601 (2026-12-01T00:00Z) or +2h")
    parser.add_argument("--end", required=True, help="ISO 8601 or relative to now (+7d)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--gpus", type=int, help="this many GPUs, placed on the fewest nodes")
    what.add_argument("--nodes", type=int, help="this many whole nodes")
    what.add_argument(
        "--slot",
        action="append",
        metavar="HOSTS[:GPUS]",
        help="explicit slots, repeatable: sg1-r01-n01:0-3, sg1-r01-n[02-03]",
    )
    parser.add_argument("--model", help="only hosts of this GPU model (e.g. H200)")
    parser.add_argument("--site", help="only hosts of this site (one the tenant may use)")
    parser.add_argument(
        "--within",
        choices=("leaf", "rack", "node"),
        default="any",
        help="the whole lease in one leaf switch, rack or node (refused if none has room)",
    )
    parser.add_argument(
        "--override", metavar="REASON", help="allow drained or unhealthy GPUs, recording why"
    )
    parser.add_argument("--note", default="", help="free text kept with the lease")


def _request(args: argparse.Namespace, ctx: Context) -> LeaseRequest:
    return LeaseRequest(
        tenant=args.tenant,
        start_ts=ctx.time(args.start),
        end_ts=ctx.time(args.end),
        gpus=args.gpus,
        nodes=args.nodes,
        slots=tuple(parse_slots(args.slot, ctx.fleet)) if args.slot else None,
        gpu_model=args.model,
        site=args.site,
        locality=args.within,
        override_reason=_reason(args.override),
        note=args.note,
    )


def _reason(text: str | None) -> str | None:
    if text is not None and not text.strip():
        raise LeaseError("an override needs a reason")
    return text.strip() if text else None


def run_preview(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    request = _request(args, ctx)
    placement = preview_lease(
        ctx.db, ctx.fleet, request, health=health_from_events(ctx.db, ctx.now_ts), now_ts=ctx.now_ts
    )
    # The window as allocate would book it ("now" resolved, a start just past taken as now)
    start_ts, end_ts = check_window(request.start_ts, request.end_ts, ctx.now_ts)
    lines = [
        f"would lease {len(placement.slots)} GPU(s) to {request.tenant}: "
        f"{format_slots(placement.slots)}",
        f"  {format_window(start_ts, end_ts)}",
        f"  {placement.explanation}",
        *[f"  override: {w}" for w in placement.warnings],
        f"  ({HEALTH_NOTE}; nothing was written)",
    ]
    data = {
        **placement.as_dict(),
        "tenant": request.tenant,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "start": format_ts(start_ts),
        "end": format_ts(end_ts),
        "health": HEALTH_NOTE,
    }
    return emit(args, data, "\n".join(lines))


def run_allocate(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    request = _request(args, ctx)
    lease = allocate_lease(
        ctx.db,
        ctx.fleet,
        request,
        operator=ctx.operator,
        health=health_from_events(ctx.db, ctx.now_ts),
        now_ts=ctx.now_ts,
    )
    text = f"allocated {describe_lease(lease, ctx.now_ts)}\n  ({HEALTH_NOTE})"
    return emit(args, {**lease.as_dict(ctx.now_ts), "health": HEALTH_NOTE}, text)


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    states = None if args.all else OPEN_STATES
    if args.state:
        states = tuple(s.strip() for s in args.state.split(",") if s.strip())
    leases = list_leases(
        ctx.db, tenant=args.tenant, states=states, host=args.host, now_ts=ctx.now_ts
    )
    rows = [
        [
            lease.id,
            lease.tenant,
            lease.state(ctx.now_ts),
            lease.gpu_count,
            format_ts(lease.start_ts),
            format_ts(lease.end_ts),
            "drained" if lease.affected_by_drains else "",
            format_slots(lease.slots),
        ]
        for lease in leases
    ]
    text = table(["ID", "TENANT", "STATE", "GPUS", "START", "END", "AFFECTED", "SLOTS"], rows)
    return emit(args, [lease.as_dict(ctx.now_ts) for lease in leases], text)


def run_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    lease = get_lease(ctx.db, args.id)
    return emit(args, lease.as_dict(ctx.now_ts), describe_lease(lease, ctx.now_ts))


def run_extend(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    by_s = parse_duration(args.by) if args.by is not None else None
    lease = extend_lease(
        ctx.db,
        ctx.fleet,
        args.id,
        ctx.time(args.end) if by_s is None else None,
        by_s=by_s,
        operator=ctx.operator,
        health=health_from_events(ctx.db, ctx.now_ts),
        override_reason=_reason(args.override),
        now_ts=ctx.now_ts,
    )
    return emit(args, lease.as_dict(ctx.now_ts), f"extended {lease_line(lease, ctx.now_ts)}")


def run_shorten(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    lease = shorten_lease(
        ctx.db, args.id, ctx.time(args.end), operator=ctx.operator, now_ts=ctx.now_ts
    )
    return emit(args, lease.as_dict(ctx.now_ts), f"shortened {lease_line(lease, ctx.now_ts)}")


def run_release(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    lease = release_lease(ctx.db, args.id, operator=ctx.operator, now_ts=ctx.now_ts)
    return emit(args, lease.as_dict(ctx.now_ts), f"released {lease_line(lease, ctx.now_ts)}")


def run_cancel(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    lease = cancel_lease(ctx.db, args.id, operator=ctx.operator, now_ts=ctx.now_ts)
    return emit(args, lease.as_dict(ctx.now_ts), f"cancelled {lease_line(lease, ctx.now_ts)}")
