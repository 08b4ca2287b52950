"""The agent wire protocol (version 1), as the console decodes it.

The agent (standard library only) writes JSON lines; this module is the strict, typed
reading of them. Every line is size-capped before decoding, unknown fields are tolerated
(newer agents may add some), wrong types are rejected, and every string that reaches the
screen has control characters and terminal escapes removed. See ARCHITECTURE.md,
"Agent protocol".
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec

from opsconsole.wire.text import clean_text

PROTOCOL_VERSION = 1
WIRE_VERSION = 2
"""The lean wire (opsconsole.wire.lean); spoken only on a channel whose console asked."""
PROTOCOL_VERSIONS = (PROTOCOL_VERSION, WIRE_VERSION)
MAX_LINE_BYTES = 256 * 1024
"""No honest sample of an 8-GPU host comes near this; anything longer is dropped."""

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
"""Indices, sequence numbers and error counters: a negative one is a broken sender."""
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
"""A GPU reading (percent, MiB, degrees C, W, MHz): never negative. Checked while decoding,
in C: a sample carries ~200 of them and is decoded for every host every interval."""


class ProtocolError(Exception):
    """A line from a host that the console refuses; the message names the problem."""


class Base(msgspec.Struct, omit_defaults=True, gc=False):
    """gc=False: wire messages are acyclic data (fields hold numbers, text, lists and
    other messages, never a parent), so the cyclic collector need not track them; at
    1,000 hosts its full collections were more than half of the poller's CPU (bench/poll.py
    gc/poll column)."""


class HostFacts(Base):
    hostname: str = ""
    kernel: str = ""
    os: str = ""
    python: str = ""
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_version: str | None = None


class GpuInventory(Base):
    """Slow-changing facts, sent in the hello line and refreshed rarely."""

    index: NonNegative
    uuid: str | None = None
    name: str | None = None
    serial: str | None = None
    pci_bus_id: str | None = None
    vbios: str | None = None
    memory_total_mib: float | None = None


class WireSchema(Base):
    """A v2 hello's static half of every sample that follows (see opsconsole.wire.lean):
    GPU rows and field names, NVLinks per GPU, IB ports and Ethernet interfaces with
    their counter names, and the agent's deadbands. Sizes are checked by the decoder."""

    v: int = WIRE_VERSION
    full_every: NonNegative = 30
    gpus: list[NonNegative] = []
    gpu_fields: list[str] = []
    nvlinks: list[NonNegative] = []
    nvlink_fields: list[str] = []
    ib: list[tuple[str, NonNegative]] = []
    ib_fields: list[str] = []
    ib_counters: list[list[str]] = []
    eth: list[str] = []
    eth_fields: list[str] = []
    eth_counters: list[list[str]] = []
    deadband: dict[str, float] = {}


class Hello(Base, tag="hello", tag_field="type"):
    proto: int
    agent_version: str
    mode: Literal["nvml", "nvidia-smi", "agentless", "none"]
    ts: float
    host: HostFacts = msgspec.field(default_factory=HostFacts)
    capabilities: list[str] = []
    gpus: list[GpuInventory] = []
    wire: WireSchema | None = None
    """Protocol 2 only: the columns its samples carry."""


MAX_NVLINKS = 64
"""Links per GPU (NVML knows 18 today); a longer NVLink list is a broken sender."""

LinkFlags = Annotated[list[bool | None], msgspec.Meta(max_length=MAX_NVLINKS)]
LinkCounters = Annotated[list[NonNegative | None], msgspec.Meta(max_length=MAX_NVLINKS)]


class NvLinks(Base):
    """A GPU's NVLinks column-wise: position in each list = link number, null = not read
    or not supported (never 0). Every list has the same length; all are empty (or the
    whole object absent) for a GPU without NVLink. Counters are per link, never summed."""

    up: LinkFlags = []
    replay_errors: LinkCounters = []
    recovery_errors: LinkCounters = []
    crc_flit_errors: LinkCounters = []
    crc_data_errors: LinkCounters = []


class MigInstance(Base):
    gi: NonNegative
    ci: NonNegative | None = None
    uuid: str | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None


class GpuProcess(Base):
    pid: NonNegative
    mem_used_mib: float | None = None
    name: str | None = None


