"""Protocol v2, the lean wire, as the console reads it: one `ChannelDecoder` per channel.

The agent's side (opsconsole/agent/lean.py, standard library) explains the format. Here
a v2 hello's `wire` schema becomes a `Plan` (every column's field, length and check,
sizes bounded), and each `"s"` line is checked value by value against it and applied to
the channel's current values. Only the rows a line touched are rebuilt: an unchanged GPU,
port or interface is the very object of the previous sample, so later stages can skip it
(`collect.bounds` does). What a v1 line may not carry, a v2 line may not either: the
same line cap, string cleaning, non-negative readings and counters, finite numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from opsconsole.wire.messages import (
    MAX_LINE_BYTES,
    MAX_NVLINKS,
    WIRE_VERSION,
    AgentError,
    EthInterface,
    GpuProcess,
    GpuSample,
    Hello,
    IbPort,
    LeanSample,
    Load,
    MigInstance,
    NvLinks,
    ProtocolError,
    Sample,
    Scalar,
    WireSchema,
    _validate,
    check_events,
)
from opsconsole.wire.text import clean_text

MAX_GPU_ROWS = 64
MAX_PORTS = 64
MAX_COUNTER_NAMES = 256
MAX_FIELDS = 96
MAX_VALUES = 50_000
"""An 8-GPU host with 18 NVLinks and 8 IB ports has ~1,200 values; a schema promising
more than this is a broken or hostile sender, refused before it costs memory."""
MAX_FULL_EVERY = 3600

NVLINK_FIELDS = ("up", "replay_errors", "recovery_errors", "crc_flit_errors", "crc_data_errors")
_GPU_ROW_KEYS = frozenset({"index", "nvlink", "mig", "processes", "na"})
_STRING_CAPS = {"uuid": 96, "pci_bus_id": 32}
_GPU_STATES = {state: state for state in ("ok", "lost", "unresponsive", "error")}
"""The canonical (interned) strings: "ok" is then the field's default itself, which the
encoder omits as v1's decoder would."""

Check = Callable[[Scalar], Scalar]


class _Refused(Exception):
    """A value of the wrong kind: the caller names the column and the position."""


def _float(value: Scalar) -> Scalar:
    if value is None:
        return None
    if type(value) is float or type(value) is int:
        if value < 0 or not math.isfinite(value):
            raise _Refused(f"{value} is not a non-negative finite number")
        return float(value)
    raise _Refused(f"{type(value).__name__} where a number belongs")


def _any_float(value: Scalar) -> Scalar:
    if value is None:
        return None
    if (type(value) is float or type(value) is int) and math.isfinite(value):
        return float(value)
    raise _Refused(f"{value!r} is not a finite number")


def _count(value: Scalar) -> Scalar:
    if value is None or (type(value) is int and value >= 0):
        return value
    raise _Refused(f"{value!r} is not a non-negative integer")


def _int(value: Scalar) -> Scalar:
    if value is None or type(value) is int:
        return value
    raise _Refused(f"{value!r} is not an integer")


def _bool(value: Scalar) -> Scalar:
    if value is None or type(value) is bool:
        return value
    raise _Refused(f"{value!r} is not true, false or null")


def _text(cap: int) -> Check:
    def check(value: Scalar) -> Scalar:
        if value is None:
            return None
        if type(value) is str:
            return clean_text(value, cap)
        raise _Refused(f"{type(value).__name__} where text belongs")

    return check


def _state(value: Scalar) -> Scalar:
    if type(value) is str and value in _GPU_STATES:
        return _GPU_STATES[value]
    raise _Refused(f"{value!r} is not a GPU state")


def _ignored(value: Scalar) -> Scalar:
    return None  # a field this console does not know (a newer agent's): not kept


def _gpu_check(name: str) -> Check:
    """A GPU field's check, from GpuSample's own annotation: the v1 rules, unchanged."""
    kind = GpuSample.__annotations__.get(name)
    if kind is None:
        return _ignored
    if kind.startswith("NonNegativeFloat"):
        return _float
    if kind.startswith("NonNegative"):
        return _count
    if kind.startswith("bool"):
        return _bool
    if kind.startswith("str"):
        return _text(_STRING_CAPS.get(name, 256))
    if kind.startswith("Literal"):
        return _state
    return _ignored


_IB_CHECKS: dict[str, Check] = {
    "state": _text(64),
    "phys_state": _text(64),
    "link_layer": _text(64),
    "rate_gbps": _any_float,
}
_ETH_CHECKS: dict[str, Check] = {"operstate": _text(64), "speed_mbps": _int}


