"""nvidia-smi as a fallback source: used when pynvml cannot start on a host, and by the
console's agentless mode, which runs the same query over SSH and parses it here.

Column names come from `nvidia-smi --help-query-gpu`. nvidia-smi rejects the whole query
when one name is unknown, so only long-lived names are used. Drivers before 535 know
only `clocks_throttle_reasons.active`; newer ones accept it as an alias of
`clocks_event_reasons.active`. Both spellings give the same column count, so the parser
reads either, and callers fall back to the legacy name when the new one is refused.
Remapped rows are not a --query-gpu property: they have their own query.
"""

import re

from .pci import normalize_bus_id

NVIDIA_SMI = "nvidia-smi"
SMI_EXIT_INVALID_ARGUMENT = 2
"""nvidia-smi's exit status for an invalid argument, such as a field name it refuses."""
QUERY_FIELDS = [
    "index", "uuid", "name", "serial", "pci.bus_id", "vbios_version", "driver_version",
    "utilization.gpu", "utilization.memory", "memory.used", "memory.total",
    "temperature.gpu", "power.draw", "power.limit", "clocks.sm", "clocks.mem",
    "clocks_event_reasons.active",
    "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total", "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.single_bit_ecc.count", "retired_pages.double_bit.count",
    "retired_pages.pending", "fan.speed",
]  # fmt: skip
LEGACY_QUERY_FIELDS = [
    "clocks_throttle_reasons.active" if f == "clocks_event_reasons.active" else f
    for f in QUERY_FIELDS
]
REMAP_FIELDS = [
    "gpu_uuid", "remapped_rows.correctable", "remapped_rows.uncorrectable",
    "remapped_rows.pending", "remapped_rows.failure",
]  # fmt: skip
CSV_FORMAT = "--format=csv,noheader,nounits"

# GpuSample field and value kind of each --query-gpu column that is a reading.
_READINGS = {
    "utilization.gpu": ("util_gpu_pct", "float"),
    "utilization.memory": ("util_mem_pct", "float"),
    "memory.used": ("mem_used_mib", "float"),
    "memory.total": ("mem_total_mib", "float"),
    "temperature.gpu": ("temp_c", "float"),
    "power.draw": ("power_w", "float"),
    "power.limit": ("power_limit_w", "float"),
    "clocks.sm": ("sm_clock_mhz", "float"),
    "clocks.mem": ("mem_clock_mhz", "float"),
    "clocks_event_reasons.active": ("clock_event_reasons", "int"),
    "ecc.errors.corrected.volatile.total": ("ecc_volatile_corrected", "int"),
    "ecc.errors.uncorrected.volatile.total": ("ecc_volatile_uncorrected", "int"),
    "ecc.errors.corrected.aggregate.total": ("ecc_aggregate_corrected", "int"),
    "ecc.errors.uncorrected.aggregate.total": ("ecc_aggregate_uncorrected", "int"),
    "retired_pages.single_bit_ecc.count": ("retired_pages_sbe", "int"),
    "retired_pages.double_bit.count": ("retired_pages_dbe", "int"),
    "retired_pages.pending": ("retired_pages_pending", "bool"),
    "fan.speed": ("fan_pct", "float"),
}
_REMAP_READINGS = {
    "remapped_rows.correctable": ("remap_corrected", "int"),
    "remapped_rows.uncorrectable": ("remap_uncorrected", "int"),
    "remapped_rows.pending": ("remap_pending", "bool"),
    "remapped_rows.failure": ("remap_failed", "bool"),
}
# Readings nvidia-smi's --query-gpu cannot give at all.
_NOT_QUERIED = ("pcie_replay", "recovery_action")

_NOT_SUPPORTED = {"[n/a]", "n/a", "[not supported]", "not supported", ""}
_LOST = {"[unknown error]", "[gpu requires reset]", "[gpu is lost]", "unknown error"}
_INDEX = re.compile(r"^[0-9]{1,4}$")
# Plain ASCII numbers only, as nvidia-smi prints them; int stays within SQLite's range.
_INT = re.compile(r"^[0-9]{1,18}$")
_HEX = re.compile(r"^0x[0-7]?[0-9a-f]{1,15}$")
_FLOAT = re.compile(r"^[0-9]{1,15}(?:\.[0-9]{1,6})?$")
_TRUE = {"yes", "true", "enabled", "active", "1"}
_FALSE = {"no", "false", "disabled", "not active", "0"}
_ERROR_LINES = re.compile(
    r"(NVIDIA-SMI has failed|Unable to determine the device handle|No devices were found"
    r"|nvidia-smi: (?:command )?not found|couldn't communicate with the NVIDIA driver"
    r"|Failed to initialize NVML)",
    re.IGNORECASE,
)


