"""What polling costs the console: the real Poller against the simulated fleet, next to
two references on the same servers.

    .venv/bin/python bench/poll.py [--hosts 100 500 1000] [--duration 30] [--interval 2]

For each host count, `opsconsole sim serve` runs in a SEPARATE process (its CPU is not the
console's); then each pattern runs in its own child process, so CPU time and RSS are the
pattern's alone:

* poller  - opsconsole.collect.Poller: one agent channel per host, strict decode, live
            state (rates, history), the store fed on its thread (a throw-away SQLite file).
* run     - reference (a): `conn.run(nvidia-smi --query-gpu ...)` per host per tick on a
            persistent connection, CSV split into floats.
* stream  - reference (b), the floor: the same agent channel, lines read and json.loads'd.

Connections are opened and every host's first sample awaited before the clock starts.
Columns: console CPU per host-poll (process user+sys / samples), delivered (samples / the
hosts x duration / interval expected), lateness p50/p95/max (arrival minus the wall-clock
tick the sample belongs to), console RSS, the simulator's CPU per host-poll for scale, and
CPU/host: console CPU per host per interval (CPU / (hosts x duration / interval), relays
not counted as hosts), the figure to compare when a relay forwards a host's sample only
every N intervals.
Prints figures only; nothing here asserts a timing.

`--relays` (with `--replay`) then measures the same console behind 4 site relays (each
its own process), once per `--relay-every` value: `relay-l` asks the relays for nothing
(one line per host message: an older relay or console), `relay/1` for batches (the
site's news as one line per interval), `relay/4` for batches with each host's sample
every 4th interval (the longest a 10 s stale window allows at 2 s).

`--replay` serves a recorded fleet instead of `sim serve`: each host's hello and one real
agent sample (from the simulated fleet, 8 GPUs, ~16 KB) are recorded once, then one
process writes them again on every wall-clock tick with a new sequence number and time
over real SSH (one port per host). Serving is a byte copy, so 1,000 hosts cost the
server well under a core and the console's own CPU at 1,000-2,000 hosts can be measured
on a small machine. A channel that asks for the lean wire (`wire 2`) gets a recorded v2
cycle instead: the real agent's v2 hello and FULL_EVERY consecutive v2 samples (one full,
then deltas of a calm fleet), repeated; v1 readings do not change between ticks.

OPSCONSOLE_BENCH_WIRE=1 makes the poller and the bare stream ask for nothing (v1, the
previous round's wire); the default asks for v2.

`--openssh` serves the hosts from Debian's own sshd on loopback instead (as root, login
user `opsconsole-ci` as in tests/interop; 16 ports per sshd, one sshd per 16 hosts, all in
a cpuacct cgroup so the host side's CPU, sshd plus agent plus nvidia-smi, is measured
exactly). `nvidia-smi` there is canned output behind a `sh` + `cat` script (the interop
fake's answers): the host-side figure is sshd and the agent, not a real driver's cost.

OPSCONSOLE_BENCH_PROFILE=PATH writes a cProfile of each pattern's measured window (the
event loop's thread) to PATH.<pattern>.

Needs psutil, from the bench extra: .venv/bin/pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

try:
    import psutil
except ImportError:  # the default install has no psutil; say which extra brings it
    sys.exit("bench/poll.py needs psutil: .venv/bin/pip install -e '.[bench]'")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("poller", "run", "stream")
WIRE = int(os.environ.get("OPSCONSOLE_BENCH_WIRE", "2"))
V2_RECORDED_HOSTS = 64
"""Hosts whose v2 cycle is recorded from the simulator; the others replay renamed copies."""
Stop = Callable[[], Awaitable[None]]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Recorder:
    """Samples and their lateness, counted only inside the measurement window."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.first_seen: set[str] = set()
        self.measuring = False
        self.samples = 0
        self.missed = 0
        self.lateness_ms: list[float] = []
        self._last_tick: dict[str, float] = {}

    def sample(self, host: str, tick_ts: float) -> None:
        self.first_seen.add(host)
        last = self._last_tick.get(host)
        self._last_tick[host] = tick_ts
        if self.measuring:
            self.samples += 1
            self.lateness_ms.append((time.time() - tick_ts) * 1000.0)
            if last is not None:  # ticks with no sample from this host: polls lost
                self.missed += max(0, round((tick_ts - last) / self.interval_s) - 1)

    def tick_of(self, sample_ts: float) -> float:
        """The wall-clock tick an agent sample belongs to (agents stamp after reading)."""
        return math.floor(sample_ts / self.interval_s + 1e-6) * self.interval_s