@dataclass(frozen=True)
class Column:
    name: str
    length: int
    check: Check


@dataclass(frozen=True)
class Plan:
    """A v2 schema, checked and laid out: the columns, and which row each value is in."""

    schema: WireSchema
    columns: tuple[Column, ...]
    gpu_columns: tuple[tuple[str, int], ...]  # (GpuSample field, column) known fields only
    nvlink_columns: tuple[tuple[str, int], ...]
    nvlink_starts: tuple[int, ...]  # each GPU's first link in the NVLink columns
    link_row: tuple[int, ...]  # NVLink value position -> GPU row
    ib_columns: tuple[tuple[str, int], ...]
    ib_counter_column: int
    ib_counter_row: tuple[int, ...]
    ib_names: tuple[tuple[str, ...], ...]
    ib_offsets: tuple[int, ...]  # each port's first value in the IB counter column
    eth_columns: tuple[tuple[str, int], ...]
    eth_counter_column: int
    eth_counter_row: tuple[int, ...]
    eth_names: tuple[tuple[str, ...], ...]
    eth_offsets: tuple[int, ...]
    kinds: tuple[int, ...]  # per column: what a delta's value updates (_GPU, _IB, ...)
    fields: tuple[str, ...]  # per column: the field it updates ("" for counters, links)
    ib_counter_names: tuple[str, ...]  # per position of the IB counter column
    eth_counter_names: tuple[str, ...]


_IGNORED, _GPU, _LINK, _IB, _IB_COUNTER, _ETH, _ETH_COUNTER = range(7)


def _names(where: str, names: list[str], cap: int, limit: int) -> list[str]:
    if len(names) > limit:
        raise ProtocolError(f"wire schema: {len(names)} {where}, at most {limit}")
    cleaned = [clean_text(n, cap) for n in names]
    if len(set(cleaned)) != len(cleaned):
        raise ProtocolError(f"wire schema: {where} repeat a name")
    return cleaned


