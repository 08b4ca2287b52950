"""`opsconsole demo`: a simulated fleet and the console on it, in one command.

The simulator runs as a SUBPROCESS (its SSH servers and simulated hardware cost CPU that
must not compete with the console for one interpreter's GIL). Everything lives in a temp
directory: the simulator's config, keys and known_hosts, a throw-away store, the logs; on
exit the simulator is stopped by its PID and the directory removed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opsconsole.errors import SimError

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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from opsconsole.cli.console import run_console
    from opsconsole.config import load_fleet

    if args.hosts < 1:
        raise SimError("--hosts must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-demo-"))
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
        return run_console(
            fleet,
            read_only=args.read_only,
            store_path=workdir / "demo.db",
            log_path=workdir / "console.log",
        )
    finally:
        stop_simulator(simulator)
        sim_log.close()
        shutil.rmtree(workdir, ignore_errors=True)


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
