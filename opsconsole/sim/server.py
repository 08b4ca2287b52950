"""SSH servers on loopback, one per simulated host, all on one event loop.

Each host gets its own listener and ed25519 host key, so the console's host-key checks,
connection pool and per-host failures are exercised as against a real fleet. What runs
behind an exec request: the agent command (recognised by `parse_agent_command`) runs the
real `Agent` in-process against the host's simulated NVML and sysfs, a hello and then one
sample per interval on wall-clock ticks until the channel closes; anything else goes to
the small shell in `shell.py` (agentless command, nvidia-smi queries, 127 otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import msgspec

from opsconsole.agent.agent import Agent
from opsconsole.agent.bundle import parse_agent_command
from opsconsole.errors import SimError
from opsconsole.sim.backend import make_agent
from opsconsole.sim.files import write_fleet_files
from opsconsole.sim.shell import run_command_line
from opsconsole.sim.sysfs import SimSysfs
from opsconsole.sim.world import SimFleet, SimHost

log = logging.getLogger(__name__)

LISTEN_BATCH = 100
"""Listeners opened at once on start: enough to be quick, few enough not to spike."""
SCENARIO_TICK_S = 1.0
HUNG_DRIVER_POLL_S = 0.2
TCP_RETRANSMIT_S = 0.2
"""What a lost segment costs a stream on a healthy link: Linux's minimum RTO."""


@dataclass(eq=False)
class _Endpoint:
    host: SimHost
    key: asyncssh.SSHKey | None = None
    port: int = 0
    """0 until the first listen; then kept, so the host comes back on the same port."""
    acceptor: asyncssh.SSHAcceptor | None = None
    conns: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    agents: set[asyncssh.SSHServerProcess[bytes]] = field(default_factory=set)
    """Agent channels now running, so a test can kill them (`kill_agents`)."""


class _HostSshServer(asyncssh.SSHServer):
    """Tracks a host's connections so `host_unreachable` can drop them."""

    def __init__(self, endpoint: _Endpoint):
        self._endpoint = endpoint
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        if not self._endpoint.host.reachable:  # raced with the listener closing
            conn.abort()
            return
        self._endpoint.conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.conns.discard(self._conn)


