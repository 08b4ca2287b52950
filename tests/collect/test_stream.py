"""Line splitting and decoding of a host's channel, without the network: chunk boundaries,
the per-line cap and its resync, and the decoder's refusals."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from opsconsole.collect.stream import LineTooLong, read_lines, read_messages
from opsconsole.wire import AgentError, ProtocolError, Sample
from tests.support.collect import sample_line


class ChunkReader:
    """Gives back `data` in the chunk sizes listed, then EOF; records the largest read."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data = data
        self.sizes = list(sizes)

    async def read(self, n: int = -1) -> bytes:
        if not self.data:
            return b""
        size = min(n, self.sizes.pop(0) if self.sizes else len(self.data))
        size = max(size, 1)
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


async def collect(reader, **kwargs) -> list:
    return [item async for item in read_lines(reader, **kwargs)]


async def test_lines_split_across_chunks_and_crlf():
    data = b'{"a":1}\r\n{"b":2}\n\n{"c":3}\n'
    assert await collect(ChunkReader(data, [3, 5, 1, 100])) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


async def test_overlong_line_is_dropped_and_reading_resyncs_at_next_newline():
    long = b"x" * 5000
    data = b"ok1\n" + long + b"\nok2\n"
    out = await collect(ChunkReader(data, [700] * 20), max_line_bytes=1000, chunk_bytes=700)
    assert out == [b"ok1", LineTooLong(5000), b"ok2"]


async def test_final_line_without_newline_is_discarded():
    assert await collect(ChunkReader(b"whole\npartial", [100])) == [b"whole"]


async def test_reader_never_holds_more_than_cap_plus_chunk():
    """A peer that never sends a newline must not grow the console's memory."""

    class Endless:
        reads = 0

        async def read(self, n: int = -1) -> bytes:
            self.reads += 1
            return b"y" * n if self.reads < 200 else b""

    out = await collect(Endless(), max_line_bytes=10_000, chunk_bytes=4096)
    assert out == []  # no newline ever came: nothing yielded, nothing kept


@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b), max_size=20
    ),
    sizes=st.lists(st.integers(min_value=1, max_value=64), max_size=50),
)
async def test_any_chunking_gives_the_same_lines(lines, sizes):
    data = b"".join(line + b"\n" for line in lines)
    expected: list = []
    for line in lines:
        if len(line) > 30:
            expected.append(LineTooLong(len(line)))
        elif line.rstrip(b"\r").strip():
            expected.append(line.rstrip(b"\r"))
    out = await collect(ChunkReader(data, sizes), max_line_bytes=30, chunk_bytes=64)
    assert out == expected


async def test_messages_refuse_bad_lines_without_ending_the_stream():
    data = b"".join(
        [
            sample_line(1, 100.0),
            b"garbage\n",
            b'{"type":"error","ts":1,"message":"bad \xff utf8"}\n',
            b'{"type":"sample","seq":2,"ts":NaN}\n',
            json.dumps(
                {"type": "sample", "seq": 3, "ts": 1, "gpus": [{"index": 0, "temp_c": 1e999}]}
            ).encode()
            + b"\n",
            json.dumps(
                {
                    "type": "sample",
                    "seq": 4,
                    "ts": 1,
                    "eth": [{"name": "eth0", "counters": {"rx_errors": -1}}],
                }
            ).encode()
            + b"\n",
            json.dumps({"type": "error", "ts": 5, "message": "\x1b[2Jwiped"}).encode() + b"\n",
            sample_line(5, 101.0),
        ]
    )
    out = [m async for m in read_messages(ChunkReader(data, [17] * 500))]
    kinds = [type(m).__name__ for m in out]
    assert kinds == [
        "Sample",
        "ProtocolError",
        "ProtocolError",
        "ProtocolError",
        "ProtocolError",
        "ProtocolError",
        "AgentError",
        "Sample",
    ]
    assert "UTF-8" in str(out[2])
    assert "negative counter" in str(out[5])
    assert isinstance(out[6], AgentError) and out[6].message == "wiped"
    assert isinstance(out[0], Sample) and isinstance(out[-1], Sample)
    assert all(isinstance(m, ProtocolError) for m in out[1:6])
