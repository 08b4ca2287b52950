"""A small TCP relay on loopback that misbehaves on demand, for fault tests: the poller
connects to the proxy, the proxy to a simulated host.

Why a relay and not the kernel: this kernel has no `netem`, and a relay in the test's own
event loop needs no privileges, never touches the real network, and can change its fault
while connections are open (a link that degrades under a live session is the case that
matters). Faults, switchable at any time:

* `latency_s` / `jitter_s`: every chunk waits latency ± jitter, each direction;
* `bandwidth_bps`: each direction capped to that many bytes per second;
* `blackhole`: new connections are accepted and never answered, open ones stop carrying
  data (a hung host or a firewall dropping mid-flow);
* `reset_mid_stream()`: the next chunk towards the poller is cut in half and both sides
  are reset (RST), so the poller's last line arrives torn;
* `drip_bps`: one byte at a time at that rate (1.0: one byte per second).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the peer sees 'connection reset', as when a
    middlebox or a crashed host drops the flow."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Relays 127.0.0.1:`port` to `target`; faults are attributes, changed at any time."""

    def __init__(self, target_host: str, target_port: int, *, seed: int = 0):
        self.target = (target_host, target_port)
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.bandwidth_bps: float | None = None
        self.drip_bps: float | None = None
        self.blackhole = False
        self.port = 0
        self.accepted = 0
        self._reset_next = False
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
            for task in link.tasks:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def clear(self) -> None:
        """Back to a clean link (open connections carry data again, unless reset)."""
        self.latency_s = self.jitter_s = 0.0
        self.bandwidth_bps = self.drip_bps = None
        self.blackhole = False
        self._reset_next = False

    def reset_mid_stream(self) -> None:
        self._reset_next = True

    def drop_all(self) -> None:
        """Reset every open connection now."""
        for link in list(self._links):
            link.reset()

    @property
    def open_links(self) -> int:
        return len(self._links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            if self.blackhole:  # accepted, never answered: read and discard until closed
                while await reader.read(CHUNK):
                    pass
                return
            try:
                up_reader, link.upstream = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(writer)
                return
            link.tasks = [
                asyncio.ensure_future(
                    self._pump(reader, link.upstream, link, towards_poller=False)
                ),
                asyncio.ensure_future(self._pump(up_reader, writer, link, towards_poller=True)),
            ]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for task in link.tasks:
                task.cancel()
            for w in (writer, link.upstream):
                if w is not None:
                    w.close()
            self._links.discard(link)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        towards_poller: bool,
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if self.blackhole:
                    continue  # swallowed
                if towards_poller and self._reset_next:
                    self._reset_next = False
                    writer.write(chunk[: max(1, len(chunk) // 2)])
                    with contextlib.suppress(OSError):
                        await writer.drain()
                    link.reset()
                    return
                delay_s = self.latency_s + self._rng.uniform(-self.jitter_s, self.jitter_s)
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                await self._send(writer, chunk)
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

    async def _send(self, writer: asyncio.StreamWriter, chunk: bytes) -> None:
        """Write a chunk at the pace the faults allow, re-checked per slice so clearing a
        fault frees a connection at once."""
        view = memoryview(chunk)
        while view:
            if self.blackhole:
                return
            drip, cap = self.drip_bps, self.bandwidth_bps
            if drip:
                size, pause_s = 1, 1.0 / drip
            elif cap:
                size = max(1, int(cap / 10))  # a tenth of a second per slice
                pause_s = min(size, len(view)) / cap
            else:
                size, pause_s = len(view), 0.0
            writer.write(bytes(view[:size]))
            view = view[size:]
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
