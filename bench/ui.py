"""UI benchmark: the fleet grid (line API, cached strips) against a Textual DataTable
holding the same 1,000 hosts / 8,000 GPUs, in the same headless run.

    .venv/bin/python bench/ui.py [--hosts 1000] [--rounds 5] [--size 160x50]

Figures (milliseconds, median of --rounds):
  frame        draw every visible line with a cold cache (render_line for each row)
  refresh      one poll interval's batch where every host changed: apply it, then
               draw the visible lines (grid: model.apply + fleet_changed; DataTable:
               update_cell for each changed cell)
  + repaint    the same, timed until Textual has composited and written the screen
  key→paint    a cursor key press until the screen is painted, idle and while a
               polling thread feeds all hosts every 2 s (the real thread driver)
  open host    Enter on a host line until a frame is written that shows that host's view
               with its GPU rows (its last known state; history and ports may still
               say loading), judged as each frame is written; Esc once the host's
               history has come, so one open's tail does not land in the next; with
               the UI thread's CPU time over the same span (what load cannot inflate)
  --load N     the key→paint figures again with the machine busy: `stress-ng --cpu N`
               (or N busy-loop processes without stress-ng), started and stopped by PID
Targets: grid frame <= 50 ms and >= 2x faster than the DataTable; key→paint and open host
under 100 ms (p95) while loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.ui.synthetic

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.ui.app import OpsConsoleApp, make_app
from opsconsole.ui.feed.feed import FleetBatch, FleetFeed
from opsconsole.ui.feed.runtime import tune_garbage_collector
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.view.fleet_painter import Columns
from opsconsole.ui.view.metrics import METRICS, Metric, gpu_cell
from opsconsole.ui.view.model import FleetModel
from opsconsole.ui.view.snapshot import HostSnapshot
from opsconsole.ui.widgets.gpu_table import GpuTable
from tests.ui.synthetic import T0, feed_all, synthetic_fleet, warm_fleet

Size = tuple[int, int]
Batch = dict[str, HostSnapshot]
Figures = dict[str, float]
PollerFactory = Callable[[Fleet, FleetState], Any]

COLUMNS = ("host", "rack", "state", *(f"g{i}" for i in range(8)), "util", "temp", "power", "mem")


def ms(seconds: float) -> float:
    return seconds * 1000.0


def median(values: list[float]) -> float:
    return statistics.median(values)


def table_row(snap: HostSnapshot, metric: Metric) -> list[str]:
    cells = [snap.name, snap.host.rack, snap.status]
    for i in range(8):
        text, _ = gpu_cell(metric, snap.gpus[i], snap.status, snap.health[i])
        cells.append(text)
    cells += [
        f"{snap.util_avg_pct:.0f}%",
        f"{snap.temp_max_c:.0f}°",
        f"{(snap.power_w or 0.0) / 1000:.2f}kW",
        f"{snap.mem_used_pct:.0f}%",
    ]
    return cells


class TableApp(App[None]):
    """The baseline: one DataTable row per host, updated cell by cell."""

    def compose(self) -> ComposeResult:
        yield DataTable(id="table")


async def bench_table(model: FleetModel, batches: list[Batch], size: Size, rounds: int) -> Figures:
    app = TableApp()
    metric = METRICS["util"]
    out: dict[str, list[float]] = {"frame": [], "refresh": [], "repaint": []}
    async with app.run_test(size=size) as pilot:
        table: DataTable[str] = app.query_one(DataTable)
        for key in COLUMNS:
            table.add_column(key, key=key, width=8 if key.startswith("g") else 12)
        shown: dict[str, list[str]] = {}
        for name, snap in model.hosts.items():
            shown[name] = table_row(snap, metric)
            table.add_row(*shown[name], key=name)
        await pilot.pause()
        height = table.size.height
        for r in range(rounds):
            cast(Any, table)._clear_caches()
            start = time.perf_counter()
            for y in range(height):
                table.render_line(y)
            out["frame"].append(ms(time.perf_counter() - start))

            batch = batches[r % len(batches)]
            start = time.perf_counter()
            with app.batch_update():
                for name, snap in batch.items():
                    row = table_row(snap, metric)
                    for key, new, old in zip(COLUMNS, row, shown[name], strict=True):
                        if new != old:
                            table.update_cell(name, key, new)
                    shown[name] = row
            for y in range(height):
                table.render_line(y)
            out["refresh"].append(ms(time.perf_counter() - start))
            start = time.perf_counter()
            await pilot.pause()
            out["repaint"].append(out["refresh"][-1] + ms(time.perf_counter() - start))
    return {k: median(v) for k, v in out.items()}


async def bench_grid(
    fleet: Fleet, state: FleetState, batches: list[Batch], size: Size, rounds: int
) -> Figures:
    app = make_app(fleet, state, clock=lambda: T0 + 100, publish_interval_s=3600)
    out: dict[str, list[float]] = {"frame": [], "refresh": [], "repaint": [], "lines": []}
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        grid = app.fleet_screen.grid
        app.run_command("sort site")
        await pilot.pause()
        height = grid.size.height
        for r in range(rounds):
            cast(Any, grid)._cache.clear()
            start = time.perf_counter()
            for y in range(height):
                grid.render_line(y)
            out["frame"].append(ms(time.perf_counter() - start))

            batch = batches[r % len(batches)]
            painted = grid.lines_painted
            start = time.perf_counter()
            changed = app.model.apply(FleetBatch(T0, batch))
            grid.fleet_changed(changed)
            for y in range(height):
                grid.render_line(y)
            out["refresh"].append(ms(time.perf_counter() - start))
            out["lines"].append(grid.lines_painted - painted)
            grid.fleet_changed(changed)  # the real repaint path: refresh changed lines
            start = time.perf_counter()
            await pilot.pause()
            out["repaint"].append(out["refresh"][-1] + ms(time.perf_counter() - start))
    return {k: median(v) for k, v in out.items()}


def synthetic_feeder(polling: bool, stats: dict[str, list[float]]) -> PollerFactory:
    """A poller factory whose poller feeds every host a synthetic sample every 2 s, on the
    console's real polling thread (or, with polling=False, sits idle)."""
    stop = threading.Event()

    class Feeder:
        def __init__(self, fleet: Fleet, state: FleetState) -> None:
            self.state = state

        async def run(self) -> None:
            seq = 10
            while not stop.is_set():
                if polling:
                    start = time.perf_counter()
                    feed_all(self.state, time.time(), seq)
                    stats.setdefault("feed_ms", []).append(ms(time.perf_counter() - start))
                    seq += 1
                await asyncio.sleep(2.0)

        async def stop(self) -> None:
            stop.set()

    return Feeder


