"""Hosts that lie: SSH servers on loopback that speak the agent protocol with poisoned
content, beside healthy ones, for the hostile suite (tests/collect/test_hostile.py) and
`bench/hostile.py`.

Why in the package and not in the tests: the bench runs the same hosts in a process of
their own (`python -m opsconsole.sim.hostile DIR`), so the console's memory is measured
without the servers'. Every case is a tenant with root doing one thing: absurd numbers,
broken JSON, floods, silence, a forged identity or clock, terminal escapes in its text.
Each names what the operator should see (`expect`, a regular expression over the host's
status, reason, doubts and alerts).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncssh

GPUS = 2
YEAR_3000_TS = 32_503_680_000.0


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def uuid_of(host: str, index: int) -> str:
    return f"GPU-{host}-{index}"


def hello(
    host: str, gpus: int = GPUS, *, hostname: str | None = None, **fields: Any
) -> dict[str, Any]:
    message = {
        "type": "hello",
        "proto": 1,
        "agent_version": "hostile-sim",
        "mode": "nvml",
        "ts": time.time(),
        "host": {"hostname": host if hostname is None else hostname, "driver_version": "550.54"},
        "capabilities": ["nvml", "ib"],
        "gpus": [
            {"index": i, "uuid": uuid_of(host, i), "name": "H100", "memory_total_mib": 81559.0}
            for i in range(gpus)
        ],
    }
    message.update(fields)
    return message


def sample(host: str, seq: int, gpus: int = GPUS, **fields: Any) -> dict[str, Any]:
    message = {
        "type": "sample",
        "seq": seq,
        "ts": time.time(),
        "gpu_count": gpus,
        "gpus": [
            {
                "index": i,
                "uuid": uuid_of(host, i),
                "util_gpu_pct": 40.0 + i,
                "temp_c": 55.0,
                "power_w": 300.0,
                "power_limit_w": 700.0,
                "mem_used_mib": 1000.0,
                "mem_total_mib": 81559.0,
                "sm_clock_mhz": 1980.0,
                "pcie_replay": 0,
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
                "counters": {"port_rcv_errors": 0, "port_xmit_data": seq * 1000},
            }
        ],
    }
    message.update(fields)
    return message


def with_gpu(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    for gpu in message["gpus"]:
        gpu.update(fields)
    return message


@dataclass
class HostContext:
    name: str
    interval_s: float
    victim: str
    """A healthy host whose identity the spoofing cases claim."""
    process: asyncssh.SSHServerProcess[bytes]
    eof: asyncio.Future[bytes]

    def write(self, data: bytes) -> None:
        self.process.stdout.write(data)

    async def drain(self) -> None:
        await self.process.stdout.drain()

    async def tick(self) -> bool:
        """Wait for the next wall-clock tick; False once the console closed the channel."""
        now = time.time()
        wait_s = (int(now / self.interval_s) + 1) * self.interval_s - now
        done, _ = await asyncio.wait([self.eof], timeout=wait_s)
        return not done

    async def every_tick(self, make: Callable[[int], bytes]) -> None:
        seq = 0
        while True:
            self.write(make(seq))
            await self.drain()
            seq += 1
            if not await self.tick():
                return


Behaviour = Callable[[HostContext], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    behaviour: Behaviour
    expect: str
    """A regular expression the operator's view of the host matches (see operator_view)."""
    what: str


async def healthy(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)))
    await ctx.every_tick(lambda seq: _line(sample(ctx.name, seq)))


def _samples(make: Callable[[str, int], dict[str, Any]]) -> Behaviour:
    """A hello, then one poisoned sample per tick."""

    async def behaviour(ctx: HostContext) -> None:
        ctx.write(_line(hello(ctx.name)))
        await ctx.every_tick(lambda seq: _line(make(ctx.name, seq)))

    return behaviour


def _raw(make: Callable[[str, int], bytes], with_hello: bool = True) -> Behaviour:
    """Optionally a hello, then raw bytes per tick."""

    async def behaviour(ctx: HostContext) -> None:
        if with_hello:
            ctx.write(_line(hello(ctx.name)))
        await ctx.every_tick(lambda seq: make(ctx.name, seq))

    return behaviour