# --- the three patterns ------------------------------------------------------------------


async def run_poller(fleet, recorder: Recorder) -> Stop:
    from opsconsole.collect.poller import Poller
    from opsconsole.collect.state import FleetState
    from opsconsole.store import TelemetryIngest, open_store

    db_dir = tempfile.mkdtemp(prefix="opsconsole-bench-")
    ingest = None  # OPSCONSOLE_BENCH_NO_STORE=1: what the store's thread costs, by difference
    if not os.environ.get("OPSCONSOLE_BENCH_NO_STORE"):
        ingest = TelemetryIngest(open_store(Path(db_dir) / "bench.db"))
    state = FleetState.from_fleet(fleet, now_ts=time.time())

    last_sample: dict[str, object] = {}

    def on_update(host, change):
        """Called on every state change; a new Sample object is a new host-poll."""
        if change in ("sample", "status") and host.sample is not last_sample.get(host.name):
            last_sample[host.name] = host.sample
            if host.sample is not None:
                recorder.sample(host.name, recorder.tick_of(host.sample.ts))

    relay_every = int(os.environ.get("OPSCONSOLE_BENCH_RELAY_EVERY", "1"))
    poller = Poller(
        fleet, state, ingest=ingest, on_update=on_update, wire=WIRE, relay_every=relay_every
    )
    await poller.start()
    return poller.stop


async def _connect_all(fleet, connector, concurrency: int = 50) -> dict:
    slots = asyncio.Semaphore(concurrency)

    async def one(host):
        async with slots:
            return host.name, await connector.connect(host)

    return dict(await asyncio.gather(*(one(h) for h in fleet.hosts)))


async def run_command_each_tick(fleet, recorder: Recorder) -> Stop:
    from opsconsole.agent.smi import smi_command
    from opsconsole.collect.ssh import SshConnector

    connector = SshConnector(fleet.config.ssh, fleet.path.parent)
    conns = await _connect_all(fleet, connector)
    command = " ".join(smi_command())
    interval_s = recorder.interval_s

    async def loop(name, conn):
        while True:
            now = time.time()
            tick = (math.floor(now / interval_s) + 1) * interval_s
            await asyncio.sleep(tick - now)
            result = await conn.run(command, check=False)
            rows = [line.split(", ") for line in result.stdout.splitlines() if line]
            for row in rows:  # what a minimal parser does: numbers out of the CSV
                [float(v) for v in row[7:16] if v.replace(".", "", 1).isdigit()]
            recorder.sample(name, tick)

    tasks = [asyncio.create_task(loop(n, c)) for n, c in conns.items()]
    return _stopper(tasks, conns)


async def run_bare_stream(fleet, recorder: Recorder) -> Stop:
    from opsconsole.agent.bundle import agent_command
    from opsconsole.collect.ssh import SshConnector

    connector = SshConnector(fleet.config.ssh, fleet.path.parent)
    conns = await _connect_all(fleet, connector)
    command = agent_command(recorder.interval_s)

    async def loop(name, conn):
        process = await conn.create_process(command)
        if WIRE > 1:
            process.stdin.write(f"wire {WIRE}\n")  # the same lines the poller reads
        async for line in process.stdout:
            message = json.loads(line)
            if message.get("type") in ("sample", "s"):
                recorder.sample(name, recorder.tick_of(message["ts"]))

    tasks = [asyncio.create_task(loop(n, c)) for n, c in conns.items()]
    return _stopper(tasks, conns)