class SimServer:
    """The simulated fleet behind real SSH. Pass a SimFleet, or the arguments for one."""

    def __init__(
        self,
        n_hosts: int = 4,
        seed: int = 0,
        scenario: str = "calm",
        gpus_per_host: int = 8,
        *,
        fleet: SimFleet | None = None,
        clock: Callable[[], float] = time.time,
        address: str = "127.0.0.1",
        watchdog_timeout_s: float = 2.0,
        host_names: Sequence[str] | None = None,
        client_public_key: bytes | None = None,
    ):
        """host_names serves only those hosts of the fleet (one worker's share, see
        workers.py); client_public_key authorizes that key instead of generating one."""
        self.clock = clock
        self.fleet = fleet or SimFleet(n_hosts, seed, scenario, gpus_per_host, start_ts=clock())
        self.address = address
        self.watchdog_timeout_s = watchdog_timeout_s
        names = list(self.fleet.hosts) if host_names is None else list(host_names)
        self._endpoints = {name: _Endpoint(self.fleet.host(name)) for name in names}
        self._client_public_key = client_public_key
        self._client_key: asyncssh.SSHKey | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hung_pool: ThreadPoolExecutor | None = None
        self._started = False

    @property
    def hosts(self) -> dict[str, tuple[str, int]]:
        """host name -> (address, port), once started."""
        return {name: (self.address, ep.port) for name, ep in self._endpoints.items()}

    @property
    def host_public_keys(self) -> dict[str, bytes]:
        """host name -> its host key in OpenSSH public form, once started."""
        return {
            n: ep.key.export_public_key("openssh")
            for n, ep in self._endpoints.items()
            if ep.key is not None
        }

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        public_key = self._client_public_key
        if public_key is None:
            self._client_key = asyncssh.generate_private_key(
                "ssh-ed25519", comment="opsconsole-sim"
            )
            public_key = self._client_key.export_public_key("openssh")
        self._authorized = asyncssh.import_authorized_keys(public_key.decode())
        self._hung_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sim-hung")
        endpoints = list(self._endpoints.values())
        for ep in endpoints:
            ep.key = asyncssh.generate_private_key("ssh-ed25519")
        try:
            for i in range(0, len(endpoints), LISTEN_BATCH):
                await asyncio.gather(*(self._listen(ep) for ep in endpoints[i : i + LISTEN_BATCH]))
        except OSError as exc:
            await self.stop()
            raise SimError(f"cannot listen on {self.address}: {exc.strerror or exc}") from None
        self.fleet.listeners.append(self._on_fault)
        self._started = True
        for ep in endpoints:  # faults injected before start: the port is known, now closed
            if not ep.host.reachable:
                await self._apply_reachability(ep)
        if any(h.name in self._endpoints for h in self.fleet.scenario_hosts):
            self._spawn(self._drive_scenario())

    async def stop(self) -> None:
        if self._on_fault in self.fleet.listeners:
            self.fleet.listeners.remove(self._on_fault)
        for task in list(self._tasks):
            task.cancel()
        for ep in self._endpoints.values():
            await self._close_endpoint(ep)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._hung_pool is not None:
            self._hung_pool.shutdown(wait=False, cancel_futures=True)
        self._started = False

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def write_files(
        self,
        directory: str | Path,
        interval_s: float = 2.0,
        endpoints: dict[str, tuple[str, int]] | None = None,
    ) -> Path:
        """known_hosts, id_ed25519 (0600) and config.toml for a console; returns the config
        path. Call after start(): the ports are chosen by the kernel. `endpoints` changes
        where the console reaches some hosts (a fault proxy in front of them)."""
        if not self._started or self._client_key is None:
            raise SimError("write_files needs a started server that made the client key")
        key = self._client_key
        return write_fleet_files(
            directory,
            self.fleet,
            self.hosts | (endpoints or {}),
            self.host_public_keys,
            key.export_private_key("openssh"),
            key.export_public_key("openssh"),
            interval_s,
        )

    # -- faults that change the network -------------------------------------------------

    async def inject(self, host: str, fault: str, **kw: Any) -> dict[str, Any]:
        """Start a fault and wait until the network shows it (listener closed...)."""
        resolved = self.fleet.host(host).inject(fault, **kw)
        await self._apply_reachability(self._endpoints[host])
        return resolved

    async def clear(self, host: str, fault: str, **kw: Any) -> None:
        self.fleet.host(host).clear(fault, **kw)
        await self._apply_reachability(self._endpoints[host])

    def _on_fault(self, host: SimHost, fault: str, active: bool) -> None:
        ep = self._endpoints.get(host.name)
        if fault == "host_unreachable" and ep is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, self._apply_reachability(ep))

    async def kill_agents(self, host: str, status: int = 137) -> int:
        """The agent process dies (OOM killer, a tenant's `kill -9`): its channels end
        with `status` and "Killed" on stderr, the SSH connection stays up. Returns how
        many were killed."""
        ep = self._endpoints[host]
        killed = 0
        for process in list(ep.agents):
            ep.agents.discard(process)
            with contextlib.suppress(OSError, asyncssh.Error):
                process.stderr.write(b"Killed\n")
                process.exit(status)
                killed += 1
        return killed

    async def restart(self, host: str, *, down_s: float = 0.0, new_key: bool = False) -> None:
        """sshd (down_s 0) or the whole host (down_s > 0: connections refused meanwhile)
        restarts: every connection drops, the listener comes back on the same port, with
        the same host key or, `new_key`, a freshly generated one (a re-imaged host)."""
        ep = self._endpoints[host]
        async with ep.lock:
            await self._close_endpoint(ep)
            if down_s > 0:
                await asyncio.sleep(down_s)
            if new_key:
                ep.key = asyncssh.generate_private_key("ssh-ed25519")
            if ep.host.reachable:
                await self._listen(ep)

    async def _apply_reachability(self, ep: _Endpoint) -> None:
        async with ep.lock:
            if not self._started:
                return
            if ep.host.reachable and ep.acceptor is None:
                try:
                    await self._listen(ep)
                except OSError as exc:  # someone took the port meanwhile
                    log.warning("%s: cannot listen again on %d: %s", ep.host.name, ep.port, exc)
            elif not ep.host.reachable:
                await self._close_endpoint(ep)

    async def _close_endpoint(self, ep: _Endpoint) -> None:
        acceptor, ep.acceptor = ep.acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()
        for conn in list(ep.conns):
            conn.abort()
        ep.conns.clear()

    async def _listen(self, ep: _Endpoint) -> None:
        ep.acceptor = await asyncssh.listen(
            host=self.address,
            port=ep.port,
            reuse_address=True,
            config=None,
            server_host_keys=[ep.key],
            authorized_client_keys=self._authorized,
            server_factory=lambda: _HostSshServer(ep),
            process_factory=lambda process: self._session(ep.host, process),
            encoding=None,
            password_auth=False,
            kbdint_auth=False,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
        )
        ep.port = ep.acceptor.get_port()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive_scenario(self) -> None:
        """Scenario faults follow the clock even on hosts nobody is watching."""
        while True:
            self.fleet.apply_scenario(self.clock())
            await asyncio.sleep(SCENARIO_TICK_S)

    # -- what runs behind an exec request -------------------------------------------------

    async def _session(self, host: SimHost, process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            command = process.command
            if command is None:
                process.stderr.write(b"opsconsole-sim: interactive shells are not simulated\n")
                process.exit(1)
                return
            params = parse_agent_command(command)
            if params is not None:
                await self._run_agent(host, process, params["interval_s"])
                process.exit(0)
            else:
                process.exit(await self._run_shell(host, process, command))
        except (BrokenPipeError, ConnectionError, asyncssh.Error):
            pass  # the client went away; nothing to tell it
        except Exception:
            log.exception("%s: simulated session failed", host.name)
            process.exit(255)

    async def _run_shell(
        self, host: SimHost, process: asyncssh.SSHServerProcess[bytes], command: str
    ) -> int:
        if "nvidia-smi" in command:
            while host.driver_hung:  # nvidia-smi blocks in the driver like NVML does
                await asyncio.sleep(HUNG_DRIVER_POLL_S)
        host.advance(self.clock())
        status, out, err = run_command_line(host, SimSysfs(host), command)
        process.stdout.write(out.encode())
        if err:
            process.stderr.write(err.encode())
        return status

    async def _run_agent(
        self, host: SimHost, process: asyncssh.SSHServerProcess[bytes], interval_s: float
    ) -> None:
        """Hello and samples until stdin reaches EOF, like the agent's own main loop."""
        if host.driver_hung:  # even the agent's start-up NVML calls would block
            agent = await asyncio.get_running_loop().run_in_executor(
                self._hung_pool, make_agent, host, self.clock, self.watchdog_timeout_s, interval_s
            )
        else:
            agent = make_agent(host, self.clock, None, interval_s)
        lossy = random.Random(host.name)
        agents = self._endpoints[host.name].agents if host.name in self._endpoints else set()
        agents.add(process)
        eof = asyncio.ensure_future(_read_requests(process.stdin, agent))
        encode = msgspec.json.encode  # same JSON as the agent's encode(), a tenth the cost
        try:
            while not eof.done():
                now = self.clock()
                host.advance(now)
                messages = await self._tick(host, agent)
                delay_s = host.rtt_ms / 2000.0
                if host.loss_pct and lossy.random() * 100.0 < host.loss_pct:
                    delay_s += TCP_RETRANSMIT_S
                if delay_s >= 0.001:
                    await asyncio.sleep(delay_s)
                process.stdout.write(b"".join(encode(m) + b"\n" for m in messages))
                await process.stdout.drain()
                now = self.clock()
                next_tick = (math.floor(now / interval_s) + 1.0) * interval_s
                await asyncio.wait({eof}, timeout=min(next_tick - now, interval_s))
        finally:
            agents.discard(process)
            if eof.done() and not eof.cancelled():
                eof.exception()  # a reset channel ends the stream like EOF does
            eof.cancel()

    async def _tick(self, host: SimHost, agent: Agent) -> list[dict[str, Any]]:
        """One agent tick. Inline normally; while the driver hangs (or a hung call has
        not returned) on a worker thread with the agent's watchdog armed, so a blocked
        NVML call costs that host a timeout, never the event loop."""
        watchdog = agent.watchdog
        if host.driver_hung or watchdog.busy:
            watchdog.timeout_s = self.watchdog_timeout_s
            return await asyncio.get_running_loop().run_in_executor(self._hung_pool, agent.tick)
        watchdog.timeout_s = None
        return agent.tick()


async def _read_requests(stdin: asyncssh.SSHReader[bytes], agent: Agent) -> None:
    """The console's requests (`wire 2`), as the agent's process reads them, until EOF."""
    while line := await stdin.readline():
        words = line.split()
        if len(words) == 2 and words[0] == b"wire" and words[1].isdigit():
            agent.request_wire(int(words[1]))