async def key_to_paint(
    fleet: Fleet,
    state: FleetState,
    poller_factory: PollerFactory,
    size: Size,
    presses: int,
    settle: bool = False,
) -> Figures:
    """Cursor key (as a terminal delivers it) to a composed, terminal-encoded frame.
    `settle`: first wait until every host is fresh (steady state, not the connect storm)."""
    app = make_app(fleet, state, poller_factory=poller_factory)
    timings: list[float] = []
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        deadline = time.monotonic() + 120
        while settle and app.model.totals().hosts["fresh"] < len(fleet.hosts):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        grid = app.fleet_screen.grid
        driver = _driver(app)
        writes = watch_writes(app)
        moved: list[float] = []
        set_cursor = grid._set_cursor

        def timed_set_cursor(index: int) -> None:
            set_cursor(index)
            moved.append(time.perf_counter())

        cast(Any, grid)._set_cursor = timed_set_cursor
        loop = asyncio.get_running_loop()
        for i in range(presses):
            key = "down" if (i // 40) % 2 == 0 else "up"
            moved.clear()
            start = time.perf_counter()
            driver.send_message(events.Key(key, None))  # as a terminal key would arrive
            deadline = loop.time() + 5
            painted = None
            while painted is None and loop.time() < deadline:
                await asyncio.sleep(0.0005)
                if moved:
                    painted = next((w for w in reversed(writes) if w > moved[0]), None)
            timings.append(ms((painted or time.perf_counter()) - start))
            await asyncio.sleep(0.03)  # a brisk operator, not a key-repeat storm
    timings.sort()
    return {
        "p50": timings[len(timings) // 2],
        "p95": timings[int(len(timings) * 0.95) - 1],
        "max": timings[-1],
    }


class MachineLoad:
    """CPU load on the console's own machine: `stress-ng --cpu N`, or N Python busy loops
    where stress-ng is not installed. Each in its own session, stopped by its PID."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.how = ""

    def __enter__(self) -> MachineLoad:
        if self.workers <= 0:
            return self
        quiet = subprocess.DEVNULL
        exe = shutil.which("stress-ng")
        if exe:
            command = [exe, "--cpu", str(self.workers), "--timeout", "900s", "--quiet"]
            self.procs = [
                subprocess.Popen(command, start_new_session=True, stdout=quiet, stderr=quiet)
            ]
            self.how = f"stress-ng --cpu {self.workers}"
        else:
            busy = [sys.executable, "-c", "while True: pass"]
            self.procs = [
                subprocess.Popen(busy, start_new_session=True, stdout=quiet, stderr=quiet)
                for _ in range(self.workers)
            ]
            self.how = f"{self.workers} busy-loop processes"
        # Measure once the 1-minute load average shows it (about a minute), not 2 s in.
        deadline = time.monotonic() + 120
        while os.getloadavg()[0] < self.workers and time.monotonic() < deadline:
            time.sleep(1.0)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the session we started, its workers too
            except ProcessLookupError:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _driver(app: OpsConsoleApp) -> Any:
    """The app's terminal driver (headless here): keys are sent through it as a terminal's
    would arrive."""
    driver = cast(Any, app)._driver
    assert driver is not None
    return driver


def _any_screen(screen: object) -> bool:
    return True


def watch_writes(app: OpsConsoleApp, shows: Callable[[object], bool] = _any_screen) -> list[float]:
    """perf_counter() of every frame the app writes (encoded as a terminal receives it)
    while `shows(screen)` holds for the screen it wrote, judged as it is written."""
    writes: list[float] = []
    display = cast(Any, app)._display

    def timed_display(screen: object, renderable: Any) -> None:
        # Headless Textual composes frames but writes nothing; encode the update as a
        # terminal would receive it, so the figure includes that cost too.
        display(screen, renderable)
        if renderable is not None:
            renderable.render_segments(app.console)
            if shows(screen):
                writes.append(time.perf_counter())

    cast(Any, app)._display = timed_display
    return writes


async def open_host_to_paint(
    fleet: Fleet, state: FleetState, poller_factory: PollerFactory, size: Size, opens: int
) -> Figures:
    """Enter on a host line until a frame is written that shows that host's view with
    its GPU rows (its last known state; history and ports may still say loading)."""
    app = make_app(fleet, state, poller_factory=poller_factory)
    timings: list[float] = []
    cpu: list[float] = []
    names = [h.name for h in fleet.hosts]
    wanted: list[str] = [""]
    cpu_at: list[float] = []

    def shows_host(screen: object) -> bool:
        shown = (
            isinstance(screen, HostScreen)
            and screen.host_name == wanted[0]
            and screen.query_one(GpuTable).row_count > 0
        )
        if shown:
            cpu_at.append(time.thread_time())
        return shown

    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        writes = watch_writes(app, shows_host)
        loop = asyncio.get_running_loop()
        for i in range(opens):
            wanted[0] = names[(i * 37) % len(names)]
            app.fleet_screen.grid.move_to(("host", wanted[0]))
            await asyncio.sleep(0.05)
            writes.clear()
            cpu_at.clear()
            start, cpu_start = time.perf_counter(), time.thread_time()
            _driver(app).send_message(events.Key("enter", "\r"))
            deadline = loop.time() + 20
            while not writes and loop.time() < deadline:
                await asyncio.sleep(0.0005)
            timings.append(ms((writes[0] if writes else time.perf_counter()) - start))
            cpu.append(ms((cpu_at[0] if cpu_at else time.thread_time()) - cpu_start))
            # Stay until the host's history and ports are in, as an operator reading it
            # would: the detail asked for 0.2 s after Enter must not land in the next open.
            while app.model.detail_for(wanted[0]) is None and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            _driver(app).send_message(events.Key("escape", None))
            while not isinstance(app.screen, FleetScreen) and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
    timings.sort()
    return {
        "p50": timings[len(timings) // 2],
        "p95": timings[max(0, int(len(timings) * 0.95) - 1)],
        "max": timings[-1],
        "cpu": median(cpu),
    }


def print_keys(what: str, k: Figures, extra: str = "") -> None:
    print(
        f"key→paint {what:<22} p50 {k['p50']:5.1f} ms  p95 {k['p95']:5.1f} ms  "
        f"max {k['max']:5.1f} ms{extra}"
    )


async def keys_on_simulator(hosts: int, size: Size, presses: int) -> None:
    """The same, with the real Poller on the polling thread and the simulator in a
    subprocess (as `opsconsole demo` runs it)."""
    import subprocess
    import tempfile

    from opsconsole.cli.demo import stop_simulator, wait_for_ready
    from opsconsole.collect.poller import Poller
    from opsconsole.collect.state import FleetState
    from opsconsole.config import load_fleet

    with tempfile.TemporaryDirectory(prefix="opsconsole-bench-") as workdir:
        ready, log = Path(workdir) / "ready", Path(workdir) / "sim.log"
        with log.open("wb") as out:
            sim = subprocess.Popen(
                [sys.executable, "-m", "opsconsole", "sim", "serve", "--hosts", str(hosts),
                 "--dir", f"{workdir}/fleet", "--ready-file", str(ready)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                fleet = load_fleet(wait_for_ready(sim, ready, log, hosts))
                state = FleetState.from_fleet(fleet, now_ts=time.time())
                polls: list[Poller] = []

                def factory(fleet: Fleet, state: FleetState) -> Poller:
                    polls.append(Poller(fleet, state))
                    return polls[-1]

                k = await key_to_paint(fleet, state, factory, size, presses, settle=True)
                fresh = state.counts()["fresh"]
                print_keys(f"real poller, {hosts} sim", k, f"  ({fresh} hosts fresh at the end)")
            finally:
                stop_simulator(sim)


def make_batches(fleet: Fleet, state: FleetState, count: int) -> list[Batch]:
    """`count` batches in which every host sent a new sample (steady state at 1,000 hosts)."""
    feed = FleetFeed(state, lambda: T0)
    feed.collect()
    batches: list[Batch] = []
    for i in range(count):
        feed_all(state, T0 + 2 * (i + 1), 100 + i)
        batch = feed.collect()
        assert batch is not None
        batches.append(batch.snapshots)
    return batches


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", default="160x50", help="terminal COLSxROWS")
    parser.add_argument("--presses", type=int, default=150)
    parser.add_argument(
        "--no-gc-tuning", dest="gc_tuning", action="store_false",
        help="measure key→paint with CPython's default collector settings",
    )  # fmt: skip
    parser.add_argument(
        "--load", type=int, default=0, metavar="N",
        help="measure key→paint and open host again with N CPU-burning workers running",
    )  # fmt: skip
    parser.add_argument("--opens", type=int, default=20, help="host views opened per run")
    parser.add_argument(
        "--keys-only", action="store_true", help="skip the frame/refresh comparison"
    )  # fmt: skip
    parser.add_argument(
        "--sim", type=int, default=0, metavar="HOSTS",
        help="also measure key→paint with the real poller on a simulator of HOSTS hosts",
    )  # fmt: skip
    args = parser.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    size = (cols, rows)

    started = time.perf_counter()
    fleet = synthetic_fleet(args.hosts)
    state = warm_fleet(fleet, samples=3)
    batches = make_batches(fleet, state, args.rounds)
    feed = FleetFeed(state, lambda: T0)
    t = time.perf_counter()
    first = feed.collect()
    assert first is not None
    snapshots = first.snapshots
    collect_ms = ms(time.perf_counter() - t)
    model = FleetModel(fleet)
    model.apply(FleetBatch(T0, snapshots))
    gpus = sum(len(s.gpus) for s in model.hosts.values())
    print(f"{len(fleet.hosts)} hosts, {gpus} GPUs, terminal {size[0]}x{size[1]}")
    print(
        f"setup {time.perf_counter() - started:.1f} s; snapshot of every host "
        f"(polling thread, per batch) {collect_ms:.0f} ms"
    )
    print(f"columns at this width: {Columns.fit(fleet, size[0])}")

    if args.keys_only:
        await measure_keys(fleet, size, args)
        return
    grid = await bench_grid(fleet, state, batches, size, args.rounds)
    table = await bench_table(model, batches, size, args.rounds)
    print()
    print(f"{'median ms':<28}{'fleet grid':>12}{'DataTable':>12}{'speed-up':>10}")
    for key, label in (
        ("frame", "frame (visible lines)"),
        ("refresh", "refresh (all hosts changed)"),
        ("repaint", "  + repaint"),
    ):
        print(f"{label:<28}{grid[key]:>12.1f}{table[key]:>12.1f}{table[key] / grid[key]:>9.1f}x")
    print(f"grid lines drawn per refresh: {grid['lines']:.0f} (of {len(fleet.hosts)} hosts)")
    ok_frame = grid["frame"] <= 50.0
    ok_speed = table["refresh"] >= 2 * grid["refresh"] and table["frame"] >= 2 * grid["frame"]
    print(
        f"target frame <= 50 ms: {'met' if ok_frame else 'MISSED'}; "
        f">= 2x DataTable (frame and refresh): {'met' if ok_speed else 'MISSED'}"
    )

    print()
    await measure_keys(fleet, size, args)
    if args.sim:
        await keys_on_simulator(args.sim, size, args.presses)


async def measure_keys(fleet: Fleet, size: Size, args: argparse.Namespace) -> None:
    if args.gc_tuning:
        tune_garbage_collector()  # as `opsconsole console` does
    loads = (0, args.load) if args.load else (0,)
    for workers in loads:
        with MachineLoad(workers) as load:
            if workers:
                print(f"with the machine loaded: {load.how}, load average {os.getloadavg()[0]:.1f}")
            for polling in (False, True):
                stats: dict[str, list[float]] = {}
                state = warm_fleet(fleet, samples=2, now_ts=time.time())
                feeder = synthetic_feeder(polling, stats)
                k = await key_to_paint(fleet, state, feeder, size, args.presses)
                feeds = stats.get("feed_ms", [])
                extra = (
                    f"  ({len(feeds)} feeds of {len(fleet.hosts)} hosts, {median(feeds):.0f} ms"
                    " each on the polling thread)"
                    if feeds
                    else ""
                )
                print_keys("while polling" if polling else "idle", k, extra)
            state = warm_fleet(fleet, samples=2, now_ts=time.time())
            k = await open_host_to_paint(fleet, state, synthetic_feeder(True, {}), size, args.opens)
            print_keys("open host (polling)", k, f"  (UI thread CPU p50 {k['cpu']:.1f} ms)")
            if workers:
                print(f"  load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
