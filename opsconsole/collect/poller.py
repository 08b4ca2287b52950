"""The poller: one task per host, a status ticker, and the store's flush cadence.

Why a task per host rather than a loop over hosts: a loop is only as fast as its slowest
host and a single exception stops everyone; with a task each, a host that hangs, floods or
lies costs its own task only. Connects go through a semaphore (OpenSSH's MaxStartups drops
connection storms) after a random jitter, so a console start at 1,000 hosts is a ramp.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from opsconsole.collect.commands import AgentCommands, HostCommands
from opsconsole.collect.connect_slots import AdaptiveConnectSlots
from opsconsole.collect.gpu_ledger import GpuLedger
from opsconsole.collect.host_events import HostEventRecorder
from opsconsole.collect.ingest_writer import IngestWriter
from opsconsole.collect.loop_lag import LoopLagMonitor
from opsconsole.collect.probes import HostProbe
from opsconsole.collect.relay import plan_sessions
from opsconsole.collect.session import HostSession, SessionContext
from opsconsole.collect.sink import TelemetrySink
from opsconsole.collect.snapshot import fleet_snapshot
from opsconsole.collect.ssh import SshConnector
from opsconsole.collect.state import FleetState, Listener
from opsconsole.config import Fleet
from opsconsole.errors import CollectError
from opsconsole.wire import WIRE_VERSION

log = logging.getLogger("opsconsole.collect")

TICK_INTERVAL_S = 1.0
"""How often statuses are aged (fresh -> stale -> down)."""
DRAIN_INTERVAL_S = 1.0
"""How often queued samples are handed to the store's thread."""
FLUSH_INTERVAL_S = 60.0
"""How often finished minutes are written to SQLite."""
STOP_ATTEMPTS = 10
STOP_WAIT_S = 1.0
"""stop() cancels again what is still running after each wait: a cancellation that races
a completion inside asyncio.wait_for (Python 3.11, asyncssh uses it) can be lost."""


