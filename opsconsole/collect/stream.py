"""Lines from a host's agent channel, size-capped, then decoded by `protocol`.

Why not `readline()`: asyncssh's readline buffers until it sees a newline, so a host that
never sends one (broken agent, hostile peer) grows the console's memory without bound. Here
the channel is read in chunks in bytes mode; a line past the cap is dropped as it streams
in and reading resumes at the next newline. Bytes mode also means invalid UTF-8 is a
rejected line, never a decode exception in the reader.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from opsconsole.collect.budget import HostBudget
from opsconsole.wire import (
    MAX_LINE_BYTES,
    AgentError,
    Hello,
    ProtocolError,
    Sample,
    decode_line,
)

CHUNK_BYTES = 64 * 1024


class ByteReader(Protocol):
    async def read(self, n: int = -1) -> bytes | str: ...  # str: a text-mode channel


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line that was dropped for exceeding the cap; `length_bytes` is what was seen."""

    length_bytes: int


@dataclass(slots=True)
class ReadStats:
    """What the reader is doing, for the reason shown when a host stops sending lines:
    `long_line_bytes` > 0 while an over-long line is still streaming in."""

    bytes_read: int = 0
    long_line_bytes: int = 0


async def read_lines(
    reader: ByteReader,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    chunk_bytes: int = CHUNK_BYTES,
    budget: HostBudget | None = None,
    stats: ReadStats | None = None,
) -> AsyncIterator[bytes | LineTooLong]:
    """Yield each complete line (without its newline) or a LineTooLong note; stops at EOF.

    At most `max_line_bytes + chunk_bytes` are held at any time. A final line without a
    newline (the channel closed mid-write) is not a whole message and is discarded.
    With a `budget`, every chunk is charged to the host's byte budget (OverBudget ends
    the stream) and lines over its line budget are dropped (the budget counts them)
    without being split one by one: a flood costs one `bytes.count` per chunk."""
    partial = bytearray()
    skipped_bytes = 0  # > 0 while discarding the rest of an over-long line
    stats = stats if stats is not None else ReadStats()
    while True:
        chunk = await reader.read(chunk_bytes)
        if not chunk:
            return
        if isinstance(chunk, str):  # a channel opened in text mode by mistake
            chunk = chunk.encode("utf-8", "surrogateescape")
        stats.bytes_read += len(chunk)
        if budget is not None:
            budget.charge_bytes(len(chunk))  # raises OverBudget: the caller ends the channel
            if not budget.has_lines() and (last := chunk.rfind(b"\n")) >= 0:
                # Over the line budget: every line ending in this chunk is dropped whole.
                budget.drop_lines(chunk.count(b"\n"), len(partial) + skipped_bytes + last)
                partial.clear()
                skipped_bytes = 0
                chunk = chunk[last + 1 :]
                if not chunk:
                    continue
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            start = newline + 1
            if skipped_bytes:
                skipped_bytes += len(piece)
            elif len(partial) + len(piece) > max_line_bytes:
                skipped_bytes = len(partial) + len(piece)
                partial.clear()
            elif newline < 0:
                partial += piece
            else:
                line = bytes(partial) + piece if partial else piece
                partial.clear()
                line = line.rstrip(b"\r")
                if line.strip() and (budget is None or budget.admit_line(len(line))):
                    yield line
                continue
            stats.long_line_bytes = skipped_bytes
            if newline < 0:
                break
            if skipped_bytes:
                if budget is None or budget.admit_line(skipped_bytes):
                    yield LineTooLong(skipped_bytes)
                skipped_bytes = stats.long_line_bytes = 0


Message = Hello | Sample | AgentError


async def read_messages(
    reader: ByteReader,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    budget: HostBudget | None = None,
    stats: ReadStats | None = None,
    decode: Callable[[bytes], Message] = decode_line,
) -> AsyncIterator[Message | ProtocolError]:
    """Decoded messages from a channel; a refused line comes out as a ProtocolError value
    (not raised) so one bad line never ends the stream. `decode` is the channel's own
    (a `ChannelDecoder`'s, for the lean wire) or the stateless v1 `decode_line`."""
    lines = read_lines(reader, max_line_bytes=max_line_bytes, budget=budget, stats=stats)
    async for line in lines:
        if isinstance(line, LineTooLong):
            yield ProtocolError(
                f"line of {line.length_bytes} bytes exceeds the {max_line_bytes}-byte cap"
            )
            continue
        try:
            yield decode(line)
        except ProtocolError as exc:
            yield exc