def _stopper(tasks, conns):
    async def stop():
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in conns.values():
            conn.close()

    return stop


# --- one pattern in a child process -------------------------------------------------------


async def measure(mode: str, config: Path, duration_s: float, sim_pid: str) -> dict:
    from opsconsole.config import load_fleet

    fleet = load_fleet(config)
    interval_s = fleet.config.polling.interval_s
    recorder = Recorder(interval_s)
    start = {"poller": run_poller, "run": run_command_each_tick, "stream": run_bare_stream}
    started = time.monotonic()
    stop = await start[mode](fleet, recorder)
    while len(recorder.first_seen) < len(fleet.hosts) and time.monotonic() - started < 120:
        await asyncio.sleep(0.2)
    warmup_s = time.monotonic() - started
    sim = HostCpu(sim_pid)
    sim_cpu0 = sim.seconds()
    gc_s = _gc_timer()
    cpu0 = cpu_s()
    recorder.measuring = True
    profile_to = os.environ.get("OPSCONSOLE_BENCH_PROFILE")
    if profile_to:  # the loop's thread only (the store's thread is not in it)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    await asyncio.sleep(duration_s)
    recorder.measuring = False
    if profile_to:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{mode}")
    cpu = cpu_s() - cpu0
    gc_total_s = gc_s()
    sim_cpu = sim.seconds() - sim_cpu0
    rss_mib = psutil.Process().memory_info().rss / 2**20
    await stop()
    late = sorted(recorder.lateness_ms) or [math.nan]
    expected = len(fleet.hosts) * duration_s / interval_s
    polled = sum(h.mode != "relay" for h in fleet.hosts)  # the hosts, relays not counted
    return {
        "mode": mode,
        "hosts": len(fleet.hosts),
        "answered": len(recorder.first_seen),
        "warmup_s": warmup_s,
        "samples": recorder.samples,
        "delivered": recorder.samples / expected,
        "missed": recorder.missed,
        "cpu_ms_per_poll": 1000.0 * cpu / max(recorder.samples, 1),
        "cpu_ms_per_host": 1000.0 * cpu / (polled * duration_s / interval_s),
        "cpu_pct": 100.0 * cpu / duration_s,
        "late_p50_ms": late[len(late) // 2],
        "late_p95_ms": late[int(len(late) * 0.95)],
        "late_max_ms": late[-1],
        "rss_mib": rss_mib,
        "sim_cpu_ms_per_poll": 1000.0 * sim_cpu / max(recorder.samples, 1),
        "gc_ms_per_poll": 1000.0 * gc_total_s / max(recorder.samples, 1),
    }


def _gc_timer() -> Callable[[], float]:
    """Seconds the cyclic garbage collector runs from now on (wall time, on the loop's
    thread: it stops the world), read by calling the returned function."""
    import gc

    total = [0.0]
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            total[0] += time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    return lambda: total[0]


# --- replay: a recorded fleet served as bytes -------------------------------------------


def record_fleet(hosts: int, interval_s: float) -> list[tuple]:
    """(name, hello line, sample head, sample tail, v2 hello line, v2 line formats) per
    host: the v1 sample line is head + `seq,ts` + tail, so a tick costs one bytes join per
    host; each v2 format takes (seq, ts)."""
    import msgspec

    from opsconsole.agent.lean import FULL_EVERY
    from opsconsole.sim.backend import make_agent
    from opsconsole.sim.world import SimFleet

    now = time.time()
    fleet = SimFleet(min(hosts, SIM_MAX_HOSTS), 0, "calm", 8, start_ts=now - 10 - 2 * FULL_EVERY)
    out = []
    for k, (name, host) in enumerate(fleet.hosts.items()):
        hello2, cycle = b"", []
        if k < V2_RECORDED_HOSTS:  # first: the simulated host's time only goes forward
            hello2, cycle = _record_v2(host, interval_s, now - 6, FULL_EVERY)
        agent = make_agent(host, time.time, None, interval_s)
        host.advance(now - 4)
        hello = next(m for m in agent.tick() if m["type"] == "hello")
        host.advance(now - 2)
        sample = next(m for m in agent.tick() if m["type"] == "sample")
        sample = {k: v for k, v in sample.items() if k not in ("type", "seq", "ts", "events")}
        body = msgspec.json.encode(sample)
        out.append(
            (name, msgspec.json.encode(hello) + b"\n", b'{"type":"sample",', body[1:], hello2,
             cycle)
        )  # fmt: skip
    for k in range(V2_RECORDED_HOSTS, len(out)):  # a renamed copy of a recorded v2 cycle
        name, hello, head, tail, _, _ = out[k]
        source, _, _, _, hello2, cycle = out[k % V2_RECORDED_HOSTS]
        out[k] = (name, hello, head, tail, _rename(hello2, source, name),
                  [_rename(line, source, name) for line in cycle])  # fmt: skip
    copies = []
    for i in range(hosts - len(out)):  # beyond the simulator's size: renamed copies
        name, hello, head, tail, hello2, cycle = out[i % len(out)]
        new = f"{name}-c{i // len(out) + 1}"
        copies.append(
            (new, _rename(hello, name, new), head, _rename(tail, name, new),
             _rename(hello2, name, new), [_rename(line, name, new) for line in cycle])
        )  # fmt: skip
    return out + copies


def _record_v2(host, interval_s: float, end: float, count: int) -> tuple[bytes, list[bytes]]:
    """A host's v2 hello and `count` consecutive v2 samples (a full one, then deltas) up
    to `end`, as line formats taking (seq, ts)."""
    import msgspec

    from opsconsole.sim.backend import make_agent

    clock = [end - interval_s * count]
    agent = make_agent(host, lambda: clock[0], None, interval_s)
    agent.request_wire(2)
    hello, formats = b"", []
    for _ in range(count):
        clock[0] += interval_s
        host.advance(clock[0])
        for message in agent.tick():
            if message["type"] == "hello":
                hello = msgspec.json.encode(message) + b"\n"
                continue
            rest = {k: v for k, v in message.items() if k not in ("type", "seq", "ts", "events")}
            body = msgspec.json.encode(rest)
            tail = b"," + body[1:] if len(body) > 2 else b"}"
            formats.append(b'{"type":"s","seq":%d,"ts":%.3f' + tail.replace(b"%", b"%%") + b"\n")
    return hello, formats


async def serve_replay(hosts: int, interval_s: float, workdir: Path, concurrency: int) -> None:
    import asyncssh

    recorded = record_fleet(hosts, interval_s)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_path = workdir / "client_key"
    client_key.write_private_key(str(client_path))
    client_path.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    channels: dict[str, tuple] = {}  # name -> (process, [seq])
    ports = {}

    def factory(name, hello, hello2):
        async def handle(process) -> None:
            wire = 1
            try:  # a console that reads the lean wire asks at once
                async with asyncio.timeout(1.0):
                    wire = 2 if (await process.stdin.readline()).split() == [b"wire", b"2"] else 1
            except (TimeoutError, asyncssh.Error, OSError):
                pass
            process.stdout.write(hello2 if wire == 2 else hello)
            channels[name] = (process, [0], wire)
            try:
                await process.stdin.read()  # until the console closes the channel
            except (asyncssh.Error, OSError):
                pass
            finally:
                channels.pop(name, None)
                process.exit(0)

        return handle

    for name, hello, _, _, hello2, _ in recorded:
        server = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key], authorized_client_keys=authorized,
            process_factory=factory(name, hello, hello2), encoding=None,
        )  # fmt: skip
        ports[name] = server.sockets[0].getsockname()[1]
    public = host_key.export_public_key().decode().strip()
    (workdir / "known_hosts").write_text(
        "".join(f"[127.0.0.1]:{port} {public}\n" for port in ports.values())
    )
    racks = sorted({_rack(name) for name in ports})
    config = workdir / "opsconsole.toml"
    lines = [
        '[ssh]\nknown_hosts = "known_hosts"\nidentity_files = ["client_key"]\n'
        'use_ssh_config = false\nuser = "bench"\n',
        f"[polling]\ninterval_s = {interval_s}\nconnect_concurrency = {concurrency}\n",
        '[store]\npath = "bench.db"\n',
        *(f'[[sites]]\nname = "S{k}"\n' for k in range(BENCH_SITES)),
        "[host_classes.h8]\ngpus = 8\n",
        *(
            f'[[racks]]\nnames = "{rack}"\nsite = "S{i % BENCH_SITES}"\n'
            for i, rack in enumerate(racks)
        ),
        *(
            f'[[hosts]]\nnames = "{name}"\naddress = "127.0.0.1"\nport = {port}\n'
            f'rack = "{_rack(name)}"\nclass = "h8"\n'
            for name, port in ports.items()
        ),
    ]
    config.write_text("\n".join(lines))
    templates = {name: (head, tail, cycle) for name, _, head, tail, _, cycle in recorded}
    line_bytes = [len(head) + len(tail) + 30 for _, _, head, tail, _, _ in recorded]
    v2_bytes = [len(f % (7, time.time())) for *_, cycle in recorded for f in cycle]
    v2_delta = [len(f % (7, time.time())) for *_, cycle in recorded for f in cycle[1:]]
    (workdir / "sample_bytes").write_text(
        f"{sum(line_bytes) / len(line_bytes):.0f} v1, {sum(v2_bytes) / len(v2_bytes):.0f} v2"
        f" (deltas {sum(v2_delta) / len(v2_delta):.0f}, max {max(v2_delta)}; full"
        f" {max(map(len, (c[0] % (7, 1.0) for *_, c in recorded)))})"
    )
    (workdir / "ready").write_text(str(config))
    while True:
        now = time.time()
        tick = (math.floor(now / interval_s) + 1) * interval_s
        await asyncio.sleep(tick - now)
        stamp = tick + 0.01
        for name, (process, seq, wire) in list(channels.items()):
            head, tail, cycle = templates[name]
            try:
                if wire == 2:
                    process.stdout.write(cycle[seq[0] % len(cycle)] % (seq[0], stamp))
                else:
                    process.stdout.write(b'%s"seq":%d,"ts":%.3f,%s\n' % (head, seq[0], stamp, tail))
            except (asyncssh.Error, OSError):  # a channel the console is closing
                channels.pop(name, None)
            seq[0] += 1