def smi_command(legacy=False):
    """argv of the GPU query; `legacy` spells the throttle column the pre-535 way."""
    fields = LEGACY_QUERY_FIELDS if legacy else QUERY_FIELDS
    return [NVIDIA_SMI, "--query-gpu=" + ",".join(fields), CSV_FORMAT]


def remap_command():
    """argv of the remapped-rows query (Ampere and newer; older parts print no rows)."""
    return [NVIDIA_SMI, "--query-remapped-rows=" + ",".join(REMAP_FIELDS), CSV_FORMAT]


def refused_field(output):
    """True when nvidia-smi refused a field name (a driver older than the query)."""
    return "is not a valid field" in output


def _rows(text, width):
    rows = []
    for line in (text or "").splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) == width:
            rows.append(cells)
    return rows


def parse_rows(text):
    """The GPU rows of a query's output as {column name: raw text}; other lines skipped.

    A GPU index seen twice (the output of two queries run one after the other) keeps its
    first row only.
    """
    rows, seen = [], set()
    for cells in _rows(text, len(QUERY_FIELDS)):
        if _INDEX.match(cells[0]) and int(cells[0]) not in seen:
            seen.add(int(cells[0]))
            rows.append(dict(zip(QUERY_FIELDS, cells)))  # noqa: B905 (widths checked above)
    return rows


def parse_value(raw, kind):
    """(value, None) for a reading, or (None, reason) with reason as sent in `na`."""
    low = raw.strip().lower()
    if low in _NOT_SUPPORTED:
        return None, "not_supported"
    if low in _LOST:
        return None, "lost"
    if low.startswith("["):
        return None, "error: " + raw.strip().strip("[]")[:80]
    if kind == "bool" and (low in _TRUE or low in _FALSE):
        return low in _TRUE, None
    if kind == "int" and _HEX.match(low):
        return int(low, 16), None
    if kind == "int" and _INT.match(low):
        return int(low), None
    if kind == "float" and _FLOAT.match(low):
        return float(low), None
    return None, "error: unreadable %r" % raw.strip()[:40]


def _sample_from_row(row):
    sample = {"index": int(row["index"]), "uuid": row["uuid"] or None, "state": "ok"}
    na = {}
    for column, (field, kind) in _READINGS.items():
        value, reason = parse_value(row.get(column, ""), kind)
        sample[field] = value
        if reason is not None:
            na[field] = reason
    for field in list(f for f, _ in _REMAP_READINGS.values()) + list(_NOT_QUERIED):
        sample[field] = None
        na[field] = "not_supported"
    if "lost" in na.values():
        sample["state"] = "lost"
        na = {field: "lost" for field in na}
    sample.update({"mig": [], "processes": [], "na": na})  # nvidia-smi: no NVLink read
    return sample


def parse_query_csv(text):
    """GpuSample dicts from `smi_command()` output; never raises on odd text."""
    return [_sample_from_row(row) for row in parse_rows(text)]


def merge_remapped_rows(samples, text):
    """Fill the remap_* readings of `samples` (by GPU uuid) from `remap_command()` output."""
    by_uuid = {row[0]: row for row in _rows(text, len(REMAP_FIELDS))}
    for sample in samples:
        row = by_uuid.get(sample.get("uuid"))
        if row is None or sample.get("state") != "ok":
            continue
        for column, cell in zip(REMAP_FIELDS[1:], row[1:]):  # noqa: B905 (same width)
            field, kind = _REMAP_READINGS[column]
            value, reason = parse_value(cell, kind)
            sample[field] = value
            if reason is None:
                sample["na"].pop(field, None)
            else:
                sample["na"][field] = reason
    return samples


def _text(raw):
    value = raw.strip()
    return None if value.lower() in _NOT_SUPPORTED or value.startswith("[") else value


def inventory_from_csv(text):
    """GpuInventory dicts (index, uuid, name, serial, pci_bus_id, vbios, memory)."""
    inventory = []
    for row in parse_rows(text):
        memory_total_mib, _ = parse_value(row["memory.total"], "float")
        inventory.append(
            {
                "index": int(row["index"]),
                "uuid": _text(row["uuid"]),
                "name": _text(row["name"]),
                "serial": _text(row["serial"]),
                "pci_bus_id": normalize_bus_id(row["pci.bus_id"]) or _text(row["pci.bus_id"]),
                "vbios": _text(row["vbios_version"]),
                "memory_total_mib": memory_total_mib,
            }
        )
    return inventory


def driver_version_from_csv(text):
    """The driver version column of the first GPU row, or None."""
    for row in parse_rows(text):
        return _text(row["driver_version"])
    return None


def error_detail(text):
    """The first line that explains a failed query (driver not loaded, GPU lost...)."""
    for line in (text or "").splitlines():
        if _ERROR_LINES.search(line):
            return line.strip()[:200]
    return ""
