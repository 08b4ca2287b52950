"""`opsconsole tenant create|update|list|show|archive`: the labs GPUs are leased to."""

from __future__ import annotations

import argparse
from typing import Any

from opsconsole.cli.common import add_common, emit, lease_line, open_context, table
from opsconsole.errors import LeaseError
from opsconsole.leases import (
    archive_tenant,
    create_tenant,
    get_tenant,
    list_leases,
    list_tenants,
    update_tenant,
)
from opsconsole.leases.model import OPEN_STATES, Tenant
from opsconsole.leases.times import format_ts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tenant", help="create, change, list and archive tenants")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="add a tenant")
    add_common(create)
    create.add_argument("name")
    create.add_argument("--quota", type=int, required=True, help="most GPUs held at once")
    _add_fields(create)
    create.set_defaults(handler=run_create)

    update = actions.add_parser("update", help="change a tenant's contact, colour, sites, quota")
    add_common(update)
    update.add_argument("name")
    update.add_argument("--quota", type=int, help="most GPUs held at once")
    _add_fields(update)
    update.set_defaults(handler=run_update)

    listing = actions.add_parser("list", help="list tenants")
    add_common(listing)
    listing.add_argument("--all", action="store_true", help="include archived tenants")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one tenant and its reserved and active leases")
    add_common(show)
    show.add_argument("name")
    show.set_defaults(handler=run_show)

    archive = actions.add_parser("archive", help="archive a tenant with no open leases")
    add_common(archive)
    archive.add_argument("name")
    archive.set_defaults(handler=run_archive)


def _add_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contact", help="who to call (one line)")
    parser.add_argument("--colour", help="colour tag: a name such as teal, or #rrggbb")
    parser.add_argument(
        "--sites", help='allowed sites, comma-separated, or "any" (the default at create)'
    )


def _sites(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "any":
        return None
    return text.split(",")


def describe(tenant: Tenant) -> str:
    sites = ", ".join(tenant.allowed_sites) if tenant.allowed_sites else "any"
    archived = f"  ARCHIVED {format_ts(tenant.archived_ts)}" if tenant.archived else ""
    return (
        f"tenant {tenant.name}: quota {tenant.gpu_quota} GPUs, sites {sites},"
        f" contact {tenant.contact or '-'}, colour {tenant.colour or '-'}{archived}"
    )


def run_create(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    tenant = create_tenant(
        ctx.db,
        args.name,
        gpu_quota=args.quota,
        contact=args.contact or "",
        colour=args.colour or "",
        allowed_sites=_sites(args.sites),
        known_sites=list(ctx.fleet.sites),
        operator=ctx.operator,
        now_ts=ctx.now_ts,
    )
    return emit(args, tenant.as_dict(), f"created {describe(tenant)}")


def run_update(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    changes: dict[str, Any] = {}
    if args.sites is not None:
        changes["allowed_sites"] = _sites(args.sites)
    given = (args.contact, args.colour, args.quota, args.sites)
    if all(value is None for value in given):
        raise LeaseError("nothing to change: give --contact, --colour, --sites or --quota")
    before = get_tenant(ctx.db, args.name)
    tenant = update_tenant(
        ctx.db,
        args.name,
        contact=args.contact,
        colour=args.colour,
        gpu_quota=args.quota,
        known_sites=list(ctx.fleet.sites),
        operator=ctx.operator,
        now_ts=ctx.now_ts,
        **changes,
    )
    if tenant == before:  # update_tenant writes nothing (no audit row) for no change
        return emit(args, {**tenant.as_dict(), "changed": False}, f"unchanged {describe(tenant)}")
    return emit(args, {**tenant.as_dict(), "changed": True}, f"updated {describe(tenant)}")


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    tenants = list_tenants(ctx.db, include_archived=args.all)
    rows = [
        [
            t.name,
            t.gpu_quota,
            ",".join(t.allowed_sites) if t.allowed_sites else "any",
            t.contact,
            t.colour,
            "archived" if t.archived else "",
        ]
        for t in tenants
    ]
    text = table(["TENANT", "QUOTA", "SITES", "CONTACT", "COLOUR", ""], rows)
    return emit(args, [t.as_dict() for t in tenants], text)


def run_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    tenant = get_tenant(ctx.db, args.name)
    leases = list_leases(ctx.db, tenant=tenant.name, states=OPEN_STATES, now_ts=ctx.now_ts)
    held = sum(lease.gpu_count for lease in leases if lease.state(ctx.now_ts) == "active")
    lines = [describe(tenant), f"  holding {held} GPUs now; {len(leases)} open lease(s)"]
    lines += [f"  {lease_line(lease, ctx.now_ts)}" for lease in leases]
    data = {**tenant.as_dict(), "leases": [lease.as_dict(ctx.now_ts) for lease in leases]}
    return emit(args, data, "\n".join(lines))


def run_archive(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    tenant = archive_tenant(ctx.db, args.name, operator=ctx.operator, now_ts=ctx.now_ts)
    return emit(args, tenant.as_dict(), f"archived {describe(tenant)}")