def _rename(data: bytes, old: str, new: str) -> bytes:
    """A recorded host's line as another host's: its name and its GPUs' UUIDs."""
    return data.replace(old.encode(), new.encode()).replace(b'"GPU-', f'"GPU-{new}-'.encode())


def _rack(name: str) -> str:
    return "-".join(name.split("-")[:2])  # sg1-r01-n01(-c1) -> sg1-r01


def start_replay(
    hosts: int, interval_s: float, workdir: Path, concurrency: int = 20
) -> tuple[subprocess.Popen, Path]:
    ready = workdir / "ready"
    process = subprocess.Popen(
        [sys.executable, __file__, "_replay", str(hosts), f"{interval_s:g}", str(workdir),
         str(concurrency)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"replay failed: {process.stderr.read().decode()[-500:]}")
        time.sleep(0.2)
    return process, Path(ready.read_text().strip())


# --- openssh: Debian's sshd on loopback ---------------------------------------------------

SSHD = "/usr/sbin/sshd"
PORTS_PER_SSHD = 16  # OpenSSH's MAX_LISTEN_SOCKS
CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")
SIM_MAX_HOSTS = 1024
BENCH_SITES = 4
"""The replayed fleet's racks are spread over this many sites: one relay each (--relays)."""


def _free_ports(count: int) -> list[int]:
    import socket

    socks, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in socks:
        sock.close()
    return ports


def start_openssh(hosts: int, interval_s: float, workdir: Path, user: str = "opsconsole-ci"):
    """sshd processes serving `hosts` ports, in a fresh cpuacct cgroup; returns
    (processes, config path, cgroup path)."""
    from opsconsole.agent.smi import remap_command, smi_command

    workdir.chmod(0o755)
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    fake = REPO / "tests" / "interop" / "fake_nvidia_smi.py"
    for name, argv in (("gpu.csv", smi_command()), ("remap.csv", remap_command())):
        out = subprocess.run([sys.executable, str(fake), *argv[1:]], capture_output=True)
        (bin_dir / name).write_bytes(out.stdout)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(
        '#!/bin/sh\ncase "$1" in\n'
        f"  --query-gpu=*) exec cat {bin_dir}/gpu.csv ;;\n"
        f"  --query-remapped-rows=*) exec cat {bin_dir}/remap.csv ;;\n"
        f'  *) exec /usr/bin/python3 {fake} "$@" ;;\nesac\n'
    )
    smi.chmod(0o755)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / key)],
                       check=True)  # fmt: skip
    authorized = workdir / "authorized_keys"
    authorized.write_bytes((workdir / "client_key.pub").read_bytes())
    authorized.chmod(0o644)
    cgroup = CGROUP_ROOT / f"opsconsole-bench-{os.getpid()}"
    cgroup.mkdir()
    ports = _free_ports(hosts)
    Path("/run/sshd").mkdir(exist_ok=True)
    processes = []
    for i in range(0, hosts, PORTS_PER_SSHD):
        config = workdir / f"sshd_config.{i}"
        config.write_text(
            "".join(f"Port {port}\n" for port in ports[i : i + PORTS_PER_SSHD])
            + f"""ListenAddress 127.0.0.1
HostKey {workdir / "host_key"}
PidFile {workdir / f"sshd.{i}.pid"}
AuthorizedKeysFile {authorized}
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
SetEnv PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin
"""
        )
        quiet = subprocess.DEVNULL
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=quiet, stderr=quiet
        )
        (cgroup / "cgroup.procs").write_text(str(process.pid))
        processes.append(process)
    public = " ".join((workdir / "host_key.pub").read_text().split()[:2])
    (workdir / "known_hosts").write_text("".join(f"[127.0.0.1]:{p} {public}\n" for p in ports))
    lines = [
        '[ssh]\nknown_hosts = "known_hosts"\nidentity_files = ["client_key"]\n'
        f'use_ssh_config = false\nuser = "{user}"\n',
        f"[polling]\ninterval_s = {interval_s}\nconnect_concurrency = 50\n",
        '[store]\npath = "bench.db"\n[[sites]]\nname = "LO"\n[host_classes.h8]\ngpus = 8\n',
        '[[racks]]\nnames = "lo-r01"\nsite = "LO"\n',
        *(
            f'[[hosts]]\nnames = "lo-n{i:04d}"\naddress = "127.0.0.1"\nport = {port}\n'
            'rack = "lo-r01"\nclass = "h8"\n'
            for i, port in enumerate(ports)
        ),
    ]
    config_path = workdir / "opsconsole.toml"
    config_path.write_text("\n".join(lines))
    deadline = time.monotonic() + 30
    import socket

    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"sshd did not listen on port {port}") from None
                time.sleep(0.05)
    return processes, config_path, cgroup


