"""One host's collection loop: connect, stream (or poll agentless), reconnect with backoff.

Each host runs this in its own task, so a slow, silent or hostile host only ever delays
itself. Every way a session can end is turned into a reason on the host's state; nothing
that goes wrong with one host propagates to the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import asyncssh
import msgspec

from opsconsole.collect.backoff import Backoff
from opsconsole.collect.budget import OVER_BUDGET, HostBudget, OverBudget
from opsconsole.collect.commands import HostCommands
from opsconsole.collect.connect_slots import AdaptiveConnectSlots
from opsconsole.collect.ingest_writer import IngestWriter
from opsconsole.collect.loop_lag import honest_rtt_ms
from opsconsole.collect.probes import HostProbe, run_probe
from opsconsole.collect.reasons import AGENT_ERROR, CONNECTION_LOST, PROTOCOL_ERROR, TIMEOUT
from opsconsole.collect.ssh import (
    ConnectFailure,
    SshConnector,
    classify_failure,
    measure_rtt_ms,
    measure_rtt_ms_supported,
)
from opsconsole.collect.state import FleetState, HostState
from opsconsole.collect.stream import ReadStats, read_messages
from opsconsole.config import PollingSettings
from opsconsole.wire import (
    WIRE_VERSION,
    AgentError,
    ChannelDecoder,
    Hello,
    ProtocolError,
    Sample,
    decode_line,
)
from opsconsole.wire.text import clean_text

log = logging.getLogger("opsconsole.collect")

MAX_CONSECUTIVE_BAD_LINES = 5
"""Bad lines in a row after which the channel is restarted: one bad line is a glitch to
count, a run of them means the stream is out of step or the agent is not ours."""
STDERR_TAIL_BYTES = 2048
CHANNEL_WINDOW_BYTES = 256 * 1024
CHANNEL_PACKET_BYTES = 32 * 1024
"""What a host may have in flight on its agent channel. asyncssh buffers up to the window
twice (in the channel while paused, in the stream up to its limit, which is the window),
so a host sending faster than its budget is read costs at most ~2 windows: 512 KiB, not
the 4 MiB of asyncssh's 2 MiB default. An honest sample is ~10-20 KiB a line."""
WARN_INTERVAL_S = 60.0


@dataclass
class SessionContext:
    """What every host session of one poller shares."""

    connector: SshConnector
    state: FleetState
    polling: PollingSettings
    commands: HostCommands
    clock: Callable[[], float]
    connect_slots: asyncio.Semaphore | AdaptiveConnectSlots
    writer: IngestWriter | None = None
    probes: Sequence[HostProbe] = ()
    """Collector plugins' commands, run on each connected host beside the stream."""
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    rtt_probe_interval_s: float = 15.0
    wire: int = WIRE_VERSION
    """The protocol asked of agents and relays (`wire 2` on their stdin); 1 asks nothing."""
    relay_every: int = 1
    """What relays are asked for (`batch N`): their site's news as one line per interval,
    each host's sample every N intervals (capped below `stale_after_s`); 0 asks nothing
    (one line per host message, as an older relay sends)."""


