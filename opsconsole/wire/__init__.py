"""The agent wire protocol: the contract between the agent (which writes it), the
collector (which reads it from hosts and relays) and the store (which keeps it).

A neutral package below all three, so none of them owns the others' types. The agent
itself stays standard-library only and does not import this package; its encoder is
checked against this decoder by the tests. See ARCHITECTURE.md, "Agent protocol".
"""

from opsconsole.wire.lean import ChannelDecoder, Plan, make_plan
from opsconsole.wire.messages import (
    MAX_LINE_BYTES,
    MAX_NVLINKS,
    PROTOCOL_VERSION,
    WIRE_VERSION,
    AgentError,
    EthInterface,
    GpuEvent,
    GpuInventory,
    GpuProcess,
    GpuSample,
    Hello,
    HostFacts,
    IbPort,
    LeanSample,
    Load,
    Message,
    MigInstance,
    NvLinks,
    ProtocolError,
    Sample,
    WireSchema,
    decode_line,
)

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_NVLINKS",
    "PROTOCOL_VERSION",
    "WIRE_VERSION",
    "AgentError",
    "ChannelDecoder",
    "EthInterface",
    "GpuEvent",
    "GpuInventory",
    "GpuProcess",
    "GpuSample",
    "Hello",
    "HostFacts",
    "IbPort",
    "LeanSample",
    "Load",
    "Message",
    "MigInstance",
    "NvLinks",
    "Plan",
    "ProtocolError",
    "Sample",
    "WireSchema",
    "decode_line",
    "make_plan",
]