class Poller:
    """Collects from every host of `fleet` into `state` (and `ingest`, if given).

    `clock` gives UTC epoch seconds (tests may pass their own); `on_update(host_state,
    change)` is called on every state change, on the loop, and must be quick."""

    def __init__(
        self,
        fleet: Fleet,
        state: FleetState,
        *,
        ingest: TelemetrySink | None = None,
        clock: Callable[[], float] = time.time,
        on_update: Listener | None = None,
        commands: HostCommands | None = None,
        connector: SshConnector | None = None,
        probes: Sequence[HostProbe] = (),
        wire: int = WIRE_VERSION,
        relay_every: int | None = None,
    ):
        self.fleet = fleet
        self.state = state
        self.clock = clock
        self.writer = IngestWriter(ingest) if ingest is not None else None
        self.commands = commands or AgentCommands()
        self._connector = connector
        self.probes = tuple(probes)
        self.wire = wire
        """The agent protocol asked for: 2, the lean wire (1 for benchmarks comparing)."""
        self.relay_every = (
            relay_every
            if relay_every is not None
            else (fleet.config.polling.relay_every if fleet is not None else 1)
        )
        """Relays forward each host's sample every this many intervals (`batch N`; 0:
        ask nothing, one line per message)."""
        self._on_update = on_update
        self._host_events = HostEventRecorder(self.writer, clock) if self.writer else None
        self.sessions: dict[str, HostSession] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._running = False
        self.started_ts: float | None = None
        self.gpu_ledger: GpuLedger | None = (
            GpuLedger.for_fleet(fleet) if fleet is not None else None
        )
        self._gpus_from_ledger: dict[str, int | None] = {}
        self._gpu_ledger_failed = ""

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Start every host's session and the background tasks; returns at once."""
        if self._running:
            return
        if self._connector is None:
            self._connector = SshConnector(self.fleet.config.ssh, self.fleet.path.parent)
        self._running = True
        self._stopped.clear()
        self.started_ts = self.clock()
        _fewer_collections()
        if self._on_update is not None:
            self.state.add_listener(self._on_update)
        if self._host_events is not None:
            self.state.add_listener(self._host_events)
        if self.writer is not None:
            self.writer.sync_inventory(self.fleet)
        polling = self.fleet.config.polling
        ctx = SessionContext(
            connector=self._connector,
            state=self.state,
            polling=polling,
            commands=self.commands,
            clock=self.clock,
            connect_slots=AdaptiveConnectSlots(
                polling.connect_concurrency,
                self.fleet.config.ssh.connect_timeout_s,
                grow=self.fleet.config.ssh.proxy_jump is None,
            ),
            writer=self.writer,
            probes=self.probes,
            wire=self.wire,
            relay_every=self.relay_every,
            rtt_probe_interval_s=self.fleet.config.ssh.keepalive_interval_s,
        )
        self._ctx = ctx
        self.state.loop_lag = LoopLagMonitor()
        self._tasks.append(asyncio.create_task(self.state.loop_lag.run(), name="loop lag"))
        self.sessions, runners = plan_sessions(self.state, ctx, self.fleet)
        for session in runners:  # hosts behind a site relay are fed by the relay's session
            self._tasks.append(
                asyncio.create_task(session.run(), name=f"collect {session.host.name}")
            )
        self.sync_key_changes()
        self.sync_gpu_ledger()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="collect ticker"))
        if self.writer is not None:
            self._tasks.append(asyncio.create_task(self._store_loop(), name="collect store"))

    async def run(self) -> None:
        """Collect until stop() is called (from another task or a signal handler)."""
        await self.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        """Close every channel and connection (the agents exit on EOF), write what the
        store has pending, and return. Safe to call twice."""
        if not self._running:
            self._stopped.set()
            return
        self._running = False
        for session in self.sessions.values():
            session.stopping = True
        tasks, self._tasks = self._tasks, []
        pending = set(tasks)
        for _ in range(STOP_ATTEMPTS):
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_WAIT_S)
            if not pending:
                break
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("%s ended with %r", task.get_name(), task.exception())
        if pending:
            log.error("%d collection tasks did not stop", len(pending))
        self.state.loop_lag = None
        if self._connector is not None:
            await self._connector.close()
        if self.writer is not None:
            await self.writer.close(self.clock())
        for listener in (self._on_update, self._host_events):
            if listener is not None:
                self.state.remove_listener(listener)
        self._stopped.set()

    def reconnect(self, name: str) -> None:
        """Drop and re-open one host's connection now, skipping any backoff wait."""
        session = self.sessions.get(name)
        if session is None:
            raise KeyError(f"no host named {name!r} is being collected")
        if self._connector is not None:
            self._connector.reload_known_hosts()
            self.sync_key_changes()
        session.reconnect()

    def accept_extra_gpus(self, name: str, operator: str) -> str:
        """An operator accepts the GPUs a host reports beyond its expected count (the host
        was really upgraded): from its next sample they count in totals. Logged with the
        operator's name; returns a line for the operator."""
        host = self.state.hosts.get(name)
        if host is None:
            raise KeyError(f"no host named {name!r} is being collected")
        if not host.extra_gpus:
            return f"{name} reports no GPUs beyond the {host.accepted_gpus} accepted"
        extra = host.extra_gpus
        accepted = host.accept_extra_gpus()
        log.warning("%s accepted %d extra GPUs on %s (%d now)", operator, extra, name, accepted)
        self.state.changed(host, "status")
        return f"{name}: {accepted} GPUs accepted ({extra} more) by {operator}"

    async def poll_once(self, timeout_s: float) -> dict[str, Any]:
        """Connect to every host, wait until each has sent a sample or failed (or until
        `timeout_s`), and return a snapshot. Stops again if it was not already running."""
        started_here = not self._running
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while not all(s.has_result for s in self.sessions.values()):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._ctx.progress.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._ctx.progress.wait()
                except TimeoutError:
                    break
            now = self.clock()
            self.state.tick(now)
            for session in self.sessions.values():
                if not session.has_result:
                    connected = "connected, " if session.host_state.connected else ""
                    session.host_state.mark_connect_failed(
                        "timeout", f"{connected}no sample within {timeout_s:g} s", now
                    )
            return fleet_snapshot(self.state, now)
        finally:
            if started_here:
                await self.stop()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            self.sync_key_changes()
            self.sync_gpu_ledger()
            self.state.tick(self.clock())

    def sync_key_changes(self) -> None:
        """Copy the host-key ledger into the live state (an operator may have decided in
        another process); a host whose change was settled reconnects at once."""
        connector = self._connector
        if connector is None or connector.key_ledger is None:
            return
        connector.refresh_trust()
        ledger = connector.key_ledger
        for host_state in self.state.hosts.values():
            change = ledger.get(host_state.name)
            if change == host_state.key_change:
                continue
            settled = change is None
            host_state.key_change = change
            self.state.changed(host_state, "connection")
            session = self.sessions.get(host_state.name)
            if settled and session is not None:
                session.reconnect()

    def sync_gpu_ledger(self) -> None:
        """Take acceptances of extra GPUs from the ledger (`opsconsole hosts accept-gpus`
        or the console, maybe in another process, maybe before a restart) and write back
        what each host reports beyond its accepted count, for the operator to accept."""
        ledger, now = self.gpu_ledger, self.clock()
        if ledger is None:
            return
        try:
            ledger.refresh()
            for host_state in self.state.hosts.values():
                accepted = ledger.accepted_count(host_state.name)
                if accepted != self._gpus_from_ledger.get(host_state.name):
                    self._gpus_from_ledger[host_state.name] = accepted
                    if host_state.set_accepted_gpus(accepted or 0):
                        self.state.changed(host_state, "status")
                ledger.note(host_state.extra_gpu_report(now), host_state.name, now)
        except CollectError as exc:
            if str(exc) != self._gpu_ledger_failed:  # said once, not every second
                log.error("%s", exc)
            self._gpu_ledger_failed = str(exc)
        else:
            self._gpu_ledger_failed = ""

    async def _store_loop(self) -> None:
        assert self.writer is not None
        next_flush = asyncio.get_running_loop().time() + FLUSH_INTERVAL_S
        while True:
            await asyncio.sleep(DRAIN_INTERVAL_S)
            try:
                if asyncio.get_running_loop().time() >= next_flush:
                    next_flush += FLUSH_INTERVAL_S
                    await self.writer.flush(self.clock())
                else:
                    await self.writer.drain()
            except Exception:  # never let the store stop collection
                log.exception("store hand-off failed")


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections while polling (CPython's default is
700). Each sample leaves a few hundred short-lived lists and tuples; at 1,000 hosts the
default threshold ran a full collection of the whole live state (every host's history
and samples) every few seconds, a quarter of the poller's CPU (bench/poll.py gc/poll)."""


def _fewer_collections() -> None:
    young, middle, old = gc.get_threshold()
    if young and young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