class GpuSample(Base):
    """One GPU's fast readings. A None value's reason is in `na` under the field's name:
    "not_supported", "lost", "unresponsive" or "error: <text>"."""

    index: NonNegative
    uuid: str | None = None
    state: Literal["ok", "lost", "unresponsive", "error"] = "ok"
    util_gpu_pct: NonNegativeFloat | None = None
    util_mem_pct: NonNegativeFloat | None = None
    mem_used_mib: NonNegativeFloat | None = None
    mem_total_mib: NonNegativeFloat | None = None
    temp_c: NonNegativeFloat | None = None
    power_w: NonNegativeFloat | None = None
    power_limit_w: NonNegativeFloat | None = None
    sm_clock_mhz: NonNegativeFloat | None = None
    mem_clock_mhz: NonNegativeFloat | None = None
    clock_event_reasons: NonNegative | None = None
    ecc_volatile_corrected: NonNegative | None = None
    ecc_volatile_uncorrected: NonNegative | None = None
    ecc_aggregate_corrected: NonNegative | None = None
    ecc_aggregate_uncorrected: NonNegative | None = None
    remap_corrected: NonNegative | None = None
    remap_uncorrected: NonNegative | None = None
    remap_pending: bool | None = None
    remap_failed: bool | None = None
    retired_pages_sbe: NonNegative | None = None
    retired_pages_dbe: NonNegative | None = None
    retired_pages_pending: bool | None = None
    pcie_replay: NonNegative | None = None
    fan_pct: NonNegativeFloat | None = None
    recovery_action: NonNegative | None = None
    # Added with issue 12; absent (None) from older agents.
    pci_bus_id: str | None = None
    pcie_gen: NonNegative | None = None
    pcie_gen_max: NonNegative | None = None
    pcie_width: NonNegative | None = None
    pcie_width_max: NonNegative | None = None
    pstate: NonNegative | None = None  # 0 (P0, full speed) to 15
    temp_slowdown_c: NonNegativeFloat | None = None
    temp_shutdown_c: NonNegativeFloat | None = None
    energy_mj: NonNegative | None = None  # total since the driver loaded, in millijoules
    enc_util_pct: NonNegativeFloat | None = None
    dec_util_pct: NonNegativeFloat | None = None
    nvlink: NvLinks = msgspec.field(default_factory=NvLinks)
    mig: list[MigInstance] = []
    processes: list[GpuProcess] = []
    na: dict[str, str] = {}


class GpuEvent(Base):
    """An XID (GPU) or SXID (NVSwitch) event. `gpu` is the index when known; `pci_bus_id`
    is what kernel log lines carry."""

    kind: Literal["xid", "sxid"]
    code: NonNegative
    ts: float
    source: Literal["nvml", "kmsg", "journal", "dmesg"]
    gpu: NonNegative | None = None
    pci_bus_id: str | None = None
    message: str = ""


class IbPort(Base):
    device: str
    port: NonNegative
    state: str | None = None  # "ACTIVE", "DOWN", "INIT", "ARMED"
    phys_state: str | None = None  # "LinkUp", "Polling", "Disabled", ...
    rate_gbps: float | None = None
    link_layer: str | None = None
    counters: dict[str, int] = {}


class EthInterface(Base):
    name: str
    operstate: str | None = None
    speed_mbps: int | None = None
    counters: dict[str, int] = {}


class Load(Base):
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None


class Sample(Base, tag="sample", tag_field="type"):
    seq: NonNegative
    ts: float
    driver: Literal["ok", "unresponsive", "unavailable"] = "ok"
    driver_detail: str = ""
    gpu_count: NonNegative | None = None
    gpus: list[GpuSample] = []
    events: list[GpuEvent] = []
    ib: list[IbPort] = []
    eth: list[EthInterface] = []
    load: Load = msgspec.field(default_factory=Load)
    collect_ms: float | None = None


class AgentError(Base, tag="error", tag_field="type"):
    """The agent's own report of something it cannot do (bad arguments, fatal fault)."""

    ts: float
    message: str


Scalar = int | float | str | bool | None
"""One value of a v2 column: its kind is checked against the field's own type."""


class LeanSample(Base, tag="s", tag_field="type"):
    """A v2 sample as it arrives: values only, columnar (see opsconsole.wire.lean).
    UNSET: not sent because unchanged since the last sample."""

    seq: NonNegative
    ts: float
    f: list[list[Scalar]] | None = None
    d: list[list[Scalar]] = []
    driver: Literal["ok", "unresponsive", "unavailable"] | msgspec.UnsetType = msgspec.UNSET
    driver_detail: str | msgspec.UnsetType = msgspec.UNSET
    gpu_count: NonNegative | msgspec.UnsetType | None = msgspec.UNSET
    load: Load | msgspec.UnsetType | None = msgspec.UNSET
    events: list[GpuEvent] = []
    collect_ms: float | None = None
    mig: list[tuple[NonNegative, list[MigInstance]]] = []
    processes: list[tuple[NonNegative, list[GpuProcess]]] = []
    na: list[tuple[NonNegative, dict[str, str]]] = []


Message = Hello | Sample | AgentError

_decoder = msgspec.json.Decoder(Message)