def stop_openssh(processes, cgroup: Path) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            cgroup.rmdir()
            return
        except OSError:  # session processes still exiting
            time.sleep(0.2)


class HostCpu:
    """Host-side CPU seconds: a cgroup's cpuacct.usage, or one process's times."""

    def __init__(self, spec: str):
        self.cgroup = Path(spec) if spec.startswith("/") else None
        self.process = None if self.cgroup else psutil.Process(int(spec))

    def seconds(self) -> float:
        if self.cgroup is not None:
            return int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
        return sum(self.process.cpu_times()[:2])


# --- relays: the console behind site relays, each its own process ------------------------


async def serve_relay_over_ssh(config: Path, site: str, workdir: Path) -> None:
    """A relay host: an SSH server whose one command is `serve_relay` for `site`."""
    import asyncssh

    from opsconsole.collect.relay import serve_relay
    from opsconsole.config import load_fleet

    fleet = load_fleet(config)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client = asyncssh.read_private_key(str(workdir / "client_key"))
    authorized = asyncssh.import_authorized_keys(client.export_public_key().decode())

    async def handle(process) -> None:
        try:
            await serve_relay(fleet, site, process.stdout, requests=process.stdin)
        finally:
            process.exit(0)

    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key], authorized_client_keys=authorized,
        process_factory=handle, encoding=None,
    )  # fmt: skip
    port = server.sockets[0].getsockname()[1]
    public = host_key.export_public_key().decode().strip()
    (workdir / f"relay-{site}.ready").write_text(f"{port} {public}")
    await asyncio.Event().wait()


