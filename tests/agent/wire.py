"""What the console would make of an agent message: encode it, decode it strictly."""

from __future__ import annotations

from opsconsole.agent.agent import encode
from opsconsole.wire import decode_line


def roundtrip(message: dict):
    """The console's typed reading of `message`; raises ProtocolError if it would refuse it."""
    return decode_line(encode(message).encode("utf-8"))
