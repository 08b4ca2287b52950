"""Site relays: a collector next to a site's hosts that serves their merged stream over SSH.

Why: one console follows about a thousand hosts directly; several sites, a WAN between
them, or 10,000 hosts need the work split, as Zabbix proxies and Prometheus federation
split it. A relay (`opsconsole poll --relay --site SITE`) polls its site's hosts exactly as
the console would and writes each host's hellos, samples and connection changes to its
stdout, wrapped with the host's name. The console runs that command over SSH on the
relay host (host key checked, like any host) and applies each host's messages to that
host's own state, so hosts behind a relay look polled directly; the relay's own hello and
heartbeat samples make a row of its own. Alerts, leases and the store stay with the
console: the relay keeps nothing.

Wire: one JSON object per line, the agent protocol's framing and line cap.
  {"type": "hello", ...} / {"type": "sample", ...}   the relay itself (no GPUs, its load)
  {"type": "host", "host": NAME, "msg": {...}}        a host's hello, sample or error line
  {"type": "host-status", "host": NAME, "connected": BOOL, "connect_failed": BOOL,
   "reason": "...", "detail": "..."}                  a host's connection, as the relay sees it

A console that reads the lean wire writes `wire 2` on the relay's stdin; from then on
each host's samples go as v2 (a hello with the host's schema, a full sample, then only
changes: opsconsole/agent/lean.py), encoded per host by the relay. An older relay ignores
the request and goes on in v1, which the console still reads; an older console never asks.

A newer console also writes `batch N` (N >= 1): the relay then holds its hosts' news and
writes it once per interval as one line, `{"type": "batch", "items": [envelope, ...]}`
(the envelopes above, in the order they happened), and forwards each host's sample only
every N intervals (the latest one, with every event since the last one forwarded), at
once when it carries events or changes the host's health (status, reason, driver, GPU
count or a GPU's state). The console then pays SSH, framing and one JSON parse per site
and interval, not per host line, and decodes a host's values every N intervals. An older
relay ignores the request (it stays one line per message); an older console never asks
(the relay does not batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncssh
import msgspec

from opsconsole.agent.lean import NVLINK_FIELDS, LeanEncoder
from opsconsole.collect.commands import HostCommands
from opsconsole.collect.reasons import AGENT_ERROR, CONNECTION_LOST, RELAY_DOWN, TIMEOUT
from opsconsole.collect.session import HostSession, SessionContext, request_wire
from opsconsole.collect.ssh import ConnectFailure
from opsconsole.collect.state import Change, FleetState, HostState
from opsconsole.collect.stream import LineTooLong, read_lines
from opsconsole.config import Fleet, PollingSettings
from opsconsole.errors import ConfigError
from opsconsole.wire import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    WIRE_VERSION,
    AgentError,
    GpuEvent,
    GpuSample,
    Hello,
    HostFacts,
    Load,
    ProtocolError,
    Sample,
    decode_line,
)
from opsconsole.wire.text import clean_text

log = logging.getLogger("opsconsole.collect")


# --- which hosts go through which relay ---------------------------------------------
def relay_routes(fleet: Fleet) -> dict[str, list[str]]:
    """Relay host name -> the hosts it serves: its site's hosts that are not relays.
    A site whose relay is not in this fleet (the relay's own config) is polled directly."""
    names = {host.name for host in fleet.hosts}
    routes: dict[str, list[str]] = {}
    for site in fleet.config.sites:
        if site.relay is not None and site.relay in names:
            routes[site.relay] = [
                h.name for h in fleet.hosts if h.site == site.name and h.mode != "relay"
            ]
    return routes


def relay_site(fleet: Fleet, relay_name: str) -> str:
    return next(site.name for site in fleet.config.sites if site.relay == relay_name)


def site_fleet(fleet: Fleet, site: str) -> Fleet:
    """What a relay for `site` polls: the site's hosts, relays left out."""
    if site not in fleet.sites:
        known = ", ".join(sorted(fleet.sites)) or "none"
        raise ConfigError(f"{fleet.path}: --site: unknown site {site!r} (sites: {known})")
    hosts = [h for h in fleet.hosts if h.site == site and h.mode != "relay"]
    return Fleet(fleet.config, fleet.path, hosts, fleet.racks)


def plan_sessions(
    state: FleetState, ctx: SessionContext, fleet: Fleet
) -> tuple[dict[str, HostSession], list[HostSession]]:
    """Every host's session, and those that run a task of their own: direct hosts and
    relays (a host behind a relay is fed by its relay's session)."""
    sessions = {name: HostSession(hs, ctx) for name, hs in state.hosts.items()}
    behind: set[str] = set()
    for relay, members in relay_routes(fleet).items():
        if relay not in state.hosts:
            continue
        fed = {m: sessions[m] for m in members if m in sessions}
        sessions[relay] = RelaySession(state.hosts[relay], ctx, fed, relay_site(fleet, relay))
        behind.update(fed)
    return sessions, [s for name, s in sessions.items() if name not in behind]


# --- the console's side: one relay's channel ----------------------------------------
class HostLine(msgspec.Struct, tag="host", tag_field="type"):
    host: str
    msg: msgspec.Raw


class HostStatus(msgspec.Struct, tag="host-status", tag_field="type"):
    host: str
    connected: bool
    connect_failed: bool = False
    reason: str = ""
    detail: str = ""


class Batch(msgspec.Struct, tag="batch", tag_field="type"):
    """One relay interval's news for its whole site (a console that asked `batch N`)."""

    items: list[HostLine | HostStatus]


_envelope = msgspec.json.Decoder(Batch | HostLine | HostStatus | Hello | Sample | AgentError)

RELAY_MAX_LINE_BYTES = 4 * MAX_LINE_BYTES
"""A relay's line cap on the console: a batch holds many hosts' lines. The relay closes a
batch line past BATCH_SPLIT_BYTES, so one line is at most that plus one host line."""
BATCH_SPLIT_BYTES = 2 * MAX_LINE_BYTES
MAX_RELAY_EVERY = 30
"""The longest a relay may hold a host's sample, in intervals (a full minute at 2 s)."""


class RelaySession(HostSession):
    """The console's session with one relay: the relay's own row plus, for every host
    behind it, that host's session fed from the relay's lines."""

    def __init__(
        self,
        host_state: HostState,
        ctx: SessionContext,
        members: dict[str, HostSession],
        site: str,
    ) -> None:
        super().__init__(host_state, ctx)
        self.members = members
        self.site = site
        self.relayed_lines = 0

    async def _stream_agent(self, conn: asyncssh.SSHClientConnection) -> None:
        command = self.host.relay_command.replace("{site}", self.site)
        process = await conn.create_process(command, encoding=None)
        if self.ctx.wire >= WIRE_VERSION:
            request_wire(process, self.ctx.wire)
        every = relay_every(self.ctx.relay_every, self.ctx.polling)
        if every:
            request_batch(process, every)
        self._hello_ok, self._last_seq = False, None
        for member in self.members.values():
            member.new_channel()
        silence_s = self.ctx.polling.down_after_s
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(silence_s) as window:
                lines = read_lines(process.stdout, max_line_bytes=RELAY_MAX_LINE_BYTES)
                async for line in lines:
                    window.reschedule(loop.time() + silence_s)
                    if not self._dispatch(line):
                        raise ConnectFailure(
                            "protocol error", f"relay: {self.host_state.last_protocol_error}"
                        )
        except TimeoutError:
            raise ConnectFailure(TIMEOUT, f"relay sent no line for {silence_s:g} s") from None
        finally:
            process.close()
        if conn.is_closed():
            raise ConnectFailure(CONNECTION_LOST, "connection closed")
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            async with asyncio.timeout(2.0):
                await process.wait_closed()
        raise ConnectFailure(AGENT_ERROR, f"relay exited with status {process.exit_status}")

    def _dispatch(self, line: bytes | LineTooLong) -> bool:
        if isinstance(line, LineTooLong):
            return self._apply(ProtocolError(f"line of {line.length_bytes} bytes over the cap"))
        try:
            envelope = _envelope.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            return self._apply(ProtocolError(clean_text(str(exc), 200)))
        if isinstance(envelope, Batch):
            return all(self._forward(item) for item in envelope.items)
        if not isinstance(envelope, HostLine | HostStatus):
            if len(line) > MAX_LINE_BYTES:
                return self._apply(ProtocolError(f"line of {len(line)} bytes over the cap"))
            try:  # the relay's own hello or heartbeat: checked as any agent's line
                return self._apply(decode_line(line))
            except ProtocolError as exc:
                return self._apply(exc)
        if len(line) > MAX_LINE_BYTES:  # one host's line: the agent protocol's cap
            return self._apply(ProtocolError(f"line of {len(line)} bytes over the cap"))
        return self._forward(envelope)

    def _forward(self, envelope: HostLine | HostStatus) -> bool:
        """One host's line or status, to that host's session; False when the relay
        names a host that is not behind it (a fault of the relay's, on its row)."""
        member = self.members.get(envelope.host)
        if member is None:
            name = clean_text(envelope.host, 80)
            return self._apply(ProtocolError(f"relay sent host {name!r}, not one behind it"))
        self.relayed_lines += 1
        if isinstance(envelope, HostStatus):
            self._member_status(member, envelope)
            return True
        try:
            message: Hello | Sample | AgentError | ProtocolError = member.decoder.decode(
                bytes(envelope.msg)
            )
        except ProtocolError as exc:
            message = exc
        member.apply(message)  # a host's bad lines are its own, counted on its row
        return True

    def _member_status(self, member: HostSession, status: HostStatus) -> None:
        hs = member.host_state
        if status.connected:
            if not hs.connected:
                hs.mark_connected(self.ctx.clock())
                self.ctx.state.changed(hs, "connection")
            return
        reason = clean_text(status.reason, 40) or "disconnected"
        detail = clean_text(status.detail, 200)
        via = f"via relay {self.host.name}"
        failure = ConnectFailure(reason, f"{detail} ({via})" if detail else via)
        member.failed(failure, connect=status.connect_failed)

    def _failed(self, failure: ConnectFailure, connect: bool) -> None:
        """The relay's failure is every member's, with the relay named: a lost channel
        lets their readings age as a direct host's would, a failed connect is down now."""
        super()._failed(failure, connect)
        for member in self.members.values():
            member.failed(ConnectFailure(RELAY_DOWN, f"{self.host.name}: {failure}"), connect)


# --- the relay's side: poll a site, serve its stream ---------------------------------
class LineSink(Protocol):
    """Where relay lines go: asyncio's StreamWriter (stdout) or an SSH channel's stdout."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


_encode = msgspec.json.Encoder().encode


class LineSource(Protocol):
    """Where a relay's requests come from: its stdin (asyncio's or an SSH channel's)."""

    async def readline(self) -> bytes: ...


class RelayFeed:
    """A FleetState listener on the relay: each host's news as one relay line."""

    def __init__(self, out: LineSink):
        self.out = out
        self.wire = PROTOCOL_VERSION
        self._sent_sample: dict[str, int] = {}
        self._sent_status: dict[str, tuple[bool, bool, str, str]] = {}
        self._sent_error: dict[str, str] = {}
        self._lean: dict[str, LeanEncoder] = {}
        self.lines = 0
        self.bytes = 0
        self.every = 0
        """0: one line per message (an older console); N: batched, a host's sample every
        N intervals (`batch N`)."""
        self._items: list[bytes] = []
        self._held: dict[str, HostState] = {}  # hosts with a sample not yet forwarded
        self._urgent: set[str] = set()
        self._events: dict[str, list[GpuEvent]] = {}
        self._slot: dict[str, int] = {}  # spreads hosts over the N intervals
        self._health_sent: dict[str, tuple[object, ...]] = {}
        self._ticks = 0

    def request(self, line: bytes) -> None:
        """A console's request: `wire 2` switches every host to the lean wire (each
        starts over with a hello and a full sample). Anything else is ignored."""
        words = line.split()
        if words == [b"wire", b"%d" % WIRE_VERSION]:
            self.wire = WIRE_VERSION
            self._lean.clear()
        elif len(words) == 2 and words[0] == b"batch" and words[1].isdigit():
            self.every = min(int(words[1]), MAX_RELAY_EVERY)

    def _write(self, data: bytes) -> None:
        """One envelope (no newline): a line of its own, or an item of the next batch."""
        if self.every:
            self._items.append(data)
            return
        self.lines += 1
        self.bytes += len(data) + 1
        self.out.write(data + b"\n")

    def _host_line(self, name: str, message: Hello | Sample | AgentError) -> None:
        self._write(b'{"type":"host","host":%s,"msg":%s}' % (_encode(name), _encode(message)))

    def __call__(self, hs: HostState, change: Change) -> None:
        name = hs.name
        batched = self.every > 0
        if batched and change != "sample" and name in self._held:
            self._release(name)  # what came before this news goes before it
        if change in ("connection", "status"):
            key = (hs.connected, hs.connect_failed, hs.reason, hs.detail)
            if self._sent_status.get(name) != key and (hs.connected or hs.reason):
                self._sent_status[name] = key
                status = HostStatus(name, hs.connected, hs.connect_failed, hs.reason, hs.detail)
                self._write(_encode(status))
        lean = self.wire == WIRE_VERSION
        if change == "hello" and hs.hello is not None:
            if lean:
                self._lean.pop(name, None)  # its next sample goes with a hello
            else:  # as v1 (the host may speak v2 to us): this console asked for nothing
                self._host_line(
                    name, msgspec.structs.replace(hs.hello, proto=PROTOCOL_VERSION, wire=None)
                )
            if batched:
                self._urgent.add(name)
        if hs.sample is not None and self._sent_sample.get(name) != hs.samples_received:
            self._sent_sample[name] = hs.samples_received
            if batched:  # held until its interval comes; its events kept till then
                self._held[name] = hs
                if hs.sample.events:
                    self._events.setdefault(name, []).extend(hs.sample.events)
                if hs.sample.events or _health(hs) != self._health_sent.get(name):
                    self._urgent.add(name)
            elif lean:
                self._lean_sample(name, hs.hello, hs.sample)
            else:
                self._host_line(name, hs.sample)
        if change == "error" and hs.agent_error and self._sent_error.get(name) != hs.agent_error:
            self._sent_error[name] = hs.agent_error
            self._host_line(name, AgentError(ts=time.time(), message=hs.agent_error))

    def _release(self, name: str) -> None:
        """Forward a held sample now, with every event held since the last one."""
        hs = self._held.pop(name)
        self._urgent.discard(name)
        sample = hs.sample
        if sample is None:
            return
        self._health_sent[name] = _health(hs)
        events = self._events.pop(name, None)
        if events is not None and events is not sample.events:
            sample = msgspec.structs.replace(sample, events=events)
        if self.wire == WIRE_VERSION:
            self._lean_sample(name, hs.hello, sample)
        else:
            self._host_line(name, sample)

    def flush(self) -> None:
        """Once per interval (batched): forward the samples due (each host every N
        intervals, spread over them; at once when urgent) and write the interval's news
        as batch lines, each closed past BATCH_SPLIT_BYTES."""
        if not self.every:
            return
        self._ticks += 1
        for name in list(self._held):
            slot = self._slot.setdefault(name, len(self._slot))
            if name in self._urgent or (self._ticks + slot) % self.every == 0:
                self._release(name)
        items, self._items = self._items, []
        start, size = 0, 0
        for end, item in enumerate(items, 1):
            size += len(item) + 1
            if size > BATCH_SPLIT_BYTES or end == len(items):
                self._batch_line(items[start:end])
                start, size = end, 0

    def _batch_line(self, items: list[bytes]) -> None:
        data = b'{"type":"batch","items":[%s]}\n' % b",".join(items)
        self.lines += 1
        self.bytes += len(data)
        self.out.write(data)

    def _lean_sample(self, name: str, hello: Hello | None, sample: Sample) -> None:
        if hello is None:
            return
        encoder = self._lean.get(name)
        fresh = encoder is None
        if encoder is None:
            encoder = self._lean[name] = LeanEncoder()
        changed, message = encoder.encode(sample_dict(sample))
        if fresh or changed:
            lean_hello = msgspec.to_builtins(hello)
            lean_hello.update(proto=WIRE_VERSION, wire=encoder.schema)
            self._write(
                b'{"type":"host","host":%s,"msg":%s}' % (_encode(name), _encode(lean_hello))
            )
        self._write(b'{"type":"host","host":%s,"msg":%s}' % (_encode(name), _encode(message)))


def _health(hs: HostState) -> tuple[object, ...]:
    """What makes a held sample urgent when it changes: the host's status and reason,
    its driver, GPU count and each GPU's state (a GPU lost, the driver hung)."""
    sample = hs.sample
    if sample is None:
        return (hs.status, hs.reason)
    states = tuple(gpu.state for gpu in sample.gpus)
    return (hs.status, hs.reason, sample.driver, sample.gpu_count, states)


_GPU_COLUMNS = tuple(
    f for f in GpuSample.__struct_fields__ if f not in ("index", "nvlink", "mig", "processes", "na")
)


def sample_dict(sample: Sample) -> dict[str, Any]:
    """A decoded sample in the agent's dict shape, every field present (so the lean
    encoder's schema holds still while values come and go)."""
    gpus = []
    for gpu in sample.gpus:
        row: dict[str, Any] = {f: getattr(gpu, f) for f in _GPU_COLUMNS}
        row["index"] = gpu.index
        links = gpu.nvlink
        if links.up:
            row["nvlink"] = {f: getattr(links, f) for f in NVLINK_FIELDS}
        row["mig"] = msgspec.to_builtins(gpu.mig)
        row["processes"] = msgspec.to_builtins(gpu.processes)
        row["na"] = gpu.na
        gpus.append(row)
    return {
        "seq": sample.seq,
        "ts": sample.ts,
        "driver": sample.driver,
        "driver_detail": sample.driver_detail,
        "gpu_count": sample.gpu_count,
        "gpus": gpus,
        "events": msgspec.to_builtins(sample.events),
        "ib": [
            {
                "device": p.device,
                "port": p.port,
                "state": p.state,
                "phys_state": p.phys_state,
                "rate_gbps": p.rate_gbps,
                "link_layer": p.link_layer,
                "counters": p.counters,
            }
            for p in sample.ib
        ],
        "eth": [
            {
                "name": i.name,
                "operstate": i.operstate,
                "speed_mbps": i.speed_mbps,
                "counters": i.counters,
            }
            for i in sample.eth
        ],
        "load": msgspec.to_builtins(sample.load),
        "collect_ms": sample.collect_ms,
    }


def relay_hello(now_ts: float) -> Hello:
    return Hello(
        proto=PROTOCOL_VERSION,
        agent_version="relay",
        mode="none",
        ts=now_ts,
        host=HostFacts(kernel=platform.release(), python=platform.python_version()),
        capabilities=["relay"],
    )


async def serve_relay(
    fleet: Fleet,
    site: str,
    out: LineSink,
    until: Awaitable[object] | None = None,
    *,
    requests: LineSource | None = None,
    clock: Callable[[], float] = time.time,
    commands: HostCommands | None = None,
    wrap: Callable[[Any], Any] | None = None,
) -> RelayFeed:
    """Poll `site`'s hosts and write their merged stream to `out` until `until` is done
    or `requests` (the relay's stdin: the console's `wire 2`) reaches EOF, the console
    having closed the channel. Returns the feed (its counts). `wrap` may put the poller
    in a runner with the same start/stop (exporter plugins)."""
    from opsconsole.collect.poller import Poller  # the poller builds relay sessions too

    fleet = site_fleet(fleet, site)
    state = FleetState.from_fleet(fleet, now_ts=clock())
    feed = RelayFeed(out)
    ends: list[asyncio.Future[Any]] = []
    if until is not None:
        ends.append(asyncio.ensure_future(until))
    if requests is not None:
        ends.append(asyncio.ensure_future(_read_requests(requests, feed)))
    if not ends:
        raise ValueError("serve_relay needs `until`, `requests` or both")
    interval_s = fleet.config.polling.interval_s
    out.write(_encode(relay_hello(clock())) + b"\n")
    poller: Any = Poller(fleet, state, clock=clock, on_update=feed, commands=commands)
    if wrap is not None:
        poller = wrap(poller)
    stop: asyncio.Future[Any] = asyncio.ensure_future(
        asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    )
    await poller.start()
    seq = 0
    try:
        while not stop.done():
            started = time.process_time()
            feed.flush()
            load = Load(*os.getloadavg())
            heartbeat = Sample(seq=seq, ts=clock(), gpu_count=0, load=load)
            heartbeat.collect_ms = (time.process_time() - started) * 1000.0
            out.write(_encode(heartbeat) + b"\n")
            seq += 1
            await out.drain()
            await asyncio.wait([stop], timeout=_to_flush(clock(), interval_s))
    except (OSError, asyncssh.Error) as exc:  # the console went away mid-write
        log.info("relay for %s: %s", site, exc)
    finally:
        stop.cancel()
        for end in ends:
            end.cancel()
        await poller.stop()
    return feed


FLUSH_AFTER_TICK = 0.25
"""When in an interval a relay writes its batch: agents sample on the wall-clock ticks,
and a quarter interval later (0.5 s at 2 s) that tick's samples have reached the relay."""


def _to_flush(now_ts: float, interval_s: float) -> float:
    """Seconds to the next flush point (FLUSH_AFTER_TICK into a wall-clock interval)."""
    phase = (now_ts - interval_s * FLUSH_AFTER_TICK) % interval_s
    return interval_s - phase if phase > 1e-3 else interval_s


def relay_every(asked: int, polling: PollingSettings) -> int:
    """The `batch N` a console asks of its relays: what it was given, but short enough
    that a host behind a relay never ages into `stale` between two forwarded samples."""
    if asked <= 0:
        return 0
    fits = math.floor(polling.stale_after_s / polling.interval_s) - 1
    return max(1, min(asked, fits, MAX_RELAY_EVERY))


def request_batch(process: asyncssh.SSHClientProcess[bytes], every: int) -> None:
    """Ask a relay for batch lines (`batch N` on its stdin); an older relay ignores it."""
    with contextlib.suppress(OSError, asyncssh.Error):
        process.stdin.write(b"batch %d\n" % every)


async def _read_requests(requests: LineSource, feed: RelayFeed) -> None:
    """The console's requests, until EOF (the console closed the channel)."""
    with contextlib.suppress(OSError, asyncssh.Error):
        while line := await requests.readline():
            feed.request(line)
