"""One simulated fleet served from several processes, for fleets one event loop cannot
keep up with.

Every real agent sample costs the simulator about 2.5 ms of CPU (the agent's own NVML
reads, the simulated hardware behind them, SSH), so one loop saturates at 700-800 hosts
at a 2 s interval. Each worker process builds the same world from the same seed and start
time (a host's readings depend only on those) and serves its share of the hosts; the
parent holds the client key and writes the files, so a console cannot tell the
difference.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import asyncssh

from opsconsole.errors import SimError
from opsconsole.sim.files import write_fleet_files
from opsconsole.sim.world import SimFleet

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


class SimWorkers:
    """A SimFleet spread over `workers` processes; start() and stop() block."""

    def __init__(
        self,
        n_hosts: int,
        seed: int,
        scenario: str,
        gpus_per_host: int,
        workers: int,
        start_ts: float,
    ):
        self.fleet = SimFleet(n_hosts, seed, scenario, gpus_per_host, start_ts=start_ts)
        self._args = (n_hosts, seed, scenario, gpus_per_host, start_ts)
        names = list(self.fleet.hosts)
        count = max(1, min(workers, len(names)))
        self._shares = [names[i::count] for i in range(count)]
        self._client_key = asyncssh.generate_private_key("ssh-ed25519", comment="opsconsole-sim")
        self._processes: list[tuple[BaseProcess, Connection]] = []
        self.hosts: dict[str, tuple[str, int]] = {}
        self._host_keys: dict[str, bytes] = {}

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
        public = self._client_key.export_public_key("openssh")
        for share in self._shares:
            ours, theirs = context.Pipe()
            worker = context.Process(
                target=_worker_main, args=(theirs, *self._args, share, public), daemon=True
            )
            worker.start()
            theirs.close()
            self._processes.append((worker, ours))
        for started, conn in self._processes:
            if not conn.poll(START_TIMEOUT_S):
                self.stop()
                raise SimError(f"a simulator worker did not start in {START_TIMEOUT_S:.0f} s")
            try:
                reply = conn.recv()
            except EOFError:
                reply = {"error": f"exit status {started.exitcode}"}
            if "error" in reply:
                self.stop()
                raise SimError(f"a simulator worker failed: {reply['error']}")
            self.hosts.update(reply["hosts"])
            self._host_keys.update(reply["keys"])
        self.hosts = {name: self.hosts[name] for name in self.fleet.hosts}  # layout order

    def write_files(self, directory: str | Path, interval_s: float = 2.0) -> Path:
        key = self._client_key
        return write_fleet_files(
            directory,
            self.fleet,
            self.hosts,
            self._host_keys,
            key.export_private_key("openssh"),
            key.export_public_key("openssh"),
            interval_s,
        )

    def stop(self) -> None:
        for _, conn in self._processes:
            try:
                conn.send("stop")
            except OSError:
                pass
        for process, conn in self._processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
        self._processes = []


def _worker_main(conn: Connection, *args: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    try:
        asyncio.run(_serve_share(conn, *args))
    except Exception as exc:
        try:
            conn.send({"error": str(exc) or type(exc).__name__})
        except OSError:
            pass


async def _serve_share(
    conn: Connection,
    n_hosts: int,
    seed: int,
    scenario: str,
    gpus_per_host: int,
    start_ts: float,
    names: list[str],
    client_public_key: bytes,
) -> None:
    from opsconsole.sim.server import SimServer

    fleet = SimFleet(n_hosts, seed, scenario, gpus_per_host, start_ts=start_ts)
    server = SimServer(fleet=fleet, host_names=names, client_public_key=client_public_key)
    await server.start()
    try:
        conn.send({"hosts": server.hosts, "keys": server.host_public_keys})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), stop.set)  # "stop", or EOF when the parent died
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await server.stop()