def decode_line(line: bytes) -> Hello | Sample | AgentError:
    """Decode one line from a host, or raise ProtocolError with a one-line reason."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte cap")
    try:
        message = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError(clean_text(str(exc), 200)) from None
    except UnicodeDecodeError as exc:  # msgspec raises this, not DecodeError, for bad UTF-8
        raise ProtocolError(f"invalid UTF-8 at byte {exc.start}") from None
    except RecursionError:  # msgspec's answer to JSON nested thousands deep
        raise ProtocolError("JSON nested too deep") from None
    _validate(message)
    return message


def _validate(message: Hello | Sample | AgentError) -> None:
    """Reject what types alone cannot: NaN/inf, negative counters; clean every string."""
    if isinstance(message, Hello):
        if message.proto not in PROTOCOL_VERSIONS:
            raise ProtocolError(f"unsupported protocol version {message.proto}")
        if (message.proto == WIRE_VERSION) != (message.wire is not None):
            missing = "without" if message.proto == WIRE_VERSION else "with"
            raise ProtocolError(f"protocol {message.proto} hello {missing} a wire schema")
        _clean_struct(message.host)
        for inventory in message.gpus:
            _clean_struct(inventory)
        message.agent_version = clean_text(message.agent_version, 40)
        message.capabilities = [clean_text(c, 40) for c in message.capabilities[:64]]
    elif isinstance(message, Sample):
        _check_number("ts", message.ts)
        message.driver_detail = clean_text(message.driver_detail)
        for gpu in message.gpus:
            _check_gpu(gpu)
        check_events(message.events)
        for port in message.ib:
            port.device = clean_text(port.device, 64)
            _clean_struct(port)
            port.counters = _check_counters(f"ib.{port.device}/{port.port}", port.counters)
        for iface in message.eth:
            iface.name = clean_text(iface.name, 64)
            _clean_struct(iface)
            iface.counters = _check_counters(f"eth.{iface.name}", iface.counters)
    else:
        message.message = clean_text(message.message, 512)


def check_events(events: list[GpuEvent]) -> None:
    for event in events:
        _check_number("events.ts", event.ts)
        event.message = clean_text(event.message, 512)
        if event.pci_bus_id is not None:
            event.pci_bus_id = clean_text(event.pci_bus_id, 32)


def _check_gpu(gpu: GpuSample) -> None:
    """Numbers were range-checked by the decoder (JSON has no NaN); clean the strings."""
    if gpu.uuid is not None:
        gpu.uuid = clean_text(gpu.uuid, 96)
    if gpu.pci_bus_id is not None:
        gpu.pci_bus_id = clean_text(gpu.pci_bus_id, 32)
    na = gpu.na
    if na and not (
        len(na) <= 64
        and "".join(na).isprintable()
        and "".join(na.values()).isprintable()
        and max(map(len, na)) <= 40
        and max(map(len, na.values())) <= 120
    ):
        gpu.na = {clean_text(k, 40): clean_text(v, 120) for k, v in list(na.items())[:64]}
    nvlink = gpu.nvlink
    if not (
        len(nvlink.up)
        == len(nvlink.replay_errors)
        == len(nvlink.recovery_errors)
        == len(nvlink.crc_flit_errors)
        == len(nvlink.crc_data_errors)
    ):
        lengths = ", ".join(
            f"{key} {len(getattr(nvlink, key))}" for key in nvlink.__struct_fields__
        )
        raise ProtocolError(f"GPU {gpu.index} nvlink: lists of different lengths ({lengths})")
    for proc in gpu.processes:
        if proc.name is not None:
            proc.name = clean_text(proc.name, 64)
    for mig in gpu.mig:
        if mig.uuid is not None:
            mig.uuid = clean_text(mig.uuid, 96)


def _check_number(where: str, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(f"{where}: not a finite number")
    if value < 0 and not where.endswith(".ts"):
        raise ProtocolError(f"{where}: negative value {value}")


def _check_counters(where: str, counters: dict[str, int]) -> dict[str, int]:
    """Refuse negative counters; return them with names fit for the screen (names are
    sysfs file names, so cleaning changes nothing for an honest agent)."""
    if not counters:  # a port or interface whose counters the agent could not read
        return counters
    if min(counters.values()) < 0:
        key, value = next((k, v) for k, v in counters.items() if v < 0)
        raise ProtocolError(f"{where}.{clean_text(key, 40)}: negative counter {value}")
    names = tuple(counters)
    if names in _CLEAN_NAME_SETS:
        return counters
    if len(names) <= 256 and "".join(names).isprintable() and max(map(len, names)) <= 64:
        if len(_CLEAN_NAME_SETS) >= MAX_CLEAN_NAME_SETS:
            _CLEAN_NAME_SETS.clear()
        _CLEAN_NAME_SETS.add(names)
        return counters  # the honest case, checked in C: names are sysfs file names
    return {clean_text(key, 64): value for key, value in list(counters.items())[:256]}


MAX_CLEAN_NAME_SETS = 64
_CLEAN_NAME_SETS: set[tuple[str, ...]] = set()
"""Counter-name sets already found fit for the screen. A fleet sends a handful (one per
NIC and driver kind), the same every sample, so the check is one set lookup (msgspec
reuses the key strings, their hashes cached) instead of a scan of ~20 names on each of
~10 ports per line. Bounded: a host sending new names every line only refills it."""


def _clean_struct(struct: msgspec.Struct) -> None:
    fields = _STRING_FIELDS.get(type(struct))
    if fields is None:  # found once per struct type: the fields that may hold a string
        fields = _STRING_FIELDS[type(struct)] = tuple(
            name for name, kind in type(struct).__annotations__.items() if kind.startswith("str")
        )
    for field in fields:
        value = getattr(struct, field)
        if isinstance(value, str) and not (value.isprintable() and len(value) <= 256):
            setattr(struct, field, clean_text(value))


_STRING_FIELDS: dict[type, tuple[str, ...]] = {}