def make_plan(schema: WireSchema) -> Plan:
    """Check a v2 hello's schema (sizes, names) and lay its columns out."""
    if schema.v != WIRE_VERSION:
        raise ProtocolError(f"wire schema version {schema.v}, this console reads {WIRE_VERSION}")
    if not 1 <= schema.full_every <= MAX_FULL_EVERY:
        raise ProtocolError(f"wire schema: full_every {schema.full_every} outside 1..3600")
    rows = len(schema.gpus)
    if rows > MAX_GPU_ROWS:
        raise ProtocolError(f"wire schema: {rows} GPU rows, at most {MAX_GPU_ROWS}")
    if len(schema.nvlinks) != rows and (schema.nvlinks or schema.nvlink_fields):
        raise ProtocolError(f"wire schema: NVLink counts for {len(schema.nvlinks)} of {rows} GPUs")
    if schema.nvlinks and max(schema.nvlinks) > MAX_NVLINKS:
        raise ProtocolError(f"wire schema: a GPU with {max(schema.nvlinks)} NVLinks")
    gpu_fields = _names("GPU fields", schema.gpu_fields, 40, MAX_FIELDS)
    if _GPU_ROW_KEYS & set(gpu_fields):
        raise ProtocolError(f"wire schema: {sorted(_GPU_ROW_KEYS & set(gpu_fields))} not columns")
    nvlink_fields = _names("NVLink fields", schema.nvlink_fields, 40, len(NVLINK_FIELDS) * 2)
    for where, ports, counters in (
        ("IB ports", schema.ib, schema.ib_counters),
        ("Ethernet interfaces", schema.eth, schema.eth_counters),
    ):
        if len(ports) > MAX_PORTS or len(counters) != len(ports):
            raise ProtocolError(f"wire schema: {len(ports)} {where}, {len(counters)} name lists")
    schema.ib = [(clean_text(device, 64), port) for device, port in schema.ib]
    schema.eth = [clean_text(name, 64) for name in schema.eth]
    ib_names = tuple(
        tuple(_names("IB counters", n, 64, MAX_COUNTER_NAMES)) for n in schema.ib_counters
    )
    eth_names = tuple(
        tuple(_names("Ethernet counters", n, 64, MAX_COUNTER_NAMES)) for n in schema.eth_counters
    )
    ib_fields = _names("IB fields", schema.ib_fields, 40, MAX_FIELDS)
    eth_fields = _names("Ethernet fields", schema.eth_fields, 40, MAX_FIELDS)
    links = sum(schema.nvlinks) if nvlink_fields else 0
    columns: list[Column] = [Column(f"gpu.{f}", rows, _gpu_check(f)) for f in gpu_fields]
    gpu_columns = tuple(
        (f, n) for n, f in enumerate(gpu_fields) if columns[n].check is not _ignored
    )
    nvlink_columns = []
    for f in nvlink_fields:
        check = _bool if f == "up" else _count if f in NVLINK_FIELDS else _ignored
        if check is not _ignored:
            nvlink_columns.append((f, len(columns)))
        columns.append(Column(f"nvlink.{f}", links, check))
    ib_columns = []
    for f in ib_fields:
        ib_columns.append((f, len(columns)))
        columns.append(Column(f"ib.{f}", len(schema.ib), _IB_CHECKS.get(f, _ignored)))
    ib_counter_column = len(columns)
    columns.append(Column("ib.counters", sum(map(len, ib_names)), _count))
    eth_columns = []
    for f in eth_fields:
        eth_columns.append((f, len(columns)))
        columns.append(Column(f"eth.{f}", len(schema.eth), _ETH_CHECKS.get(f, _ignored)))
    eth_counter_column = len(columns)
    columns.append(Column("eth.counters", sum(map(len, eth_names)), _count))
    total = sum(c.length for c in columns)
    if total > MAX_VALUES:
        raise ProtocolError(f"wire schema: {total} values a sample, at most {MAX_VALUES}")
    kinds = [_GPU if c.check is not _ignored else _IGNORED for c in columns[: len(gpu_fields)]]
    kinds += [_LINK] * len(nvlink_fields)
    kinds += [_IB if _IB_CHECKS.get(f) else _IGNORED for f in ib_fields] + [_IB_COUNTER]
    kinds += [_ETH if _ETH_CHECKS.get(f) else _IGNORED for f in eth_fields] + [_ETH_COUNTER]
    fields = [*gpu_fields, *nvlink_fields, *ib_fields, "", *eth_fields, ""]
    starts: list[int] = []
    link_row: list[int] = []
    for row, count in enumerate(schema.nvlinks if nvlink_fields else []):
        starts.append(len(link_row))
        link_row.extend([row] * count)
    return Plan(
        schema=schema,
        columns=tuple(columns),
        gpu_columns=gpu_columns,
        nvlink_columns=tuple(nvlink_columns),
        nvlink_starts=tuple(starts),
        link_row=tuple(link_row),
        ib_columns=tuple((f, n) for f, n in ib_columns if columns[n].check is not _ignored),
        ib_counter_column=ib_counter_column,
        ib_counter_row=tuple(r for r, names in enumerate(ib_names) for _ in names),
        ib_names=ib_names,
        ib_offsets=_offsets(ib_names),
        eth_columns=tuple((f, n) for f, n in eth_columns if columns[n].check is not _ignored),
        eth_counter_column=eth_counter_column,
        eth_counter_row=tuple(r for r, names in enumerate(eth_names) for _ in names),
        eth_names=eth_names,
        eth_offsets=_offsets(eth_names),
        kinds=tuple(kinds),
        fields=tuple(fields),
        ib_counter_names=tuple(n for names in ib_names for n in names),
        eth_counter_names=tuple(n for names in eth_names for n in names),
    )


_line_decoder = msgspec.json.Decoder(Hello | Sample | LeanSample | AgentError)


