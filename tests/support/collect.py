"""In-test SSH servers on loopback for collection tests: each "host" is an asyncssh server
on its own port whose process handler writes whatever lines a test needs; the lines the
fake agents send.

The user's environment is kept out: explicit known_hosts and identity file, no
~/.ssh/config, and a per-test config file in tmp_path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from opsconsole.config import Fleet, Host, fleet_from_dict

Handler = Callable[[asyncssh.SSHServerProcess], Awaitable[None]]


class FakeCommands:
    """The in-test servers ignore the command line; agentless output is JSON already."""

    agentless_command = "agentless"

    def agent_command(self, host: Host, interval_s: float) -> str:
        return f"agent --interval {interval_s:g}"

    def parse_agentless(self, text: str, seq: int, ts: float) -> dict:
        sample = json.loads(text)
        sample.update(seq=seq, ts=ts)
        return sample

    def parse_agentless_hello(self, text: str, ts: float) -> dict:
        hello = json.loads(hello_line())
        hello.update(mode="agentless", ts=ts)
        return hello


@dataclass
class Keys:
    host_key: asyncssh.SSHKey
    other_host_key: asyncssh.SSHKey
    client_key_path: Path
    authorized: asyncssh.SSHAuthorizedKeys
    known_hosts_path: Path
    known_lines: list[str] = field(default_factory=list)

    def trust(self, port: int, key: asyncssh.SSHKey | None = None) -> None:
        key = key or self.host_key
        self.known_lines.append(f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}")
        self.known_hosts_path.write_text("\n".join(self.known_lines) + "\n")


@dataclass
class FakeHost:
    name: str
    port: int
    server: asyncssh.SSHAcceptor | None
    connections: list[float] = field(default_factory=list)
    """Loop times at which a client connection was accepted (for backoff checks)."""
    channels_closed: int = 0
    """Handlers that saw their stdin reach EOF (the console closed the channel)."""
    live: list = field(default_factory=list)
    """Server-side connections, to drop them from a test."""


class ServerFarm:
    """Starts in-test SSH hosts and builds a Fleet that points at them."""

    def __init__(self, tmp_path: Path, keys: Keys):
        self.tmp_path = tmp_path
        self.keys = keys
        self.hosts: list[FakeHost] = []
        self._extra: list[dict] = []
        self._plain_servers: list[tuple[asyncio.Server, list]] = []
        self._all: list[FakeHost] = []

    async def add(
        self,
        name: str,
        handler: Handler | None,
        *,
        host_key: asyncssh.SSHKey | None = None,
        trusted_key: asyncssh.SSHKey | None = None,
        authorized: bool = True,
        trusted: bool = True,
        mode: str = "agent",
        server_factory: type[asyncssh.SSHServer] | None = None,
        in_fleet: bool = True,
    ) -> FakeHost:
        """A host whose process handler is `handler`; handler None means a port that
        refuses connections."""
        if handler is None:
            port = _free_port()
            entry = FakeHost(name, port, None)
        else:
            entry = FakeHost(name, 0, None)
            loop = asyncio.get_running_loop()

            class Server(server_factory or asyncssh.SSHServer):
                def connection_made(self, conn):
                    entry.connections.append(loop.time())
                    entry.live.append(conn)
                    super().connection_made(conn)

            async def process_factory(process: asyncssh.SSHServerProcess) -> None:
                try:
                    await handler(process)
                except (asyncssh.Error, OSError, BrokenPipeError):
                    pass
                finally:
                    if process.stdin.at_eof():
                        entry.channels_closed += 1
                    process.exit(0)

            entry.server = await asyncssh.listen(
                "127.0.0.1",
                0,
                server_factory=Server,
                server_host_keys=[host_key or self.keys.host_key],
                authorized_client_keys=self.keys.authorized if authorized else None,
                process_factory=process_factory,
                encoding=None,
            )
            entry.port = entry.server.sockets[0].getsockname()[1]
        if trusted:
            self.keys.trust(entry.port, trusted_key)
        self._all.append(entry)
        if in_fleet:
            self.hosts.append(entry)
            self._extra.append({"mode": mode})
        return entry

    async def add_blackhole(self, name: str) -> FakeHost:
        """A port that accepts TCP and then never says a word (a hung sshd)."""
        held: list[asyncio.StreamWriter] = []

        async def accept(reader, writer):
            held.append(writer)
            await reader.read()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self._plain_servers.append((server, held))
        entry = FakeHost(name, server.sockets[0].getsockname()[1], None)
        self.keys.trust(entry.port)
        self.hosts.append(entry)
        self._extra.append({"mode": "agent"})
        return entry

    def fleet(self, ssh: dict | None = None, **polling) -> Fleet:
        settings = {
            "interval_s": 0.2,
            "connect_jitter_s": 0.0,
            "stale_after_s": 2.0,
            "down_after_s": 5.0,
            "reconnect_backoff_min_s": 0.2,
            "reconnect_backoff_max_s": 2.0,
            "history_points": 10,
        }
        settings.update(polling)
        raw = {
            "ssh": {
                "known_hosts": str(self.keys.known_hosts_path),
                "identity_files": [str(self.keys.client_key_path)],
                "use_ssh_config": False,
                "user": "tester",
                "connect_timeout_s": 3.0,
                **(ssh or {}),
            },
            "polling": settings,
            "sites": [{"name": "T1"}],
            "racks": [{"names": "t1-r01", "site": "T1"}],
            "host_classes": {"g8": {"gpus": 2, "ib_ports": 1}},
            "hosts": [
                {
                    "names": h.name,
                    "address": "127.0.0.1",
                    "port": h.port,
                    "rack": "t1-r01",
                    "class": "g8",
                    "mode": extra["mode"],
                }
                for h, extra in zip(self.hosts, self._extra, strict=True)
            ],
        }
        return fleet_from_dict(raw, self.tmp_path / "opsconsole.toml")

    async def close(self) -> None:
        for server, held in self._plain_servers:
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()
        for host in self._all:
            if host.server is not None:
                host.server.close()
                await host.server.wait_closed()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- lines the fake agents send ------------------------------------------------------


def hello_line(gpus: int = 2, hostname: str = "h") -> bytes:
    return _line(
        {
            "type": "hello",
            "proto": 1,
            "agent_version": "test",
            "mode": "nvml",
            "ts": 1.0,
            "host": {"hostname": hostname, "driver_version": "550.54"},
            "capabilities": ["nvml", "ib"],
            "gpus": [{"index": i, "uuid": f"GPU-{i}", "name": "H100"} for i in range(gpus)],
        }
    )


def sample_dict(seq: int, ts: float, *, gpus: int = 2, rcv_errors: int = 0, **extra) -> dict:
    sample = {
        "type": "sample",
        "seq": seq,
        "ts": ts,
        "gpu_count": gpus,
        "gpus": [
            {
                "index": i,
                "uuid": f"GPU-{i}",
                "util_gpu_pct": 50.0 + i,
                "temp_c": 60.0,
                "power_w": 300.0,
                "fan_pct": None,
                "na": {"fan_pct": "not_supported"},
            }
            for i in range(gpus)
        ],
        "ib": [
            {
                "device": "mlx5_0",
                "port": 1,
                "state": "ACTIVE",
                "phys_state": "LinkUp",
                "rate_gbps": 400.0,
                "counters": {"port_rcv_errors": rcv_errors, "port_xmit_data": seq * 1000},
            }
        ],
    }
    sample.update(extra)
    return sample


def sample_line(seq: int, ts: float, **kwargs) -> bytes:
    return _line(sample_dict(seq, ts, **kwargs))


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def stream_samples(process, *, interval_s: float = 0.2, count: int | None = None) -> None:
    """A well-behaved agent: hello, then a sample every interval until stdin EOF."""
    process.stdout.write(hello_line())
    seq = 0
    eof = asyncio.ensure_future(process.stdin.read())
    while count is None or seq < count:
        process.stdout.write(sample_line(seq, time.time()))
        seq += 1
        done, _ = await asyncio.wait([eof], timeout=interval_s)
        if done:
            return
    await eof
