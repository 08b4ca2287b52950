"""Protocol v2, the lean wire: static facts once, then only the values that changed.

Why: a v1 sample re-sends every field name, every NVLink and port, and every reading
whether it moved or not (~16 KB a line for an 8-GPU host with IB); the console pays to
decrypt, decode and check all of it for every host every interval. In v2 the hello
carries a `wire` schema (GPU rows and field names, NVLink counts, IB ports and
Ethernet interfaces with their counter names, the deadbands), and each sample (`"type":
"s"`) carries values only, one column per field:

  full   {"type":"s","seq":7,"ts":..,"f":[[col 0 values], [col 1 values], ...], ...}
  delta  {"type":"s","seq":8,"ts":..,"d":[[col, i, value, i, value, ...], ...], ...}

A delta holds a value only where it moved by at least the field's deadband from the
value last sent (counters: any change). Every `full_every` samples a full one goes out,
so a line the console lost or refused heals within that many intervals. Columns follow
from the schema in a fixed order (`columns()`, mirrored by opsconsole.wire.lean), so the
column number is all a value needs. Per-GPU lists (processes, MIG, `na`) go as
`[row, value]` pairs when they change; events always; `driver`, `driver_detail`,
`gpu_count` and `load` when they change.

The agent speaks v2 only when the console asked for it (`wire 2` on the agent's stdin):
an older console never asks, an older agent ignores the request (it reads stdin only
for EOF), and both ends fall back to v1. Standard library only, Python 3.8.
"""

from typing import Any, Dict, Optional, Tuple

WIRE_VERSION = 2
FULL_EVERY = 30
"""A full sample every this many samples (60 s at the default 2 s interval)."""

DEADBANDS = {
    "util_gpu_pct": 2.0,
    "util_mem_pct": 2.0,
    "enc_util_pct": 2.0,
    "dec_util_pct": 2.0,
    "fan_pct": 2.0,
    "mem_used_mib": 64.0,
    "temp_c": 1.0,
    "power_w": 5.0,
    "sm_clock_mhz": 30.0,
    "mem_clock_mhz": 30.0,
}
"""Gauges whose small wobble is noise to an operator (and to minute averages): sent when
they move this far from the value last sent. Every other field, counters above all, is
sent on any change, so a counter's error is never more than zero."""

GPU_ROW_KEYS = ("index", "nvlink", "mig", "processes", "na")
"""GPU keys that are not scalar columns: the row's identity and its per-row lists."""
GPU_LISTS = ("mig", "processes", "na")
NVLINK_FIELDS = ("up", "replay_errors", "recovery_errors", "crc_flit_errors", "crc_data_errors")
IB_ROW_KEYS = ("device", "port", "counters")
ETH_ROW_KEYS = ("name", "counters")
_UNSENT = object()


def _fields(rows, skip):
    """Scalar field names of `rows`, in first-seen order."""
    names = []
    seen = set(skip)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                names.append(key)
    return names


def schema_of(sample, full_every=FULL_EVERY, deadbands=None):
    """The static part of a v1-shaped sample dict: what the v2 hello's `wire` carries."""
    gpus = sample.get("gpus") or []
    ib = sample.get("ib") or []
    eth = sample.get("eth") or []
    nvlinks = [len((g.get("nvlink") or {}).get("up") or []) for g in gpus]
    bands = DEADBANDS if deadbands is None else deadbands
    gpu_fields = _fields(gpus, GPU_ROW_KEYS)
    return {
        "v": WIRE_VERSION,
        "full_every": full_every,
        "gpus": [g["index"] for g in gpus],
        "gpu_fields": gpu_fields,
        "nvlinks": nvlinks,
        "nvlink_fields": list(NVLINK_FIELDS) if any(nvlinks) else [],
        "ib": [[p["device"], p["port"]] for p in ib],
        "ib_fields": _fields(ib, IB_ROW_KEYS),
        "ib_counters": [list(p.get("counters") or {}) for p in ib],
        "eth": [i["name"] for i in eth],
        "eth_fields": _fields(eth, ETH_ROW_KEYS),
        "eth_counters": [list(i.get("counters") or {}) for i in eth],
        "deadband": {k: v for k, v in bands.items() if k in gpu_fields},
    }


