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
tick the sample belongs to), console RSS, and the simulator's CPU per host-poll for scale.
Prints figures only; nothing here asserts a timing.

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
    ingest = TelemetryIngest(open_store(Path(db_dir) / "bench.db"))
    state = FleetState.from_fleet(fleet, now_ts=time.time())

    last_sample: dict[str, object] = {}

    def on_update(host, change):
        """Called on every state change; a new Sample object is a new host-poll."""
        if change in ("sample", "status") and host.sample is not last_sample.get(host.name):
            last_sample[host.name] = host.sample
            if host.sample is not None:
                recorder.sample(host.name, recorder.tick_of(host.sample.ts))

    poller = Poller(fleet, state, ingest=ingest, on_update=on_update)
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
        async for line in process.stdout:
            message = json.loads(line)
            if message.get("type") == "sample":
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


async def measure(mode: str, config: Path, duration_s: float, sim_pid: int) -> dict:
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
    sim = psutil.Process(sim_pid)
    sim_cpu0 = sum(sim.cpu_times()[:2])
    cpu0 = cpu_s()
    recorder.measuring = True
    await asyncio.sleep(duration_s)
    recorder.measuring = False
    cpu = cpu_s() - cpu0
    sim_cpu = sum(sim.cpu_times()[:2]) - sim_cpu0
    rss_mib = psutil.Process().memory_info().rss / 2**20
    await stop()
    late = sorted(recorder.lateness_ms) or [math.nan]
    expected = len(fleet.hosts) * duration_s / interval_s
    return {
        "mode": mode,
        "hosts": len(fleet.hosts),
        "answered": len(recorder.first_seen),
        "warmup_s": warmup_s,
        "samples": recorder.samples,
        "delivered": recorder.samples / expected,
        "missed": recorder.missed,
        "cpu_ms_per_poll": 1000.0 * cpu / max(recorder.samples, 1),
        "cpu_pct": 100.0 * cpu / duration_s,
        "late_p50_ms": late[len(late) // 2],
        "late_p95_ms": late[int(len(late) * 0.95)],
        "late_max_ms": late[-1],
        "rss_mib": rss_mib,
        "sim_cpu_ms_per_poll": 1000.0 * sim_cpu / max(recorder.samples, 1),
    }


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


def run_child(mode: str, config: Path, duration_s: float, sim_pid: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "_measure", mode, str(config), str(duration_s), str(sim_pid)],
        cwd=REPO, capture_output=True, text=True, timeout=duration_s + 300,
    )  # fmt: skip
    if out.returncode != 0:
        return {"mode": mode, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'hosts':>5} {'pattern':<7} {'CPU/poll':>9} {'CPU':>6} {'delivered':>9} {'missed':>6} "
        f"{'late p50':>9} {'p95':>8} {'max':>8} {'RSS':>8} {'sim/poll':>9} {'warmup':>7}"
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
    args = parser.parse_args()
    rows = []
    print(f"{os.cpu_count()} CPUs; {args.duration:g} s per pattern; interval {args.interval:g} s")
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory(prefix="opsconsole-bench-sim-") as workdir:
            sim, config = serve_sim(hosts, args.interval, Path(workdir))
            try:
                for mode in args.modes:
                    row = run_child(mode, config, args.duration, sim.pid)
                    row.setdefault("hosts", hosts)
                    rows.append(row)
                    print_table([row])
            finally:
                sim.send_signal(signal.SIGTERM)
                sim.wait(30)
    print()
    print_table(rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        mode, config, duration, sim_pid = sys.argv[2:6]
        result = asyncio.run(measure(mode, Path(config), float(duration), int(sim_pid)))
        print(json.dumps(result))
    else:
        main()
