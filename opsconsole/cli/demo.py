"""`opsconsole demo`: a simulated fleet and the console on it, in one command.

The simulator runs as a SUBPROCESS (its SSH servers and simulated hardware cost CPU that
must not compete with the console for one interpreter's GIL). Everything lives in a temp
directory: the simulator's config, keys and known_hosts, a throw-away store, the logs; on
exit the simulator is stopped by its PID and the directory removed.

The store starts with demo tenants (and a lease and a reservation where the fleet has
room), so a new user can open the Leases screen (`l`) and allocate at once. With
`--scenario capacity` it gets the leases and drains that scenario's bottlenecks need
(`seed_capacity_leases`), so the Capacity screen (`c`) has them to rank.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from opsconsole.errors import LeaseError, SimError

if TYPE_CHECKING:
    from opsconsole.config import Fleet

PlannedLease = tuple[str, tuple[str, ...], range | None, float, float, str]
"""(tenant, hosts, GPU indexes or None for all, start, end, note)"""
PlannedDrain = tuple[tuple[str, ...], float, float, str]
"""(hosts, start, end, reason)"""

READY_TIMEOUT_S = 60.0
"""Time for the simulator to open its listeners; scaled up for big fleets."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from opsconsole.sim.scenarios import SCENARIOS

    parser = subparsers.add_parser("demo", help="run a simulated fleet and open the console on it")
    parser.add_argument("--hosts", type=int, default=64, help="simulated hosts (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument(
        "--scenario",
        default="calm",
        choices=list(SCENARIOS),
        help="what goes wrong, about 30 s in (default calm)",
    )
    parser.add_argument("--read-only", action="store_true", help="open the console read-only")
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="keep the simulated fleet's config, keys and store here (default: a temporary "
        "directory removed on exit)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from opsconsole.cli.console import run_console
    from opsconsole.config import load_fleet

    if args.hosts < 1:
        raise SimError("--hosts must be at least 1")
    keep = args.dir is not None
    workdir = Path(args.dir) if keep else Path(tempfile.mkdtemp(prefix="opsconsole-demo-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(f"--dir {workdir}: cannot create: {exc.strerror}") from None
    sim_log = (workdir / "sim.log").open("wb")
    ready = workdir / "ready"
    command = [
        sys.executable, "-m", "opsconsole", "sim", "serve",
        "--hosts", str(args.hosts), "--seed", str(args.seed), "--scenario", args.scenario,
        "--dir", str(workdir / "fleet"), "--ready-file", str(ready),
    ]  # fmt: skip
    print(f"starting a simulated fleet of {args.hosts} hosts ({args.scenario}) …", flush=True)
    simulator = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=sim_log, stderr=subprocess.STDOUT
    )
    try:
        config = wait_for_ready(simulator, ready, workdir / "sim.log", args.hosts)
        fleet = load_fleet(config)
        # The fleet's own store, so CLI commands pointed at this config (`opsconsole usage
        # --config ... --json`, `opsconsole lease list`) see what the console does.
        if not fleet.store_path.exists():
            seed = {
                "capacity": seed_capacity_leases,
                "incident": seed_incident_leases,
                "handover": seed_handover_leases,
            }.get(args.scenario, seed_demo_leases)
            seed(fleet.store_path, fleet, time.time())
        if keep:
            print(f"config: {config}  (other commands: opsconsole COMMAND --config {config})")
        else:  # the directory is gone once the console quits: no path to copy from here
            print("a throw-away fleet, removed on quit (`opsconsole demo --dir DIR` keeps it)")
        started = time.time()
        code = run_console(
            fleet,
            read_only=args.read_only,
            store_path=fleet.store_path,
            log_path=workdir / "console.log",
        )
        if keep:
            print(after_demo_hints(config, args.scenario, started))
        return code
    finally:
        stop_simulator(simulator)
        sim_log.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def after_demo_hints(config: Path, scenario: str, started_ts: float) -> str:
    """What a demo kept with --dir can be asked afterwards: replay and reports."""
    from datetime import UTC, datetime

    since = datetime.fromtimestamp(started_ts, UTC).strftime("%Y-%m-%dT%H:%MZ")
    lines = [
        "the demo's store is kept; the flight recorder holds what happened:",
        f"  opsconsole replay --config {config} --at={since} --speed 10",
    ]
    if scenario == "incident":
        lines.append(
            f"  opsconsole report tenant aurora-labs --config {config} --from={since} --md"
        )
    return "\n".join(lines)


DEMO_TENANTS = (
    # name, colour, share of the fleet's GPUs as quota, first site only
    ("aurora-labs", "#5fafff", 0.5, True),
    ("kestrel-ai", "#d787ff", 0.25, False),
    ("tern-research", "#87d787", 0.125, False),
)


def seed_demo_leases(
    store_path: Path, fleet: Fleet, now_ts: float, *, tenants: bool = True, leases: bool = True
) -> None:
    """Demo tenants with quotas and allowed sites, an active lease and a reservation."""
    from opsconsole.leases import LeaseRequest, allocate_lease, create_tenant
    from opsconsole.store import open_store

    total = sum(host.expected_gpus for host in fleet.hosts)
    sites = list(fleet.sites)
    db = open_store(store_path)
    try:
        for name, colour, share, first_site_only in DEMO_TENANTS if tenants else ():
            create_tenant(
                db,
                name,
                gpu_quota=max(8, int(total * share)),
                contact=f"noc@{name}.example",
                colour=colour,
                allowed_sites=sites[:1] if first_site_only else None,
                known_sites=sites,
                operator="demo",
                now_ts=now_ts,
            )
        for tenant, gpus, start_s, end_s in (
            (
                ("aurora-labs", 16, 0, 10 * 86_400),
                ("kestrel-ai", 8, 2 * 86_400, 9 * 86_400),
            )
            if leases
            else ()
        ):
            request = LeaseRequest(tenant, now_ts + start_s, now_ts + end_s, gpus=gpus)
            try:
                allocate_lease(db, fleet, request, operator="demo", now_ts=now_ts)
            except LeaseError:
                pass  # a fleet too small for the example lease: tenants are enough
    finally:
        db.close()


def seed_incident_leases(store_path: Path, fleet: Fleet, now_ts: float) -> None:
    """The demo tenants, with the incident scenario's faulty hosts leased to two of them
    (whole nodes, for a week), so each alert names who is hurt; aurora-labs may use only
    the first site, so its compliance report has something to check. The site key is
    made beside the config, so `opsconsole report tenant` signs at once."""
    from opsconsole.cli.keys import KEY_NAME
    from opsconsole.leases import LeaseRequest, allocate_lease, create_tenant
    from opsconsole.leases.model import GpuSlot
    from opsconsole.report.signing import init_key
    from opsconsole.sim.scenarios import INCIDENT_LEASES
    from opsconsole.store import open_store

    key_path = fleet.resolve_path(KEY_NAME)
    if not key_path.exists():
        init_key(key_path)

    total = sum(host.expected_gpus for host in fleet.hosts)
    known = {host.name: host for host in fleet.hosts}
    db = open_store(store_path)
    try:
        sites = list(fleet.sites)
        for name, colour, share, first_site_only in DEMO_TENANTS:
            create_tenant(
                db, name, gpu_quota=max(16, int(total * share)), colour=colour,
                contact=f"noc@{name}.example", operator="demo", now_ts=now_ts,
                allowed_sites=sites[:1] if first_site_only else None, known_sites=sites,
            )  # fmt: skip
        for tenant, hosts in INCIDENT_LEASES:
            slots = tuple(
                GpuSlot(h, i) for h in hosts if h in known for i in range(known[h].expected_gpus)
            )
            if slots:
                request = LeaseRequest(tenant, now_ts, now_ts + 7 * 86_400, slots=slots)
                allocate_lease(db, fleet, request, operator="demo", now_ts=now_ts)
    finally:
        db.close()


def seed_handover_leases(store_path: Path, fleet: Fleet, now_ts: float) -> None:
    """The demo tenants after a real quick validation of every node (over SSH, as an
    operator would run it: leases need a pass within the scenario's 24 h), then the demo
    leases, and a lease on the node where a leftover process will fail its cleaning."""
    import random

    from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease
    from opsconsole.sim.scenarios import handover_hosts
    from opsconsole.store import open_store
    from opsconsole.validate.service import validate_hosts

    seed_demo_leases(store_path, fleet, now_ts, leases=False)
    db = open_store(store_path)
    try:
        print("validating every node (quick) before the first lease …", flush=True)
        validate_hosts(
            db, fleet, [h.name for h in fleet.hosts], level="quick", operator="demo",
            reason="demo start",
        )  # fmt: skip
        picked = handover_hosts(list(fleet.hosts), random.Random(0))
        known = {h.name: h for h in fleet.hosts}
        for name, params in picked.items():
            if params["fault"][0] != "dirty_node" or name not in known:
                continue
            slots = tuple(GpuSlot(name, i) for i in range(known[name].expected_gpus))
            request = LeaseRequest(
                "kestrel-ai", time.time(), time.time() + 86_400, slots=slots,
                note="release me: a process will be left behind",
            )  # fmt: skip
            try:
                allocate_lease(db, fleet, request, operator="demo")
            except LeaseError:
                pass
    finally:
        db.close()
    seed_demo_leases(store_path, fleet, time.time(), tenants=False)


CAPACITY_TENANT = ("wren-inference", "#ffaf5f")
"""The capacity demo's fourth tenant: small inference leases scattered over many nodes."""


def capacity_demo_plan(now_ts: float) -> tuple[list[PlannedLease], list[PlannedDrain]]:
    """The capacity scenario's leases and drains on the default 64-host fleet:
    (tenant, hosts, GPU indexes or None for all, start, end, note) and
    (hosts, start, end, reason). Day N is the UTC midnight N days after today's.

    r01 all aurora-labs (the simulator runs it flat out: over budget, power-capped);
    r02 n01-08 kestrel-ai and r03 n01-08 aurora-labs (degraded IB under both);
    r02 n09-12 tern-research (their job has ended: idle); 5 GPUs of every other node to
    wren-inference until day 7 (3 GPUs free on each, no whole node anywhere); r04 reserved
    whole by kestrel-ai from day 9 and drained for maintenance on days 10 and 11, so day 10
    is over-committed by the 32 GPUs the maintenance takes beyond what is unbooked."""
    from opsconsole.capacity.runway import day_starts
    from opsconsole.sim.scenarios import CAPACITY_FULL_LOAD, CAPACITY_IDLE, rack_nodes

    day = day_starts(now_ts, 31)
    partial = range(5)
    leases = [
        ("aurora-labs", CAPACITY_FULL_LOAD, None, now_ts, day[30], "pretraining run"),
        ("kestrel-ai", rack_nodes("sg1-r02", 1, 8), None, now_ts, day[30], "fine-tuning"),
        ("tern-research", CAPACITY_IDLE, None, now_ts, day[30], "ablations"),
        ("aurora-labs", rack_nodes("sg1-r03", 1, 8), None, now_ts, day[30], "eval cluster"),
        ("wren-inference", rack_nodes("sg1-r02", 13, 16), partial, now_ts, day[7], "serving"),
        ("wren-inference", rack_nodes("sg1-r03", 9, 16), partial, now_ts, day[7], "serving"),
        ("wren-inference", rack_nodes("sg1-r04", 1, 16), partial, now_ts, day[7], "serving"),
        ("kestrel-ai", rack_nodes("sg1-r04", 1, 16), None, day[9], day[16], "next training run"),
    ]
    drains = [(rack_nodes("sg1-r04", 1, 16), day[10], day[12], "PDU maintenance (planned)")]
    return leases, drains


def seed_capacity_leases(store_path: Path, fleet: Fleet, now_ts: float) -> None:
    """Tenants and the leases and drains of `capacity_demo_plan`; parts whose hosts the
    fleet lacks (a demo smaller than 64 hosts) are left out."""
    from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, create_tenant, drain
    from opsconsole.store import open_store

    total = sum(host.expected_gpus for host in fleet.hosts)
    sites = list(fleet.sites)
    known = {host.name: host for host in fleet.hosts}
    db = open_store(store_path)
    try:
        tenants = [(name, colour, first) for name, colour, _share, first in DEMO_TENANTS]
        for name, colour, first_site_only in [*tenants, (*CAPACITY_TENANT, False)]:
            create_tenant(
                db,
                name,
                gpu_quota=max(8, total),
                contact=f"noc@{name}.example",
                colour=colour,
                allowed_sites=sites[:1] if first_site_only else None,
                known_sites=sites,
                operator="demo",
                now_ts=now_ts,
            )
        leases, drains = capacity_demo_plan(now_ts)
        for tenant, hosts, indexes, start_ts, end_ts, note in leases:
            slots = tuple(
                GpuSlot(h, i)
                for h in hosts
                if h in known
                for i in (indexes if indexes is not None else range(known[h].expected_gpus))
            )
            if not slots:
                continue
            request = LeaseRequest(tenant, start_ts, end_ts, slots=slots, note=note)
            try:
                allocate_lease(db, fleet, request, operator="demo", now_ts=now_ts)
            except LeaseError:
                pass  # a fleet laid out differently: the rest of the demo still stands
        for hosts, start_ts, end_ts, reason in drains:
            for host in (h for h in hosts if h in known):
                drain(
                    db, fleet, host, reason=reason, operator="demo",
                    start_ts=start_ts, end_ts=end_ts, now_ts=now_ts,
                )  # fmt: skip
    finally:
        db.close()


def wait_for_ready(simulator: subprocess.Popen[bytes], ready: Path, log: Path, hosts: int) -> Path:
    """The config path the simulator writes into its ready file, once it listens."""
    timeout_s = READY_TIMEOUT_S + hosts * 0.05
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready.exists():
            return Path(ready.read_text(encoding="utf-8").strip())
        if simulator.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            why = tail[-1] if tail else f"exit status {simulator.returncode}"
            raise SimError(f"the simulator stopped before it was ready: {why}")
        time.sleep(0.1)
    raise SimError(f"the simulator was not ready after {timeout_s:.0f} s")


def stop_simulator(simulator: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the simulator closes its servers), then SIGKILL if it does not go."""
    if simulator.poll() is not None:
        return
    simulator.terminate()
    try:
        simulator.wait(10.0)
    except subprocess.TimeoutExpired:
        simulator.kill()
        simulator.wait(5.0)
