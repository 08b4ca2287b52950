"""`opsconsole sim serve`: a simulated GPU fleet behind real SSH servers on loopback, with
the known_hosts, client key and config.toml a console needs to watch it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from opsconsole.errors import SimError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from opsconsole.sim.scenarios import SCENARIOS

    sim = subparsers.add_parser("sim", help="run a simulated GPU fleet on loopback")
    sim_commands = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    serve = sim_commands.add_parser(
        "serve",
        help="serve simulated hosts over SSH until interrupted",
        description="Start one SSH server per simulated host on 127.0.0.1 and write "
        "known_hosts, id_ed25519 and config.toml into DIR.",
    )
    serve.add_argument("--hosts", type=int, default=16, help="number of hosts (default 16)")
    serve.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    serve.add_argument(
        "--scenario",
        default="calm",
        help=f"one of: {', '.join(SCENARIOS)} (default calm)",
    )
    serve.add_argument("--gpus-per-host", type=int, default=8, help=argparse.SUPPRESS)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes to spread the hosts over (one keeps up with ~600 hosts at 2 s)",
    )
    serve.add_argument("--interval", type=float, default=2.0, help="polling interval_s in config")
    serve.add_argument("--dir", required=True, type=Path, help="where to write the files")
    serve.add_argument(
        "--ready-file",
        type=Path,
        help="write this file (holding the config path) once every host is listening",
    )
    serve.set_defaults(handler=_serve)

    def show_help(args: argparse.Namespace) -> int:
        sim.print_help()
        return 2

    sim.set_defaults(handler=show_help)


def _serve(args: argparse.Namespace) -> int:
    from opsconsole.sim.scenarios import SCENARIOS

    if args.scenario not in SCENARIOS:
        raise SimError(f"unknown scenario {args.scenario!r}; choose from {', '.join(SCENARIOS)}")
    if args.hosts < 1:
        raise SimError("--hosts must be at least 1")
    if args.workers < 1:
        raise SimError("--workers must be at least 1")
    _check_writable(args.dir)
    if args.workers > 1:
        return _run_workers(args)
    return asyncio.run(_run(args))


def _check_writable(directory: Path) -> None:
    """Fail before opening a thousand listeners, with the reason in one line."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(f"cannot create {directory}: {exc.strerror or exc}") from None
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise SimError(f"{directory} is not a writable directory")


async def _run(args: argparse.Namespace) -> int:
    from opsconsole.sim.server import SimServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = SimServer(args.hosts, args.seed, args.scenario, args.gpus_per_host)
    await server.start()
    try:
        config = server.write_files(args.dir, interval_s=args.interval)
        if args.ready_file is not None:  # before the line: either one means "ready"
            _write_ready(args.ready_file, config)
        print(f"serving {args.hosts} simulated hosts; config: {config}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("simulated fleet stopped", file=sys.stderr, flush=True)
    return 0


def _run_workers(args: argparse.Namespace) -> int:
    import threading
    import time

    from opsconsole.sim.workers import SimWorkers

    stop = threading.Event()
    workers = SimWorkers(
        args.hosts, args.seed, args.scenario, args.gpus_per_host, args.workers, time.time()
    )
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        workers.start()
        config = workers.write_files(args.dir, interval_s=args.interval)
        if args.ready_file is not None:
            _write_ready(args.ready_file, config)
        print(f"serving {args.hosts} simulated hosts; config: {config}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        workers.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("simulated fleet stopped", file=sys.stderr, flush=True)
    return 0


def _write_ready(path: Path, config: Path) -> None:
    """Written whole under a temporary name, then renamed: a watcher never reads half."""
    try:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(f"{config}\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        raise SimError(f"cannot write the ready file {path}: {exc.strerror or exc}") from None