async def _endless_line(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)) + b'{"type":"sample","seq":0,"ts":1,"x":"')
    chunk = b"A" * 65536
    while not ctx.eof.done():
        ctx.write(chunk)
        await ctx.drain()


async def _flood(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)))
    seq = 0
    while not ctx.eof.done():
        ctx.write(b"".join(_line(sample(ctx.name, seq + i)) for i in range(50)))
        seq += 50
        await ctx.drain()


async def _faster_than_interval(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)))
    seq = 0
    while not ctx.eof.done():  # bursts of 10 twice an interval: 20 samples per interval
        ctx.write(b"".join(_line(sample(ctx.name, seq + i)) for i in range(10)))
        seq += 10
        await ctx.drain()
        await asyncio.wait([ctx.eof], timeout=ctx.interval_s / 2)


async def _stderr_flood(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)))
    junk = b"\x1b[31mWARNING\x1b[0m " * 4000 + b"\n"
    seq = 0

    async def spew() -> None:
        while not ctx.eof.done():
            ctx.process.stderr.write(junk)
            await ctx.process.stderr.drain()

    task = asyncio.ensure_future(spew())
    try:
        while True:
            ctx.write(_line(sample(ctx.name, seq)))
            seq += 1
            if not await ctx.tick():
                return
    finally:
        task.cancel()


async def _silent_after_hello(ctx: HostContext) -> None:
    ctx.write(_line(hello(ctx.name)))
    await ctx.eof


async def _slow_drip(ctx: HostContext) -> None:
    data = _line(hello(ctx.name)) + _line(sample(ctx.name, 0))
    for byte in data:
        if ctx.eof.done():
            return
        ctx.write(bytes([byte]))
        await asyncio.wait([ctx.eof], timeout=0.05)
    await ctx.eof


async def _garbage(ctx: HostContext) -> None:
    noise = random.Random(ctx.name)
    ctx.write(_line(hello(ctx.name)))
    await ctx.every_tick(lambda seq: noise.randbytes(300) + b"\n")


async def _spoof_identity(ctx: HostContext) -> None:
    """Claim the victim's hostname and its GPUs' UUIDs."""
    ctx.write(_line(hello(ctx.victim, hostname=ctx.victim)))
    await ctx.every_tick(lambda seq: _line(sample(ctx.victim, seq)))


def _nasty_text(host: str, seq: int) -> dict[str, Any]:
    message = sample(host, seq, driver="unresponsive")
    message["driver_detail"] = "\x1b[2J\x9b31mhung\u202e\u200b\x1b]0;pwned\x07 driver"
    message["gpus"][0]["processes"] = [{"pid": 1, "name": "\x1b[5mminer\u2066"}]
    return message


async def _nasty_hello(ctx: HostContext) -> None:
    text = hello(ctx.name, hostname=ctx.name + "\u200b\x1b[0m")
    text["host"]["os"] = "\x9d0;title\x9cUbuntu \u202eevil"
    ctx.write(_line(text))
    await ctx.every_tick(lambda seq: _line(_nasty_text(ctx.name, seq)))


def _deep(host: str, seq: int) -> bytes:
    return b'{"type":"sample","seq":%d,"ts":1,"x":' % seq + b"[" * 100_000 + b"]" * 100_000 + b"}\n"


def _duplicate_keys(host: str, seq: int) -> bytes:
    body = json.dumps(sample(host, seq))[1:]
    return (
        b'{"seq":0,"type":"sample",'
        + body.encode().replace(b'"power_w": 300.0', b'"power_w": 300.0, "power_w": 1e308')
        + b"\n"
    )


def _xids(host: str, seq: int) -> dict[str, Any]:
    events = [
        {"kind": "xid", "code": 13 + i % 3, "ts": time.time() - 600 - i, "source": "kmsg",
         "gpu": 0, "message": f"Xid {i}"}
        for i in range(40)
    ]  # fmt: skip
    return sample(host, seq, events=events)


