"""`opsconsole capacity [--site S] [--days N] [--json] [--poll]`: what limits the fleet now
and in the coming weeks, ranked, with the why.

Headless it reads only the store: leases, drains, health from stored events, rack power
from the most recent minute rollups (`[capacity] power_window_min`), IB ports from stored
link events. `--poll` connects to every host first (one `Poller.poll_once`, then a few
seconds more so IB error counters have a rate) and uses those live readings and that live
health instead; it writes nothing to the store. Every figure says where it came from, and
"no data" / "no budget set" where there is nothing to show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from opsconsole.capacity import CapacityReport, Readings
from opsconsole.capacity.model import NO_DATA
from opsconsole.cli.check_config import add_config_argument
from opsconsole.cli.common import table
from opsconsole.config import Fleet
from opsconsole.leases.times import format_ts

clock = time.time
"""The report's "now" (a seam for tests)."""
POLL_SETTLE_S = 8.0
"""With --poll: collection continues this long after the first samples, so each IB port
is read twice and its error counters get a rate."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "capacity",
        help="capacity bottlenecks now and over the lease calendar, ranked",
        description="GPUs per site, leaf and rack, rack power, IB fabric, idle leased GPUs"
        " and the lease runway, with one ranked list of bottlenecks. Without --poll only the"
        " store is read: rack power from the last minutes of rollups, IB ports from stored"
        " link events, health from stored events.",
    )
    add_config_argument(parser)
    parser.add_argument("--site", help="one site (default: all)")
    parser.add_argument(
        "--days", type=int, help="days of lease calendar to cover (default [capacity] runway_days)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--poll",
        action="store_true",
        help="read power, IB ports and health live from the hosts first (takes seconds)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="with --poll: give up on hosts silent after S seconds (default 30)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from opsconsole.capacity import capacity_report, resolve_site
    from opsconsole.config import load_fleet
    from opsconsole.errors import CapacityError
    from opsconsole.leases.times import use_timezone
    from opsconsole.store import open_store

    fleet = load_fleet(args.config)
    use_timezone(fleet.config.timezone)
    site = resolve_site(fleet, args.site)  # a typo fails before any host is contacted
    if args.days is not None and args.days < 1:
        raise CapacityError("--days must be at least 1")
    readings = health = None
    if args.poll:
        readings, health = asyncio.run(_poll(fleet, args.timeout))
    db = open_store(fleet.store_path)
    try:
        report = capacity_report(
            db,
            fleet,
            now_ts=clock(),
            site=site,
            days=args.days,
            readings=readings,
            health=health,
            health_source="live (--poll)",
        )
    finally:
        db.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else describe(report))
    return 0


async def _poll(fleet: Fleet, timeout_s: float) -> tuple[Readings, dict[object, str]]:
    from opsconsole.capacity.live import (
        PortErrorRates,
        health_from_samples,
        live_readings,
        node_power_from_state,
        state_hosts,
    )
    from opsconsole.collect.poller import Poller
    from opsconsole.collect.state import FleetState

    state = FleetState.from_fleet(fleet, now_ts=time.time())
    poller = Poller(fleet, state)
    rates = PortErrorRates(fleet.config.capacity.ib_error_counters)
    await poller.start()
    try:
        await poller.poll_once(timeout_s)
        live_readings(state_hosts(state), rates)  # first look: each port's baseline
        await asyncio.sleep(max(POLL_SETTLE_S, 2 * fleet.config.polling.interval_s))
        state.tick(time.time())
        hosts = state_hosts(state)
        readings = live_readings(hosts, rates, node_power_from_state(state))
        health = health_from_samples(hosts, {h.name: h.expected_gpus for h in fleet.hosts})
    finally:
        await poller.stop()
    return readings, health


# --- text ---------------------------------------------------------------------------------


def _n(value: float | None, fmt: str = "{:.1f}") -> str:
    return NO_DATA if value is None else fmt.format(value)


def describe(report: CapacityReport) -> str:
    where = report.site or "all sites"
    out = [f"capacity of {where} at {format_ts(report.now_ts)}"]
    out += [f"  {key}: {value}" for key, value in report.sources.items()]
    out += ["", "BOTTLENECKS (ranked)"]
    if not report.bottlenecks:
        out.append("  none: every figure is inside its threshold")
    for b in report.bottlenecks:
        out.append(f"{b.rank:>3}. {b.severity.upper():<8} {b.title}")
        out.append(f"       measured   {b.measured}")
        out.append(f"       threshold  {b.threshold}")
        out.append(f"       why        {b.why}")
        out.append(f"       action     {b.action}")
    out += ["", "GPUS (free: placeable now for a lease of the placement window)"]
    rows = []
    for o in report.occupancy:
        indent = {"site": "", "leaf": "  ", "rack": "    "}[o.level]
        largest = " / ".join(f"{lv.gpus}" for lv in o.largest)
        rows.append(
            [
                f"{indent}{o.name}",
                o.total_gpus,
                o.healthy_gpus,
                o.leased_gpus,
                o.reserved_gpus,
                o.drained_gpus,
                o.free_gpus,
                o.free_whole_nodes,
                o.scattered_free_gpus,
                _n(o.fragmentation_pct, "{:.0f} %"),
                largest,
            ]
        )
    headers = ["SITE/LEAF/RACK", "TOTAL", "HEALTHY", "LEASED", "RESERVED", "DRAINED", "FREE"]
    headers += ["WHOLE NODES", "SCATTERED", "FRAGMENTED", "LARGEST node/rack/leaf(/site)"]
    out.append(table(headers, rows))
    out += ["", "POWER AND THERMAL (per rack)"]
    rows = [
        [
            p.rack,
            _n(p.measured_kw),
            _n(p.budget_kw) if p.budget_kw is not None else "-",
            _n(p.use_pct, "{:.0f} %") if p.budget_kw is not None else "-",
            f"{p.hosts_reporting}/{p.hosts}",
            _n(p.power_cap_share_pct, "{:.1f} %"),
            _n(p.thermal_share_pct, "{:.1f} %"),
            p.note,
        ]
        for p in report.power
    ]
    headers = ["RACK", "POWER kW", "BUDGET kW", "USE", "REPORTING", "POWER-CAP", "THERMAL"]
    out.append(table([*headers, "NOTE"], rows))
    out += ["", "FABRIC (per leaf switch)"]
    rows = [
        [
            f.leaf,
            f.ports_down,
            f.ports_below_rate,
            f.ports_with_errors,
            f"{f.hosts_unknown}/{f.hosts}",
            ", ".join(f.tenants) or "-",
            ", ".join(map(str, f.leases)) or "-",
        ]
        for f in report.fabric
    ]
    headers = ["LEAF", "DOWN", "BELOW RATE", "ERRORS", "UNKNOWN HOSTS", "TENANTS", "LEASES"]
    out.append(table(headers, rows))
    for f in report.fabric:
        for issue in f.issues:
            out.append(f"  {f.leaf}  {issue.host} {issue.port}: {issue.problem} ({issue.detail})")
    out += ["", "UTILISATION (leased GPUs, by tenant)"]
    rows = [
        [
            t.tenant,
            t.leased_gpus,
            t.idle_gpus,
            t.busy_gpus,
            t.no_data_gpus,
            t.too_new_gpus,
            ", ".join(map(str, t.leases)) or "-",
        ]
        for t in report.idle
    ]
    headers = ["TENANT", "LEASED", "IDLE", "BUSY", "NO DATA", "LEASED < WINDOW", "IDLE LEASES"]
    out.append(table(headers, rows))
    free = ", ".join(f"{site} {n}" for site, n in report.free_healthy.items())
    out.append(f"free healthy GPUs (unsold): {free or '-'}")
    handover = "; ".join(
        f"{site} " + ", ".join(f"{n} {state}" for state, n in counts.items())
        for site, counts in report.handover.items()
        if any(counts.values())
    )
    out.append(f"nodes in handover (not sellable now): {handover or 'none'}")
    out += ["", f"RUNWAY (next {report.days} days; committed = active + reserved leases)"]
    for series in report.runway:
        over = series.first_over_committed or "never in this window"
        out.append(
            f"  {series.kind} {series.name}: {series.total_gpus} GPUs;"
            f" first over-committed day: {over}" + (f" ({series.note})" if series.note else "")
        )
        worst = max(series.days, key=lambda d: (d.over_by, d.committed_gpus - d.capacity_gpus))
        out.append(
            f"    tightest day {worst.date}: {worst.committed_gpus} committed of"
            f" {worst.capacity_gpus} available"
        )
        weeks = ", ".join(f"{w.start_date} {w.whole_nodes}" for w in series.weeks)
        out.append(f"    whole nodes free all week: {weeks}")
    if report.notes:
        out += ["", "NOTES"] + [f"  {note}" for note in report.notes]
    return "\n".join(out)