class ChannelDecoder:
    """One channel's reading of v1 and v2 lines: a v2 hello sets the plan, a full v2
    sample the values, a delta changes them. v1 lines decode as `decode_line` does."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.full_samples = 0
        self.delta_samples = 0
        self._cols: list[list[Scalar]] | None = None
        # The rows handed out (an unchanged one is handed out again), and the decoder's own
        # copies that deltas update in place: handed-out rows are bounded (changed in
        # place) downstream, so they are never the ones updated here.
        self._gpus: list[GpuSample] = []
        self._ports: list[IbPort] = []
        self._ifaces: list[EthInterface] = []
        self._own_gpus: list[GpuSample] = []
        self._own_ports: list[IbPort] = []
        self._own_ifaces: list[EthInterface] = []
        self._mig: list[list[MigInstance]] = []
        self._processes: list[list[GpuProcess]] = []
        self._na: list[dict[str, str]] = []
        self._driver = "ok"
        self._driver_detail = ""
        self._gpu_count: int | None = None
        self._load = Load()

    def decode(self, line: bytes) -> Hello | Sample | AgentError:
        """Decode one line, or raise ProtocolError with a one-line reason. A refused
        line leaves the channel's values as they were."""
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte cap")
        try:
            message: Hello | Sample | LeanSample | AgentError = _line_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ProtocolError(clean_text(str(exc), 200)) from None
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"invalid UTF-8 at byte {exc.start}") from None
        except RecursionError:
            raise ProtocolError("JSON nested too deep") from None
        if isinstance(message, LeanSample):
            return self._lean(message)
        _validate(message)
        if isinstance(message, Hello):
            self.plan = None if message.wire is None else make_plan(message.wire)
            self._cols = None  # a hello starts over: the next v2 sample is a full one
        return message

    # --- a v2 sample ------------------------------------------------------------------
    def _lean(self, message: LeanSample) -> Sample:
        plan = self.plan
        if plan is None:
            raise ProtocolError("v2 sample before a v2 hello")
        if not math.isfinite(message.ts):
            raise ProtocolError("ts: not a finite number")
        rows = len(plan.schema.gpus)
        updates: list[tuple[int, int, Scalar]] | None = None
        if message.f is not None:
            cols = self._full(plan, message.f)
            gpu_rows = set(range(rows))
            link_rows = set(gpu_rows)
            ports = set(range(len(plan.schema.ib)))
            ifaces = set(range(len(plan.schema.eth)))
            mig: list[list[MigInstance]] = [[] for _ in range(rows)]
            processes: list[list[GpuProcess]] = [[] for _ in range(rows)]
            na: list[dict[str, str]] = [{} for _ in range(rows)]
        else:
            if self._cols is None:
                raise ProtocolError("v2 delta sample before a full one")
            updates = self._delta(plan, message.d)
            gpu_rows, link_rows, ports, ifaces = self._touched(plan, updates)
            cols = self._cols
            mig, processes, na = list(self._mig), list(self._processes), list(self._na)
        for row, instances in message.mig:
            if row >= rows:
                raise ProtocolError(f"mig: GPU row {row} of {rows}")
            for instance in instances:
                if instance.uuid is not None:
                    instance.uuid = clean_text(instance.uuid, 96)
            mig[row] = instances
            gpu_rows.add(row)
        for row, found in message.processes:
            if row >= rows:
                raise ProtocolError(f"processes: GPU row {row} of {rows}")
            for process in found:
                if process.name is not None:
                    process.name = clean_text(process.name, 64)
            processes[row] = found
            gpu_rows.add(row)
        for row, reasons in message.na:
            if row >= rows:
                raise ProtocolError(f"na: GPU row {row} of {rows}")
            na[row] = _clean_reasons(reasons)
            gpu_rows.add(row)
        check_events(message.events)
        # Checked: from here on the line is taken.
        for number, position, value in updates or ():
            cols[number][position] = value
        self._cols, self._mig, self._processes, self._na = cols, mig, processes, na
        self._rest(message)
        if updates is None or len(self._own_gpus) != rows:
            self._rebuild(plan)
            gpu_rows = link_rows = set(range(rows))
            ports = set(range(len(plan.schema.ib)))
            ifaces = set(range(len(plan.schema.eth)))
        else:
            self._update(plan, updates, gpu_rows, link_rows)
        return self._sample(message, gpu_rows, ports, ifaces)

    def _full(self, plan: Plan, values: list[list[Scalar]]) -> list[list[Scalar]]:
        if len(values) != len(plan.columns):
            raise ProtocolError(
                f"v2 full sample of {len(values)} columns, the hello says {len(plan.columns)}"
            )
        cols = []
        for number, (column, given) in enumerate(zip(plan.columns, values, strict=True)):
            if len(given) != column.length:
                raise ProtocolError(
                    f"column {number} ({column.name}): {len(given)} values,"
                    f" the hello says {column.length}"
                )
            check = column.check
            try:
                cols.append([check(v) for v in given])
            except _Refused as exc:
                raise ProtocolError(f"column {number} ({column.name}): {exc}") from None
        self.full_samples += 1
        return cols

    def _delta(self, plan: Plan, entries: list[list[Scalar]]) -> list[tuple[int, int, Scalar]]:
        updates = []
        columns = plan.columns
        for entry in entries:
            number = entry[0] if entry else None
            if type(number) is not int or not 0 <= number < len(columns):
                raise ProtocolError(f"v2 delta: unknown column {clean_text(repr(number), 40)}")
            column = columns[number]
            if len(entry) % 2 != 1:
                raise ProtocolError(f"column {number} ({column.name}): an index without a value")
            check = column.check
            for k in range(1, len(entry), 2):
                position = entry[k]
                if type(position) is not int or not 0 <= position < column.length:
                    shown = clean_text(repr(position), 40)
                    raise ProtocolError(
                        f"column {number} ({column.name}): position {shown} outside"
                        f" 0..{column.length - 1}"
                    )
                try:
                    updates.append((number, position, check(entry[k + 1])))
                except _Refused as exc:
                    raise ProtocolError(f"column {number} ({column.name}): {exc}") from None
        self.delta_samples += 1
        return updates

    @staticmethod
    def _touched(
        plan: Plan, updates: list[tuple[int, int, Scalar]]
    ) -> tuple[set[int], set[int], set[int], set[int]]:
        """The GPU rows (and of those, the ones whose NVLinks), IB ports and Ethernet
        interfaces a delta changed."""
        gpus: set[int] = set()
        links: set[int] = set()
        ports: set[int] = set()
        ifaces: set[int] = set()
        gpu_end = len(plan.schema.gpu_fields)
        nvlink_end = gpu_end + len(plan.schema.nvlink_fields)
        for number, position, _ in updates:
            if number < gpu_end:
                gpus.add(position)
            elif number < nvlink_end:
                gpus.add(plan.link_row[position])
                links.add(plan.link_row[position])
            elif number < plan.ib_counter_column:
                ports.add(position)
            elif number == plan.ib_counter_column:
                ports.add(plan.ib_counter_row[position])
            elif number < plan.eth_counter_column:
                ifaces.add(position)
            else:
                ifaces.add(plan.eth_counter_row[position])
        return gpus, links, ports, ifaces

    def _rest(self, message: LeanSample) -> None:
        if message.driver is not msgspec.UNSET:
            self._driver = message.driver
        if message.driver_detail is not msgspec.UNSET:
            self._driver_detail = clean_text(message.driver_detail)
        if message.gpu_count is not msgspec.UNSET:
            self._gpu_count = message.gpu_count
        if message.load is not msgspec.UNSET:
            self._load = message.load if message.load is not None else Load()

    # --- the Sample the rest of the console reads ---------------------------------------
    def _rebuild(self, plan: Plan) -> None:
        """The decoder's own rows from the current values (a full sample, a new plan)."""
        cols = self._cols
        assert cols is not None
        schema = plan.schema
        self._own_gpus = [self._gpu(plan, cols, row) for row in range(len(schema.gpus))]
        self._own_ports = []
        counters = cols[plan.ib_counter_column]
        for row, (device, number) in enumerate(schema.ib):
            port = IbPort(device=device, port=number)
            for field, column in plan.ib_columns:
                setattr(port, field, cols[column][row])
            port.counters = _counters(plan.ib_names[row], counters, plan.ib_offsets[row])
            self._own_ports.append(port)
        self._own_ifaces = []
        counters = cols[plan.eth_counter_column]
        for row, name in enumerate(schema.eth):
            iface = EthInterface(name=name)
            for field, column in plan.eth_columns:
                setattr(iface, field, cols[column][row])
            iface.counters = _counters(plan.eth_names[row], counters, plan.eth_offsets[row])
            self._own_ifaces.append(iface)
        self._gpus, self._ports, self._ifaces = [], [], []

    def _update(
        self,
        plan: Plan,
        updates: list[tuple[int, int, Scalar]],
        gpu_rows: set[int],
        link_rows: set[int],
    ) -> None:
        """Apply a delta's values to the decoder's own rows: a field set per value, not a
        row rebuilt per change (most ticks move a few fields of every GPU)."""
        gpus, ports, ifaces = self._own_gpus, self._own_ports, self._own_ifaces
        kinds, fields = plan.kinds, plan.fields
        # A changed row's counters go in a new dict (the old one is handed out), copied
        # once per row and then set value by value.
        copied: dict[tuple[int, int], dict[str, int]] = {}
        for number, position, value in updates:
            kind = kinds[number]
            if kind == _GPU:
                setattr(gpus[position], fields[number], value)
            elif kind in (_IB_COUNTER, _ETH_COUNTER):
                ib = kind == _IB_COUNTER
                row = (plan.ib_counter_row if ib else plan.eth_counter_row)[position]
                counters = copied.get((kind, row))
                if counters is None:
                    owned = ports[row] if ib else ifaces[row]
                    counters = copied[kind, row] = owned.counters = dict(owned.counters)
                name = (plan.ib_counter_names if ib else plan.eth_counter_names)[position]
                if value is None:
                    counters.pop(name, None)
                else:
                    counters[name] = value  # type: ignore[assignment]  # checked: a count
            elif kind == _IB:
                setattr(ports[position], fields[number], value)
            elif kind == _ETH:
                setattr(ifaces[position], fields[number], value)
        cols = self._cols
        assert cols is not None
        for row in link_rows:
            gpus[row].nvlink = _links(plan, cols, row)
        for row in gpu_rows:
            gpus[row].mig = self._mig[row]
            gpus[row].processes = self._processes[row]

    def _sample(
        self,
        message: LeanSample,
        gpu_rows: set[int],
        ports: set[int],
        ifaces: set[int],
    ) -> Sample:
        """The Sample handed on: copies of the rows that changed (bounds and the rest of
        the console may change those), the very rows of the last sample for the rest."""
        replace = msgspec.structs.replace
        if len(self._gpus) != len(self._own_gpus):
            self._gpus = list(self._own_gpus)
            gpu_rows = set(range(len(self._gpus)))
        for row in gpu_rows:
            self._gpus[row] = replace(self._own_gpus[row], na=dict(self._na[row]))
        if len(self._ports) != len(self._own_ports):
            self._ports = list(self._own_ports)
            ports = set(range(len(self._ports)))
        for row in ports:
            self._ports[row] = replace(self._own_ports[row])
        if len(self._ifaces) != len(self._own_ifaces):
            self._ifaces = list(self._own_ifaces)
            ifaces = set(range(len(self._ifaces)))
        for row in ifaces:
            self._ifaces[row] = replace(self._own_ifaces[row])
        load = self._load
        return Sample(
            seq=message.seq,
            ts=message.ts,
            driver=self._driver,  # type: ignore[arg-type]
            driver_detail=self._driver_detail,
            gpu_count=self._gpu_count,
            gpus=list(self._gpus),
            events=message.events,
            ib=list(self._ports),
            eth=list(self._ifaces),
            load=Load(load.load1, load.load5, load.load15),
            collect_ms=message.collect_ms,
        )

    def _gpu(self, plan: Plan, cols: list[list[Scalar]], row: int) -> GpuSample:
        """A GPU row from the current values: one constructor call, not a setattr per
        field."""
        # Each value was checked against the field's own type when it arrived (_gpu_check).
        fields: dict[str, Any] = {field: cols[column][row] for field, column in plan.gpu_columns}
        return GpuSample(
            index=plan.schema.gpus[row],
            nvlink=_links(plan, cols, row),
            mig=self._mig[row],
            processes=self._processes[row],
            **fields,
        )