def _counter_reset(host: str, seq: int) -> dict[str, Any]:
    return with_gpu(sample(host, seq), pcie_replay=0 if seq % 2 else 1000)


CASES: tuple[Case, ...] = (
    Case("power_1e308", _samples(lambda h, s: with_gpu(sample(h, s), power_w=1e308)),
         r"invalid readings.*power_w", "1e308 W on every GPU (finite, absurd)"),
    Case("power_over_limit", _samples(lambda h, s: with_gpu(sample(h, s), power_w=5000.0)),
         r"power_w.*limit", "5 kW on a 700 W GPU"),
    Case("temp_absurd", _samples(lambda h, s: with_gpu(sample(h, s), temp_c=1e6)),
         r"temp_c.*outside", "a million degrees"),
    Case("util_over_100", _samples(lambda h, s: with_gpu(sample(h, s), util_gpu_pct=250.0)),
         r"util_gpu_pct.*outside", "250 % utilisation"),
    Case("mem_over_total", _samples(lambda h, s: with_gpu(sample(h, s), mem_used_mib=1e6)),
         r"mem_used_mib.*above", "memory used above total"),
    Case("clock_over_max", _samples(lambda h, s: with_gpu(sample(h, s), sm_clock_mhz=99999.0)),
         r"sm_clock_mhz.*outside", "99 GHz SM clock"),
    Case("counter_huge", _samples(lambda h, s: with_gpu(sample(h, s),
                                                         ecc_volatile_uncorrected=2**60)),
         r"ecc_volatile_uncorrected.*outside", "2^60 ECC errors"),
    Case("negative_power", _samples(lambda h, s: with_gpu(sample(h, s), power_w=-5.0)),
         r"protocol error.*>= 0", "negative power"),
    Case("nan_literal", _raw(lambda h, s: json.dumps(sample(h, s)).replace(
        "300.0", "NaN", 1).encode() + b"\n"), r"protocol error.*malformed", "NaN in JSON"),
    Case("infinity", _raw(lambda h, s: json.dumps(sample(h, s)).replace(
        "300.0", "1e400", 1).encode() + b"\n"), r"protocol error.*out of range", "1e400"),
    Case("invalid_json", _raw(lambda h, s: b'{"type": "sample", "seq": \n'),
         r"protocol error.*(malformed|truncated)", "broken JSON"),
    Case("invalid_utf8", _raw(lambda h, s: b'{"type":"error","ts":1,"message":"\xc3\x28"}\n'),
         r"protocol error.*UTF-8", "invalid UTF-8"),
    Case("binary_garbage", _garbage, r"protocol error", "random bytes"),
    Case("deep_nesting", _raw(_deep), r"protocol error.*(too deep|exceeds)", "JSON 100,000 deep"),
    Case("duplicate_keys", _raw(_duplicate_keys), r"invalid readings.*power_w",
         "the same key twice, the second absurd"),
    Case("unknown_fields", _samples(lambda h, s: sample(h, s, future_field={"x": [1, 2]},
                                                        zzz="?")),
         r"^fresh", "fields the console does not know (tolerated)"),
    Case("wrong_types", _samples(lambda h, s: with_gpu(sample(h, s), power_w="300")),
         r"protocol error.*Expected", "a string where a number goes"),
    Case("huge_line", _raw(lambda h, s: b'{"type":"sample","x":"' + b"A" * 1_000_000 + b'"}\n'),
         r"protocol error.*cap", "1 MB lines"),
    Case("endless_line", _endless_line, r"past the cap|over budget", "a line that never ends"),
    Case("flood", _flood, r"over budget|dropped", "valid samples as fast as SSH goes"),
    Case("faster_than_interval", _faster_than_interval, r"over budget|dropped",
         "samples 20 times per interval"),
    Case("repeated_seq", _raw(lambda h, s: _line(sample(h, 7))), r"sequence number",
         "the same sequence number every time"),
    Case("sample_before_hello", _raw(lambda h, s: _line(sample(h, s)), with_hello=False),
         r"before a valid hello", "samples with no hello"),
    Case("wrong_protocol", _raw(lambda h, s: (_line(hello(h, proto=99)) if s == 0 else b"")
                                + _line(sample(h, s)), with_hello=False),
         r"protocol version|before a valid hello", "a hello of protocol 99, then samples"),
    Case("stderr_flood", _stderr_flood, r"over budget|beyond its byte budget",
         "stderr as fast as SSH goes"),
    Case("silent_after_hello", _silent_after_hello, r"no sample|no line|timeout",
         "a hello, then nothing"),
    Case("slow_drip", _slow_drip, r"no sample|no line|timeout", "one byte every 50 ms"),
    Case("clock_future", _samples(lambda h, s: sample(h, s, ts=YEAR_3000_TS)),
         r"clock \+|clock_skew|host clock off", "timestamps in the year 3000"),
    Case("clock_past", _samples(lambda h, s: sample(h, s, ts=1.0)),
         r"clock -|host clock off", "timestamps in 1970"),
    Case("extra_gpus", _raw(lambda h, s: (_line(hello(h, 120)) if s == 0 else b"")
                            + _line(sample(h, s, gpus=120)), with_hello=False),
         r"kept out of totals", "120 GPUs on a 2-GPU host"),
    Case("spoof_identity", _spoof_identity, r"configured host .*also on|identity",
         "another host's name and GPU UUIDs"),
    Case("escape_text", _nasty_hello, r"driver unresponsive: hung driver",
         "terminal escapes, bidi and zero-width in every string"),
    Case("agent_error_escapes", _raw(lambda h, s: _line(
        {"type": "error", "ts": 1, "message": "\x1b]0;pwn\x07fatal \u202eboom\x9b2J"})),
         r"agent error.*fatal boom", "an error report full of escapes"),
    Case("counter_reset", _samples(_counter_reset), r"counter resets", "PCIe replays go down"),
    Case("gpu_index_huge", _samples(lambda h, s: with_gpu(sample(h, s, gpus=1), index=2**62)),
         r"index above", "a GPU numbered 2^62"),
    Case("ib_counter_huge", _samples(lambda h, s: sample(h, s, ib=[
        {"device": "mlx5_0", "port": 1, "state": "ACTIVE", "counters": {"symbol_error": 2**70}}])),
         r"beyond 64 bits", "an IB counter of 2^70"),
    Case("xid_replay", _samples(_xids), r"xid_flood|more XIDs", "40 XIDs replayed every sample"),
)  # fmt: skip
CASE_BY_NAME = {case.name: case for case in CASES}


