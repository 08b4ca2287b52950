"""`opsconsole demo`: a simulated fleet and the console on it, in one command.

The simulator runs as a SUBPROCESS (its SSH servers and simulated hardware cost CPU that
must not compete with the console for one interpreter's GIL). Everything lives in a temp
directory: the simulator's config, keys and known_hosts, a throw-away store, the logs; on
exit the simulator is stopped by its PID and the directory removed.

The store starts with demo tenants (and a lease and a reservation where the fleet has
room), so a new user can open the Leases screen (`l`) and allocate at once.
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

READY_TIMEOUT_S = 60.0
"""Time for the simulator to open its listeners; scaled up for big fleets."""


def register(subparsers: argparse._SubParsersAction) -> None:
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
            seed_demo_leases(fleet.store_path, fleet, time.time())
        print(f"config: {config}  (other commands: opsconsole COMMAND --config {config})")
        return run_console(
            fleet,
            read_only=args.read_only,
            store_path=fleet.store_path,
            log_path=workdir / "console.log",
        )
    finally:
        stop_simulator(simulator)
        sim_log.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


DEMO_TENANTS = (
    # name, colour, share of the fleet's GPUs as quota, first site only
    ("aurora-labs", "#5fafff", 0.5, True),
    ("kestrel-ai", "#d787ff", 0.25, False),
    ("tern-research", "#87d787", 0.125, False),
)


def seed_demo_leases(store_path: Path, fleet: Fleet, now_ts: float) -> None:
    """Demo tenants with quotas and allowed sites, an active lease and a reservation."""
    from opsconsole.leases import LeaseRequest, allocate_lease, create_tenant
    from opsconsole.store import open_store

    total = sum(host.expected_gpus for host in fleet.hosts)
    sites = list(fleet.sites)
    db = open_store(store_path)
    try:
        for name, colour, share, first_site_only in DEMO_TENANTS:
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
            ("aurora-labs", 16, 0, 10 * 86_400),
            ("kestrel-ai", 8, 2 * 86_400, 9 * 86_400),
        ):
            request = LeaseRequest(tenant, now_ts + start_s, now_ts + end_s, gpus=gpus)
            try:
                allocate_lease(db, fleet, request, operator="demo", now_ts=now_ts)
            except LeaseError:
                pass  # a fleet too small for the example lease: tenants are enough
    finally:
        db.close()


def wait_for_ready(simulator: subprocess.Popen, ready: Path, log: Path, hosts: int) -> Path:
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


def stop_simulator(simulator: subprocess.Popen) -> None:
    """SIGTERM (the simulator closes its servers), then SIGKILL if it does not go."""
    if simulator.poll() is not None:
        return
    simulator.terminate()
    try:
        simulator.wait(10.0)
    except subprocess.TimeoutExpired:
        simulator.kill()
        simulator.wait(5.0)