def _links(plan: Plan, cols: list[list[Scalar]], row: int) -> NvLinks:
    """A GPU's NVLinks from the current values (empty without NVLink)."""
    if not (plan.nvlink_columns and plan.schema.nvlinks[row]):
        return NvLinks()
    start = plan.nvlink_starts[row]
    end = start + plan.schema.nvlinks[row]
    absent: list[Any] = [None] * (end - start)  # a field this agent does not send
    parts = dict.fromkeys(NVLINK_FIELDS, absent)
    for field, column in plan.nvlink_columns:
        parts[field] = cols[column][start:end]
    return NvLinks(**parts)


def _offsets(names: tuple[tuple[str, ...], ...]) -> tuple[int, ...]:
    offsets, at = [], 0
    for row in names:
        offsets.append(at)
        at += len(row)
    return tuple(offsets)


def _counters(names: tuple[str, ...], values: list[Scalar], start: int) -> dict[str, int]:
    return {
        name: value  # type: ignore[misc]
        for name, value in zip(names, values[start : start + len(names)], strict=True)
        if value is not None
    }


def _clean_reasons(na: dict[str, str]) -> dict[str, str]:
    """A GPU's `na` reasons as v1 cleans them; checked once when they arrive, not on
    every sample that rebuilds the row."""
    honest = all(k.isprintable() and v.isprintable() for k, v in na.items())
    if len(na) <= 64 and honest:
        return {k[:40]: v[:120] for k, v in na.items()}
    return {clean_text(k, 40): clean_text(v, 120) for k, v in list(na.items())[:64]}