# -- the farm -------------------------------------------------------------------------


@dataclass
class FarmHost:
    name: str
    behaviour: Behaviour
    port: int = 0
    acceptor: asyncssh.SSHAcceptor | None = None


class HostileFarm:
    """`healthy` well-behaved hosts (healthy-00, ...) and one host per case (named after
    it), each its own SSH server on loopback with its own port."""

    def __init__(self, healthy_hosts: int, cases: tuple[Case, ...] = CASES):
        self.hosts = [FarmHost(f"healthy-{i:02d}", healthy) for i in range(healthy_hosts)]
        self.hosts += [FarmHost(case.name.replace("_", "-"), case.behaviour) for case in cases]
        self.cases = {case.name.replace("_", "-"): case for case in cases}
        self.victim = self.hosts[0].name if healthy_hosts else "nobody"
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.interval_s = 1.0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def healthy_names(self) -> list[str]:
        return [h.name for h in self.hosts if h.behaviour is healthy]

    async def start(self, interval_s: float) -> None:
        self.interval_s = interval_s
        authorized = asyncssh.import_authorized_keys(self.client_key.export_public_key().decode())
        for host in self.hosts:
            host.acceptor = await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[self.host_key],
                authorized_client_keys=authorized,
                process_factory=lambda process, h=host: self._run(h, process),
                encoding=None,
                password_auth=False,
                kbdint_auth=False,
                keepalive_interval=0,
            )
            host.port = host.acceptor.get_port()

    async def _run(self, host: FarmHost, process: asyncssh.SSHServerProcess[bytes]) -> None:
        eof = asyncio.ensure_future(process.stdin.read())
        ctx = HostContext(host.name, self.interval_s, self.victim, process, eof)
        try:
            await host.behaviour(ctx)
        except (asyncssh.Error, OSError, BrokenPipeError):
            pass  # the console closed the channel
        finally:
            eof.cancel()
            process.exit(0)

    async def stop(self) -> None:
        for host in self.hosts:
            if host.acceptor is not None:
                host.acceptor.close()
                await host.acceptor.wait_closed()
                host.acceptor = None

    def write_files(self, directory: Path, *, polling: dict[str, float]) -> Path:
        """known_hosts, the client key and config.toml; returns the config's path."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / "id_ed25519"
        key_path.write_bytes(self.client_key.export_private_key())
        key_path.chmod(0o600)
        public = self.host_key.export_public_key().decode().strip()
        (directory / "known_hosts").write_text(
            "".join(f"[127.0.0.1]:{h.port} {public}\n" for h in self.hosts)
        )
        lines = [
            "[store]",
            'path = "opsconsole.db"',
            "[ssh]",
            'known_hosts = "known_hosts"',
            'identity_files = ["id_ed25519"]',
            "use_ssh_config = false",
            'user = "tenant"',
            "connect_timeout_s = 5",
            "[polling]",
            *(f"{key} = {value!r}" for key, value in polling.items()),
            "[[sites]]",
            'name = "H1"',
            "[[racks]]",
            'names = "h1-r01"',
            'site = "H1"',
            "power_budget_kw = 40.0",
            "[host_classes.g2]",
            f"gpus = {GPUS}",
            "ib_ports = 1",
        ]
        for host in self.hosts:
            lines += [
                "[[hosts]]",
                f'names = "{host.name}"',
                'address = "127.0.0.1"',
                f"port = {host.port}",
                'rack = "h1-r01"',
                'class = "g2"',
            ]
        path = directory / "config.toml"
        path.write_text("\n".join(lines) + "\n")
        return path


def operator_view(host: ViewedHost, conditions: Sequence[LabelledCondition] = ()) -> str:
    """What the operator can read about `host` (a HostState): status, reason and detail
    as the fleet and host views show them, what the host view lists as refused or
    doubted, and the summaries of its alerts."""
    parts = [f"{host.status} · {host.reason}: {host.detail}", *host.distrust_notes()]
    parts += [c.summary for c in conditions if c.labels.get("host") == host.name]
    return " · ".join(parts)


class ViewedHost(Protocol):
    """What operator_view reads of a host's live state (collect.state.HostState)."""

    name: str
    status: str
    reason: str
    detail: str

    def distrust_notes(self) -> list[str]: ...


class LabelledCondition(Protocol):
    """What operator_view reads of an alert condition (alerts.rules.Condition)."""

    summary: str
    labels: Mapping[str, str]


async def _serve(directory: Path, healthy_hosts: int, polling: dict[str, Any]) -> None:
    farm = HostileFarm(healthy_hosts)
    await farm.start(polling["interval_s"])
    config = farm.write_files(directory, polling=polling)
    print(f"serving {len(farm.hosts)} hosts; config {config}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await farm.stop()


def main(argv: list[str]) -> None:
    """python -m opsconsole.sim.hostile DIR [HEALTHY] [INTERVAL_S | POLLING_JSON]: serve
    HEALTHY healthy hosts (default 20) and every case until interrupted; the console's
    config goes to DIR/config.toml, written once the ports are known."""
    polling: dict[str, Any] = {"interval_s": 2.0}
    if len(argv) > 2:
        polling = json.loads(argv[2]) if argv[2].startswith("{") else {"interval_s": float(argv[2])}
    healthy_hosts = int(argv[1]) if len(argv) > 1 else 20
    try:
        asyncio.run(_serve(Path(argv[0]), healthy_hosts, polling))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
