"""The console's collector against 20 healthy hosts and every hostile case of
`opsconsole.sim.hostile` (37 hosts that lie, flood, stall or forge) for N minutes: is its
memory flat, and is every healthy sample stored on schedule?

    .venv/bin/python bench/hostile.py [--minutes 10] [--healthy 20] [--interval 2]

The hosts run in a process of their own (as a fleet would), so the figures are the
console's: the Poller the console runs, with a real store file. Prints RSS over time and,
at the end, each healthy host's samples received and stored against the ticks of its
schedule. Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.sim.hostile import HostileFarm
from opsconsole.store import TelemetryIngest, open_store


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


async def run(minutes: float, healthy: int, interval_s: float, directory: Path) -> None:
    polling = {"interval_s": interval_s, "connect_jitter_s": 0.5}
    farm_proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opsconsole.sim.hostile", str(directory), str(healthy),
        json.dumps(polling), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert farm_proc.stdout is not None
        print((await farm_proc.stdout.readline()).decode().strip(), flush=True)
        fleet = load_fleet(directory / "config.toml")
        names = HostileFarm(healthy).healthy_names
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        first: dict[str, float] = {}
        last: dict[str, float] = {}

        def on_sample(host, change) -> None:
            if host.name in names and change in ("sample", "status") and host.sample:
                first.setdefault(host.name, host.sample.ts)
                last[host.name] = host.sample.ts

        state.add_listener(on_sample)
        poller = Poller(fleet, state, ingest=TelemetryIngest(open_store(directory / "o.db")))
        await poller.start()
        started = time.monotonic()
        print(f"{len(fleet.hosts)} hosts ({healthy} healthy), interval {interval_s:g} s,"
              f" {minutes:g} min", flush=True)  # fmt: skip
        print(" min   RSS MiB  healthy fresh  hostile fresh/stale/down  lines dropped"
              "  console lag ms", flush=True)  # fmt: skip
        rss: list[float] = []
        end = started + minutes * 60
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(30.0, end - now))
            rss.append(rss_mib())
            hs = state.hosts.values()
            fresh = sum(1 for h in hs if h.name in names and h.status == "fresh")
            bad = [h for h in hs if h.name not in names]
            counts = [sum(1 for h in bad if h.status == s) for s in ("fresh", "stale", "down")]
            dropped = sum(h.budget.dropped_lines for h in hs if h.budget is not None)
            elapsed_min = (time.monotonic() - started) / 60
            lag_ms = state.console_lag_ms or 0.0
            print(f"{elapsed_min:4.1f}  {rss[-1]:8.1f}  {fresh:6d}/{healthy}"
                  f"         {counts[0]:3d}/{counts[1]:3d}/{counts[2]:3d}"
                  f"            {dropped:9d}  {lag_ms:10.0f}", flush=True)  # fmt: skip
        received = {n: state.hosts[n].samples_received for n in names}
        await poller.stop()
        db = open_store(directory / "o.db")
        stored = dict(
            db.conn.execute(
                "SELECT host, sum(n) FROM gpu_minute WHERE gpu_index = 0 GROUP BY host"
            ).fetchall()
        )
        db.conn.close()
        print("\nhealthy host      ticks  received  stored  (ticks: first to last sample)")
        ratios = []
        for name in names:
            ticks = round((last.get(name, 0) - first.get(name, 0)) / interval_s) + 1
            got = stored.get(name, 0)
            ratios.append(got / ticks if ticks else 0.0)
            print(f"{name:<16} {ticks:6d}  {received[name]:8d}  {got:6d}")
        print(f"\nstored/ticks: min {min(ratios):.4f}, mean {statistics.mean(ratios):.4f}")
        if len(rss) >= 3:
            growth = rss[-1] - rss[0]
            print(f"RSS: first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, max {max(rss):.1f} MiB,"
                  f" growth since the first reading {growth:+.1f} MiB")  # fmt: skip
    finally:
        farm_proc.terminate()
        await farm_proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--healthy", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.minutes, args.healthy, args.interval, Path(tmp)))


if __name__ == "__main__":
    main()