def start_relays(config: Path, workdir: Path) -> tuple[list[subprocess.Popen], Path]:
    """One relay process per site; returns them and the console's config naming them."""
    processes = []
    for k in range(BENCH_SITES):
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "_relay", str(config), f"S{k}", str(workdir)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ))  # fmt: skip
    text = config.read_text()
    known = []
    extra = ["[host_classes.collector]\ngpus = 0\n"]
    deadline = time.monotonic() + 120
    for k, process in enumerate(processes):
        ready = workdir / f"relay-S{k}.ready"
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"relay S{k} failed: {process.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
        port, public = ready.read_text().split(" ", 1)
        known.append(f"[127.0.0.1]:{port} {public}\n")
        text = text.replace(f'name = "S{k}"\n', f'name = "S{k}"\nrelay = "relay-s{k}"\n', 1)
        rack = next(line.split('"')[1] for line in text.splitlines() if line.startswith("names"))
        extra.append(
            f'[[hosts]]\nnames = "relay-s{k}"\naddress = "127.0.0.1"\nport = {port}\n'
            f'rack = "{rack}"\nclass = "collector"\nmode = "relay"\n'
        )
    with open(workdir / "known_hosts", "a") as known_hosts:
        known_hosts.writelines(known)
    console = workdir / "console.toml"
    console.write_text(text + "\n" + "\n".join(extra))
    return processes, console