class HostSession:
    def __init__(self, host_state: HostState, ctx: SessionContext):
        self.host_state = host_state
        self.host = host_state.host
        self.ctx = ctx
        self.samples = 0
        self.failures = 0
        self.connects = 0
        self.stopping = False
        """Set by the poller before it cancels the task: asyncio.wait_for in Python 3.11
        can swallow a cancellation that races a completion, so the loop checks this too."""
        self._warned_ts = float("-inf")
        self._conn: asyncssh.SSHClientConnection | None = None
        self._wake = asyncio.Event()
        self._hello_ok = False  # this channel sent a valid hello: samples may follow
        self._last_seq: int | None = None  # the channel's latest sample sequence number
        self.decoder = ChannelDecoder()  # this channel's (a v2 channel has state)
        if host_state.budget is None:
            host_state.budget = HostBudget(ctx.polling.interval_s)
        self.budget = host_state.budget

    @property
    def has_result(self) -> bool:
        """A sample arrived, or at least one attempt failed with a reason to report."""
        return self.samples > 0 or self.failures > 0

    async def run(self) -> None:
        polling = self.ctx.polling
        backoff = Backoff(polling.reconnect_backoff_min_s, polling.reconnect_backoff_max_s)
        while not self.stopping:
            slow = False
            try:
                slow = await self._one_connection(backoff)
            except Exception as exc:  # a bug here must cost one host, not the fleet
                log.exception("collection of %s failed", self.host.name)
                self._failed(ConnectFailure(PROTOCOL_ERROR, f"internal error: {exc}"), False)
            delay_s = backoff.slow_s() if slow else backoff.next_s()
            try:
                async with asyncio.timeout(delay_s):
                    await self._wake.wait()
                backoff.reset()  # an operator asked for a reconnect: go now
            except TimeoutError:
                pass
            self._wake.clear()

    def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again without waiting out
        the backoff: the operator fixed something (a host key, a user) and wants to see."""
        self._wake.set()
        if self._conn is not None:
            self._conn.close()

    async def _one_connection(self, backoff: Backoff) -> bool:
        """Connect and collect until the session ends; returns whether to retry slowly."""
        try:
            conn = await self._connect()
        except ConnectFailure as failure:
            self._failed(failure, connect=True)
            return failure.retry_slowly
        self.connects += 1
        self._conn = conn
        self.host_state.mark_connected(self.ctx.clock())
        self.ctx.state.changed(self.host_state, "connection")
        samples_before = self.samples
        rtt_task = asyncio.create_task(self._probe_rtt(conn))
        probe_tasks = [
            asyncio.create_task(run_probe(conn, self.host_state, probe, self.ctx.clock))
            for probe in self.ctx.probes
        ]
        try:
            if self.host.mode == "agentless":
                await self._poll_agentless(conn)
            else:
                await self._stream_agent(conn)
        except ConnectFailure as failure:
            self._failed(failure, connect=False)
            if failure.reason == OVER_BUDGET:
                return True  # a flooder waits out the slow backoff before it is heard again
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            self._failed(classify_failure(exc), connect=False)
        finally:
            rtt_task.cancel()
            for task in probe_tasks:
                task.cancel()
            self._conn = None
            await _close(conn)
        if self.samples > samples_before:
            backoff.reset()
        return False

    async def _connect(self) -> asyncssh.SSHClientConnection:
        await asyncio.sleep(random.uniform(0, self.ctx.polling.connect_jitter_s))
        async with self.ctx.connect_slots:
            return await self.ctx.connector.connect(self.host)

    def _failed(self, failure: ConnectFailure, connect: bool) -> None:
        self.failures += 1
        now = self.ctx.clock()
        changed = False
        if connect:
            changed = self.host_state.mark_connect_failed(failure.reason, failure.detail, now)
        else:
            self.host_state.mark_disconnected(failure.reason, failure.detail, now)
        log.info("%s: %s", self.host.name, failure)
        self.ctx.state.changed(self.host_state, "status" if changed else "connection")
        self.ctx.progress.set()

    # --- agent mode -------------------------------------------------------------------
    async def _stream_agent(self, conn: asyncssh.SSHClientConnection) -> None:
        """Run the agent on one long-lived channel and apply what it sends until the
        channel ends; raises ConnectFailure saying why it ended."""
        command = self.ctx.commands.agent_command(self.host, self.ctx.polling.interval_s)
        process = await conn.create_process(
            command, encoding=None, window=CHANNEL_WINDOW_BYTES, max_pktsize=CHANNEL_PACKET_BYTES
        )
        self._hello_ok, self._last_seq = False, None
        self.decoder = ChannelDecoder()
        if self.ctx.wire >= WIRE_VERSION:
            request_wire(process, self.ctx.wire)
        stderr_tail = bytearray()
        over_budget: list[str] = []

        def stderr_over_budget(why: str) -> None:
            over_budget.append(why)
            process.close()  # stdout then ends too, and the channel with it

        stderr_task = asyncio.create_task(
            _keep_tail(process.stderr, stderr_tail, self.budget, stderr_over_budget)
        )
        silence_s = self.ctx.polling.down_after_s
        loop = asyncio.get_running_loop()
        ended = False
        stats = ReadStats()
        messages = read_messages(
            process.stdout, budget=self.budget, stats=stats, decode=self.decoder.decode
        )
        try:
            async with asyncio.timeout(silence_s) as window:
                async for message in messages:
                    window.reschedule(loop.time() + silence_s)
                    if not self._apply(message):
                        raise ConnectFailure(
                            PROTOCOL_ERROR,
                            f"{MAX_CONSECUTIVE_BAD_LINES} bad lines in a row "
                            f"(last: {self.host_state.last_protocol_error})",
                        )
            ended = True
        except OverBudget as exc:
            raise ConnectFailure(OVER_BUDGET, f"{exc}; channel closed") from None
        except TimeoutError:
            why = f"no line for {silence_s:g} s"
            if stats.long_line_bytes:
                why += f" (a line of {stats.long_line_bytes} bytes and counting past the cap)"
            elif self.host_state.over_budget:
                why += f" (over budget: {self.host_state.over_budget})"
            raise ConnectFailure(TIMEOUT, why + "; restarting the agent") from None
        finally:
            if not ended:
                process.close()  # the agent exits when its stdin reaches EOF
                stderr_task.cancel()
        # The agent's stdout ended: collect its exit status and last words, if any.
        try:
            async with asyncio.timeout(2.0):
                await asyncio.gather(process.wait_closed(), stderr_task)
        except (TimeoutError, asyncssh.Error, OSError):
            pass
        process.close()
        stderr_task.cancel()
        if over_budget:
            raise ConnectFailure(OVER_BUDGET, f"{over_budget[0]}; channel closed")
        if conn.is_closed():
            raise ConnectFailure(CONNECTION_LOST, "connection closed")
        status = process.exit_status
        tail = bytes(stderr_tail).decode("utf-8", "replace").strip().splitlines()
        detail = f"agent exited with status {status}" if status is not None else "channel closed"
        if tail:
            detail += f": {clean_text(tail[-1], 200)}"
        raise ConnectFailure(AGENT_ERROR, detail)

    # --- messages that came another way (a site relay, opsconsole.collect.relay) -------
    def apply(self, message: Hello | Sample | AgentError | ProtocolError) -> bool:
        """Apply one message relayed for this host; False after too many bad lines."""
        return self._apply(message)

    def failed(self, failure: ConnectFailure, connect: bool) -> None:
        """Record a failure that the relay (or the relay's loss) reports for this host."""
        self._failed(failure, connect)

    def new_channel(self) -> None:
        """A new relay channel: a hello must come again before samples are taken."""
        self._hello_ok, self._last_seq = False, None
        self.decoder = ChannelDecoder()

    def _apply(self, message: Hello | Sample | AgentError | ProtocolError) -> bool:
        """Apply one decoded line; False when too many bad lines came in a row."""
        hs, state, now = self.host_state, self.ctx.state, self.ctx.clock()
        writer = self.ctx.writer
        if isinstance(message, Sample):
            refused = self._out_of_order(message)
            if refused is not None:
                message = refused
        elif isinstance(message, Hello):
            self._hello_ok, self._last_seq = True, None
        if isinstance(message, Sample):
            changed = hs.apply_sample(message, now)
            self.samples += 1
            if writer is not None:
                writer.add_sample(hs.name, message)
                if message.events:
                    writer.record_events(hs.name, message.events)
            state.changed(hs, "status" if changed else "sample")
            if self.samples == 1:
                self.ctx.progress.set()
        elif isinstance(message, Hello):
            hs.apply_hello(message, now)
            if writer is not None:
                writer.record_hello(hs.name, message)
            state.changed(hs, "hello")
        elif isinstance(message, AgentError):
            hs.record_agent_error(message.message, now)
            state.changed(hs, "error")
        else:
            hs.record_protocol_error(str(message), now)
            if now - self._warned_ts >= WARN_INTERVAL_S:  # a flooding host floods no log
                self._warned_ts = now
                log.warning("%s: refused a line: %s", hs.name, message)
            state.changed(hs, "error")
            return hs.consecutive_bad_lines < MAX_CONSECUTIVE_BAD_LINES
        return True

    def _out_of_order(self, sample: Sample) -> ProtocolError | None:
        """A sample is taken only after a valid hello on its channel and with a sequence
        number above the last one: a host cannot feed readings past a refused hello, nor
        replay or repeat samples."""
        if not self._hello_ok:
            return ProtocolError("sample before a valid hello")
        if self._last_seq is not None and sample.seq <= self._last_seq:
            return ProtocolError(f"sequence number {sample.seq} not above {self._last_seq}")
        self._last_seq = sample.seq
        return None

    # --- agentless mode ---------------------------------------------------------------
    async def _poll_agentless(self, conn: asyncssh.SSHClientConnection) -> None:
        """Run the agentless command on wall-clock ticks; the next run starts only after
        the last one finished (a slow host skips ticks rather than piling runs up)."""
        interval_s = self.ctx.polling.interval_s
        timeout_s = max(self.ctx.polling.down_after_s, interval_s)
        commands = self.ctx.commands
        seq = 0
        self._hello_ok, self._last_seq = False, None
        while True:
            now = self.ctx.clock()
            tick_ts = (math.floor(now / interval_s) + 1) * interval_s
            await asyncio.sleep(tick_ts - now)
            try:
                async with asyncio.timeout(timeout_s):
                    stdout, stderr, exit_status = await _run_capped(
                        conn, commands.agentless_command, self.budget
                    )
            except TimeoutError:
                raise ConnectFailure(
                    TIMEOUT, f"agentless command ran over {timeout_s:g} s"
                ) from None
            except OverBudget as exc:
                raise ConnectFailure(OVER_BUDGET, f"agentless output: {exc}") from None
            if not stdout.strip() and exit_status:
                last = (stderr.strip().splitlines() or [""])[-1][:200]
                self._apply(AgentError(ts=tick_ts, message=f"exit {exit_status}: {last}"))
                continue
            if not self._hello_ok:  # inventory and host facts, from the same run
                self._apply(_parse(partial(commands.parse_agentless_hello, stdout, tick_ts)))
            message = _parse(partial(commands.parse_agentless, stdout, seq, tick_ts))
            seq += 1
            if not self._apply(message):
                raise ConnectFailure(PROTOCOL_ERROR, self.host_state.last_protocol_error)

    async def _probe_rtt(self, conn: asyncssh.SSHClientConnection) -> None:
        """Keepalive round trips, with the console's own loop lateness during each taken
        out (`loop_lag`): a probe the console was too busy to time is skipped, not
        blamed on the host as a slow round trip or a loss."""
        monitor = self.ctx.state.loop_lag
        while True:
            if not measure_rtt_ms_supported(conn):
                return
            start = time.perf_counter()
            rtt_ms = await measure_rtt_ms(conn, timeout_s=self.ctx.polling.stale_after_s)
            if monitor is None:
                self.host_state.record_rtt_probe(rtt_ms)
            else:
                end = time.perf_counter()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await monitor.settle()
                lag_ms = monitor.lag_between_ms(start, end)
                honest = honest_rtt_ms(rtt_ms, lag_ms)
                if lag_ms > monitor.starved_ms or (rtt_ms is not None and honest is None):
                    self.host_state.skip_rtt_probe(lag_ms, rtt_ms)
                else:
                    self.host_state.record_rtt_probe(honest)
            await asyncio.sleep(self.ctx.rtt_probe_interval_s)


def request_wire(process: asyncssh.SSHClientProcess[bytes], version: int) -> None:
    """Ask the agent (or relay) on `process` for protocol `version` (`wire 2` on its
    stdin). An older one reads stdin only for EOF and goes on in v1; one that exited
    already has no stdin, which the stream's end reports, not this write."""
    with contextlib.suppress(OSError, asyncssh.Error):
        process.stdin.write(b"wire %d\n" % version)


def _parse(build: Callable[[], dict[str, object]]) -> Hello | Sample | AgentError | ProtocolError:
    """Agentless output through the same strict decoder as an agent's line."""
    try:
        return decode_line(msgspec.json.encode(build()))
    except ProtocolError as exc:
        return exc
    except Exception as exc:  # the parser met output it did not expect
        return ProtocolError(f"agentless output not understood: {type(exc).__name__}: {exc}")


AGENTLESS_MAX_BYTES = 1024 * 1024
"""nvidia-smi's CSV and the sysfs grep of an 8-GPU host are ~20 KiB; more is refused."""


async def _run_capped(
    conn: asyncssh.SSHClientConnection, command: str, budget: HostBudget
) -> tuple[str, str, int | None]:
    """`conn.run(command)` with bounded memory: asyncssh's `run` keeps all of a command's
    output, which a tenant's nvidia-smi could make endless. Output is read as it comes,
    charged to the host's byte budget, and refused past AGENTLESS_MAX_BYTES."""
    process = await conn.create_process(
        command, encoding=None, window=CHANNEL_WINDOW_BYTES, max_pktsize=CHANNEL_PACKET_BYTES
    )
    stderr_tail = bytearray()
    stderr_task = asyncio.create_task(_keep_tail(process.stderr, stderr_tail, budget))
    out = bytearray()
    try:
        while chunk := await process.stdout.read(65536):
            budget.charge_bytes(len(chunk))
            out += chunk
            if len(out) > AGENTLESS_MAX_BYTES:
                raise OverBudget(f"over {AGENTLESS_MAX_BYTES // 1024} KiB in one run")
        await process.wait_closed()
        await stderr_task
    finally:
        process.close()
        stderr_task.cancel()
    decode = partial(str, encoding="utf-8", errors="replace")
    return decode(bytes(out)), decode(bytes(stderr_tail)), process.exit_status


async def _keep_tail(
    reader: asyncssh.SSHReader[bytes],
    tail: bytearray,
    budget: HostBudget | None = None,
    on_over_budget: Callable[[str], None] | None = None,
) -> None:
    """Drain a channel's stderr keeping only its last bytes (why the agent died); stderr
    counts against the host's byte budget, and a stderr flood ends the channel."""
    try:
        while chunk := await reader.read(65536):
            tail += chunk if isinstance(chunk, bytes) else chunk.encode()
            del tail[:-STDERR_TAIL_BYTES]
            if budget is not None:
                try:
                    budget.charge_bytes(len(chunk))
                except OverBudget as exc:
                    if on_over_budget is not None:
                        on_over_budget(f"stderr: {exc}")
                    return
    except (asyncssh.Error, OSError):
        pass


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    try:
        async with asyncio.timeout(5.0):
            await conn.wait_closed()
    except (TimeoutError, asyncssh.Error, OSError):
        pass
