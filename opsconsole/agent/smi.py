"""nvidia-smi as a fallback source: used when pynvml cannot start on a host, and by the
console's agentless mode, which runs the same query over SSH and parses it here.

Column names come from `nvidia-smi --help-query-gpu`. nvidia-smi rejects the whole query
when one name is unknown, so only long-lived names are used. Drivers before 535 know
only `clocks_throttle_reasons.active`; newer ones accept it as an alias of
`clocks_event_reasons.active`. Both spellings give the same column count, so the parser
reads either, and callers fall back to the legacy name when the new one is refused.
Remapped rows are not a --query-gpu property: they have their own query.

That fixed query is agentless mode's. The agent itself probes the field list once
(`--help-query-gpu`, see smi_reader.py), asks for the fields this driver knows with a
header line, and `parse_rows` reads such output by column name: a missing column reads as
not supported.
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
EXTRA_FIELDS = [
    "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
    "pcie.link.width.max", "pstate", "utilization.encoder", "utilization.decoder",
]  # fmt: skip
"""Asked for only when `nvidia-smi --help-query-gpu` lists them (see SmiReader.probe)."""
LEGACY_QUERY_FIELDS = [
    "clocks_throttle_reasons.active" if f == "clocks_event_reasons.active" else f
    for f in QUERY_FIELDS
]
REMAP_FIELDS = [
    "gpu_uuid", "remapped_rows.correctable", "remapped_rows.uncorrectable",
    "remapped_rows.pending", "remapped_rows.failure",
]  # fmt: skip
CSV_FORMAT = "--format=csv,noheader,nounits"
CSV_WITH_HEADER = "--format=csv,nounits"
"""The probed query prints its header, and is parsed by column name."""

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
    "pcie.link.gen.current": ("pcie_gen", "int"),
    "pcie.link.gen.max": ("pcie_gen_max", "int"),
    "pcie.link.width.current": ("pcie_width", "int"),
    "pcie.link.width.max": ("pcie_width_max", "int"),
    "pstate": ("pstate", "pstate"),
    "utilization.encoder": ("enc_util_pct", "float"),
    "utilization.decoder": ("dec_util_pct", "float"),
}
_ALIASES = {"clocks_throttle_reasons.active": "clocks_event_reasons.active"}
_REMAP_READINGS = {
    "remapped_rows.correctable": ("remap_corrected", "int"),
    "remapped_rows.uncorrectable": ("remap_uncorrected", "int"),
    "remapped_rows.pending": ("remap_pending", "bool"),
    "remapped_rows.failure": ("remap_failed", "bool"),
}
# Readings nvidia-smi's --query-gpu cannot give at all.
_NOT_QUERIED = ("pcie_replay", "recovery_action", "temp_slowdown_c", "temp_shutdown_c",
                "energy_mj")  # fmt: skip

_NOT_SUPPORTED = {"[n/a]", "n/a", "[not supported]", "not supported", ""}
_LOST = {"[unknown error]", "[gpu requires reset]", "[gpu is lost]", "unknown error"}
_INDEX = re.compile(r"^[0-9]{1,4}$")
_PSTATE = re.compile(r"^p([0-9]{1,2})$")
_UNIT = re.compile(r"\s*\[[^\]]*\]$")
_HELP_NAME = re.compile(r'"([a-z0-9_.]+)"')
_REFUSED_NAME = re.compile(r'Field "([^"]{1,80})" is not a valid field')
_LOST_LINE = re.compile(
    r"Unable to determine the device handle for GPU\s*([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:"
    r"[0-9A-Fa-f]{2}\.[0-7])"
)
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


def refused_name(output):
    """The field name nvidia-smi refused, or None."""
    match = _REFUSED_NAME.search(output or "")
    return None if match is None else match.group(1)


def help_query_command():
    return [NVIDIA_SMI, "--help-query-gpu"]


def query_names(help_text):
    """Field names `nvidia-smi --help-query-gpu` lists (lines that open with a quote)."""
    names = set()
    for line in (help_text or "").splitlines():
        if line.startswith('"'):
            names.update(_HELP_NAME.findall(line))
    return names


def probed_fields(names):
    """The query's fields this nvidia-smi knows, "index" first, in the protocol's order."""
    fields = []
    for field in ["index", *QUERY_FIELDS[1:], *EXTRA_FIELDS]:
        if field == "clocks_event_reasons.active" and field not in names:
            field = "clocks_throttle_reasons.active"
        if field in names:
            fields.append(field)
    return fields


def query_command(fields):
    """argv of a query by column name: the header comes back and names the columns."""
    return [NVIDIA_SMI, "--query-gpu=" + ",".join(fields), CSV_WITH_HEADER]


def lost_bus_ids(text):
    """Bus ids of GPUs nvidia-smi could not get a handle for (fallen off the bus)."""
    return [normalize_bus_id(bus) for bus in _LOST_LINE.findall(text or "")]


def _rows(text, width):
    rows = []
    for line in (text or "").splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) == width:
            rows.append(cells)
    return rows


def _header(text):
    """Column names from a header line ("index, memory.used [MiB], ..."), else None."""
    for line in (text or "").splitlines():
        cells = [_UNIT.sub("", cell.strip()) for cell in line.split(",")]
        if cells and cells[0] == "index":
            return [_ALIASES.get(cell, cell) for cell in cells]
    return None


def parse_rows(text):
    """The GPU rows of a query's output as {column name: raw text}; other lines skipped.

    Output with a header line is read by column name, whatever columns it has; without
    one, as the fixed QUERY_FIELDS. A GPU index seen twice (the output of two queries run
    one after the other) keeps its first row only.
    """
    columns = _header(text) or QUERY_FIELDS
    rows, seen = [], set()
    for cells in _rows(text, len(columns)):
        if _INDEX.match(cells[0]) and int(cells[0]) not in seen:
            seen.add(int(cells[0]))
            rows.append(dict(zip(columns, cells)))  # noqa: B905 (widths checked above)
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
    if kind == "pstate" and _PSTATE.match(low):
        return int(low[1:]), None
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
    bus = row.get("pci.bus_id", "")
    sample = {
        "index": int(row["index"]),
        "uuid": row.get("uuid") or None,
        "pci_bus_id": normalize_bus_id(bus) or _text(bus),
        "state": "ok",
    }
    na = {}
    for column, (field, kind) in _READINGS.items():
        value, reason = parse_value(row.get(column, ""), kind)  # a column not asked: n/a
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
        memory_total_mib, _ = parse_value(row.get("memory.total", ""), "float")
        bus = row.get("pci.bus_id", "")
        inventory.append(
            {
                "index": int(row["index"]),
                "uuid": _text(row.get("uuid", "")),
                "name": _text(row.get("name", "")),
                "serial": _text(row.get("serial", "")),
                "pci_bus_id": normalize_bus_id(bus) or _text(bus),
                "vbios": _text(row.get("vbios_version", "")),
                "memory_total_mib": memory_total_mib,
            }
        )
    return inventory


def driver_version_from_csv(text):
    """The driver version column of the first GPU row, or None."""
    for row in parse_rows(text):
        return _text(row.get("driver_version", ""))
    return None


def error_detail(text):
    """The first line that explains a failed query (driver not loaded, GPU lost...)."""
    for line in (text or "").splitlines():
        if _ERROR_LINES.search(line):
            return line.strip()[:200]
    return ""