def columns(sample, schema):
    """The sample's values, one list per column, in the schema's column order: GPU
    fields, NVLink fields (every GPU's links end to end), IB fields, IB counters (every
    port's end to end), Ethernet fields, Ethernet counters."""
    gpus = sample.get("gpus") or []
    ib = sample.get("ib") or []
    eth = sample.get("eth") or []
    cols = [[g.get(f) for g in gpus] for f in schema["gpu_fields"]]
    for field in schema["nvlink_fields"]:
        col = []
        for gpu, count in zip(gpus, schema["nvlinks"]):  # noqa: B905 (3.8 has no strict)
            values = list((gpu.get("nvlink") or {}).get(field) or [])[:count]
            col.extend(values + [None] * (count - len(values)))
        cols.append(col)
    cols.extend([[p.get(f) for p in ib] for f in schema["ib_fields"]])
    counters = []
    for port, names in zip(ib, schema["ib_counters"]):  # noqa: B905
        values = port.get("counters") or {}
        counters.extend(values.get(n) for n in names)
    cols.append(counters)
    cols.extend([[i.get(f) for i in eth] for f in schema["eth_fields"]])
    counters = []
    for iface, names in zip(eth, schema["eth_counters"]):  # noqa: B905
        values = iface.get("counters") or {}
        counters.extend(values.get(n) for n in names)
    cols.append(counters)
    return cols


class LeanEncoder:
    """Turns v1-shaped sample dicts into v2 lines for one channel (an agent's stdout, or
    one host's stream through a relay). `encode` says when the schema changed: the
    caller then sends a hello carrying `self.schema` before the sample."""

    def __init__(
        self, full_every: int = FULL_EVERY, deadbands: Optional[Dict[str, float]] = None
    ) -> None:
        self.full_every = max(1, int(full_every))
        self.deadbands = DEADBANDS if deadbands is None else deadbands
        self.schema = None  # type: Optional[Dict[str, Any]]
        self._bands = []
        self._sent = None  # each column's values as last sent
        self._since_full = 0
        self._last = {}

    def reset(self) -> None:
        """A new channel or a new hello: the next sample is a full one."""
        self._sent = None

    def encode(self, sample: Dict[str, Any]) -> Tuple[bool, Dict[str, Any]]:
        """(schema changed, the v2 message dict) for one v1-shaped sample dict."""
        schema = schema_of(sample, self.full_every, self.deadbands)
        changed = schema != self.schema
        if changed:
            self.schema = schema
            bands = schema["deadband"]
            self._bands = [float(bands.get(f, 0.0)) for f in schema["gpu_fields"]]
            self._sent = None
        cols = columns(sample, schema)
        message = {"type": "s", "seq": sample.get("seq", 0), "ts": sample.get("ts", 0.0)}
        full = self._sent is None or self._since_full >= self.full_every - 1
        if full:
            message["f"] = cols
            self._sent = [list(col) for col in cols]
            self._since_full = 0
            self._last = {}
        else:
            self._since_full += 1
            deltas = self._deltas(cols)
            if deltas:
                message["d"] = deltas
        self._rest(sample, message, full)
        return changed, message

    def _deltas(self, cols):
        deltas = []
        bands = self._bands
        for number, (new, old) in enumerate(zip(cols, self._sent)):  # noqa: B905
            if new == old:
                continue
            band = bands[number] if number < len(bands) else 0.0
            entry = [number]
            for i, value in enumerate(new):
                before = old[i]
                if value == before and type(value) is type(before):
                    continue
                if (
                    band
                    and isinstance(value, (int, float))
                    and isinstance(before, (int, float))
                    and abs(value - before) < band
                ):
                    continue
                entry.append(i)
                entry.append(value)
                old[i] = value
            if len(entry) > 1:
                deltas.append(entry)
        return deltas

    def _rest(self, sample, message, full):
        """Everything that is not a column: sent when it changed (all of it when full)."""
        last = self._last
        for key in ("driver", "driver_detail", "gpu_count", "load"):
            value = sample.get(key)
            if full or last.get(key, _UNSENT) != value:
                last[key] = value
                message[key] = value
        gpus = sample.get("gpus") or []
        for key in GPU_LISTS:
            pairs = []
            for row, gpu in enumerate(gpus):
                value = gpu.get(key) or ({} if key == "na" else [])
                memo = (key, row)
                if full or last.get(memo) != value:
                    last[memo] = value
                    if value or not full:
                        pairs.append([row, value])
            if pairs:
                message[key] = pairs
        if sample.get("events"):
            message["events"] = sample["events"]
        if sample.get("collect_ms") is not None:
            message["collect_ms"] = sample["collect_ms"]