# --- orchestration ------------------------------------------------------------------------


def serve_sim(hosts: int, interval_s: float, workdir: Path) -> tuple[subprocess.Popen, Path]:
    ready = workdir / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "opsconsole", "sim", "serve", "--hosts", str(hosts),
         "--interval", f"{interval_s:g}", "--dir", str(workdir), "--ready-file", str(ready)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"sim serve failed: {process.stderr.read().decode()[-500:]}")
        time.sleep(0.1)
    return process, Path(ready.read_text().strip())


def run_child(
    mode: str, config: Path, duration_s: float, sim_pid: int | str, env: dict | None = None
) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "_measure", mode, str(config), str(duration_s), str(sim_pid)],
        cwd=REPO, capture_output=True, text=True, timeout=duration_s + 300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if out.returncode != 0:
        return {"mode": mode, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'hosts':>5} {'pattern':<7} {'CPU/poll':>9} {'CPU':>6} {'delivered':>9} {'missed':>6} "
        f"{'late p50':>9} {'p95':>8} {'max':>8} {'RSS':>8} {'host/poll':>9} {'warmup':>7}"
        f" {'gc/poll':>8} {'CPU/host':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r.get('hosts', ''):>5} {r['mode']:<7} failed: {r['error']}")
            continue
        print(
            f"{r['hosts']:>5} {r['mode']:<7} {r['cpu_ms_per_poll']:>7.3f}ms {r['cpu_pct']:>5.1f}%"
            f" {r['delivered']:>8.1%} {r['missed']:>6} {r['late_p50_ms']:>7.1f}ms"
            f" {r['late_p95_ms']:>6.1f}ms {r['late_max_ms']:>6.0f}ms {r['rss_mib']:>5.0f}MiB"
            f" {r['sim_cpu_ms_per_poll']:>7.3f}ms {r['warmup_s']:>6.1f}s"
            f" {r['gc_ms_per_poll']:>6.3f}ms {r.get('cpu_ms_per_host', math.nan):>7.3f}ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs psutil, from the bench extra: .venv/bin/pip install -e '.[bench]'",
    )
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--replay", action="store_true", help="serve a recorded fleet (cheap) instead of sim"
    )
    parser.add_argument(
        "--openssh", action="store_true", help="serve the hosts from Debian's sshd (as root)"
    )
    parser.add_argument(
        "--connect-concurrency", type=int, default=20, help="with --replay: the starting value"
    )
    parser.add_argument(
        "--relays",
        action="store_true",
        help=f"with --replay: also measure the console behind {BENCH_SITES} site relays",
    )
    parser.add_argument(
        "--relay-every",
        type=int,
        nargs="+",
        default=[0, 1, 4],
        help="with --relays: the console's `batch N` asks (0: one line per host message,"
        " as an older relay or console; 1: batched; 4: each host's sample every 4th interval)",
    )
    args = parser.parse_args()
    rows = []
    print(
        f"{os.cpu_count()} CPUs; {args.duration:g} s per pattern; interval {args.interval:g} s;"
        f" load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        + ("; replayed fleet" if args.replay else "")
    )
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory(prefix="opsconsole-bench-sim-") as workdir:
            if args.openssh:
                sshds, config, cgroup = start_openssh(hosts, args.interval, Path(workdir))
                try:
                    for mode in args.modes:
                        row = run_child(mode, config, args.duration, str(cgroup))
                        row.setdefault("hosts", hosts)
                        rows.append(row)
                        print_table([row])
                finally:
                    stop_openssh(sshds, cgroup)
                continue
            if args.replay:
                sim, config = start_replay(
                    hosts, args.interval, Path(workdir), args.connect_concurrency
                )
            else:
                sim, config = serve_sim(hosts, args.interval, Path(workdir))
            if args.replay:
                size = (Path(workdir) / "sample_bytes").read_text()
                print(f"{hosts} hosts: {size} bytes per sample line (8 GPUs, IB, Ethernet)")
            relays: list[subprocess.Popen] = []
            try:
                for mode in args.modes:
                    row = run_child(mode, config, args.duration, sim.pid)
                    row.setdefault("hosts", hosts)
                    rows.append(row)
                    print_table([row])
                if args.replay and args.relays:
                    relays, console = start_relays(config, Path(workdir))
                    for every in args.relay_every:
                        env = {"OPSCONSOLE_BENCH_RELAY_EVERY": str(every)}
                        row = run_child("poller", console, args.duration, sim.pid, env)
                        row["mode"] = f"relay/{every}" if every else "relay-l"
                        row.setdefault("hosts", hosts)
                        rows.append(row)
                        print_table([row])
            finally:
                for process in relays:
                    process.terminate()
                    process.wait(30)
                sim.send_signal(signal.SIGTERM)
                sim.wait(30)
    print()
    print_table(rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        mode, config, duration, sim_pid = sys.argv[2:6]
        result = asyncio.run(measure(mode, Path(config), float(duration), sim_pid))
        print(json.dumps(result))
    elif len(sys.argv) > 1 and sys.argv[1] == "_relay":
        asyncio.run(serve_relay_over_ssh(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_replay":
        hosts, interval, workdir, concurrency = sys.argv[2:6]
        asyncio.run(serve_replay(int(hosts), float(interval), Path(workdir), int(concurrency)))
    else:
        main()
