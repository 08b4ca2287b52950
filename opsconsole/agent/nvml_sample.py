"""One GPU's fast readings through NVML, as a protocol GpuSample dict.

Runs inside one watchdog call per GPU. Each reading is tried on its own: a feature the
GPU lacks costs that field only. A lost GPU (GpuIsLost, Unknown) abandons the rest, and
the caller reports the whole GPU as lost.
"""

import math

from .nvml_errors import FUNCTION_NOT_FOUND, GpuLost, as_text, classify, code_of, field_value

MIB = 1024.0 * 1024.0
MAX_PROCESSES = 64
MAX_COUNTER = 2**63 - 1

READING_FIELDS = (
    "util_gpu_pct", "util_mem_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w",
    "power_limit_w", "sm_clock_mhz", "mem_clock_mhz", "clock_event_reasons",
    "ecc_volatile_corrected", "ecc_volatile_uncorrected", "ecc_aggregate_corrected",
    "ecc_aggregate_uncorrected", "remap_corrected", "remap_uncorrected", "remap_pending",
    "remap_failed", "retired_pages_sbe", "retired_pages_dbe", "retired_pages_pending",
    "pcie_replay", "fan_pct", "recovery_action", "energy_mj",
)  # fmt: skip

# (GpuSample key, NVML error counter constant, its value in nvml.h, the per-link field id
# prefix of nvmlDeviceGetFieldValues: "..._L0" to "..._L11" where the binding has them)
NVLINK_COUNTERS = (
    ("replay_errors", "NVML_NVLINK_ERROR_DL_REPLAY", 0, "NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_L"),
    ("recovery_errors", "NVML_NVLINK_ERROR_DL_RECOVERY", 1,
     "NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_L"),
    ("crc_flit_errors", "NVML_NVLINK_ERROR_DL_CRC_FLIT", 2,
     "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L"),
    ("crc_data_errors", "NVML_NVLINK_ERROR_DL_CRC_DATA", 3,
     "NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_L"),
)  # fmt: skip


def empty_gpu(index, uuid, state, reason):
    """A GPU with every reading null for one reason: lost, unresponsive, error."""
    sample = {"index": index, "uuid": uuid, "state": state}
    sample.update(dict.fromkeys(READING_FIELDS))
    sample.update({"mig": [], "processes": []})  # no "nvlink": not read
    sample["na"] = dict.fromkeys(READING_FIELDS, reason)
    return sample


def const(nvml, name, default):
    """A pynvml constant by name, with nvml.h's value for older bindings that lack it."""
    return getattr(nvml, name, default)


def call_first(nvml, names, *args):
    """Call the first of `names` that both this pynvml and this driver have.

    Newer names come first. A binding may lack a function (AttributeError) or have it
    while the driver does not (FunctionNotFound; pynvml's NVMLLibraryMismatchError for
    unversioned names): either way the next name is tried, and the last refusal raised.
    """
    refusal = AttributeError(names[0])
    for name in names:
        fn = getattr(nvml, name, None)
        if fn is None:
            continue
        try:
            return fn(*args)
        except Exception as exc:
            if code_of(exc) != FUNCTION_NOT_FOUND and not _mismatch(exc):
                raise
            refusal = exc
    raise refusal


def _mismatch(exc):
    return type(exc).__name__ == "NVMLLibraryMismatchError"


class _Reader:
    def __init__(self, nvml, handle):
        self.nvml = nvml
        self.handle = handle
        self.sample = {}
        self.na = {}

    def read(self, fields, names, convert, *args):
        """Call the first NVML function of `names`; spread convert(result) over fields."""
        try:
            values = convert(call_first(self.nvml, names, self.handle, *args))
        except Exception as exc:
            reason = classify(exc)
            if reason == "lost":
                raise GpuLost() from None
            for field in fields:
                self.sample[field] = None
                self.na[field] = reason
            return
        if len(fields) == 1:
            values = (values,)
        for field, value in zip(fields, values):  # noqa: B905 (strict= is Python 3.10+)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
                self.na[field] = "error: not a finite number"
            elif type(value) is int and value > MAX_COUNTER:  # an NVML "not available" sentinel
                value = None
                self.na[field] = "not_supported"
            self.sample[field] = value


def _float(value):
    return float(value)


def read_gpu(nvml, gpu, fs=None, read_counters=True):
    """GpuSample dict for `gpu` (an object with index, uuid, handle, links and
    nvlink_counters, the cache of its NVLink error counters).

    Link up/down state is read every time; the per-link error counters only when
    `read_counters` is true or nothing is cached yet, else the cached ones are sent.
    """
    if gpu.handle is None:  # NVML gave no handle at inventory time
        reason = gpu.reason or "lost"
        return empty_gpu(gpu.index, gpu.uuid, "lost" if reason == "lost" else "error", reason)
    reader = _Reader(nvml, gpu.handle)
    try:
        _read_readings(reader, nvml)
        counters = None if read_counters else gpu.nvlink_counters
        if counters is None:
            if getattr(gpu, "nvlink_fields", None) is None:
                gpu.nvlink_fields = nvlink_fields(nvml, gpu.links)
            counters = read_nvlink_counters(nvml, gpu.handle, gpu.links, gpu.nvlink_fields)
            gpu.nvlink_counters = counters
        nvlink = read_nvlink(nvml, gpu.handle, gpu.links, counters)
        mig = read_mig(nvml, gpu.handle)
        processes = read_processes(nvml, gpu.handle, fs, reader.na)
    except GpuLost:
        gpu.nvlink_counters = None  # read afresh when it comes back
        return empty_gpu(gpu.index, gpu.uuid, "lost", "lost")
    sample = {"index": gpu.index, "uuid": gpu.uuid, "state": "ok"}
    sample.update(reader.sample)
    if nvlink is not None:  # a GPU without NVLink sends none
        sample["nvlink"] = nvlink
    sample.update({"mig": mig, "processes": processes, "na": reader.na})
    return sample


def _read_readings(r, nvml):
    ecc_corr = const(nvml, "NVML_MEMORY_ERROR_TYPE_CORRECTED", 0)
    ecc_unc = const(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1)
    volatile = const(nvml, "NVML_VOLATILE_ECC", 0)
    aggregate = const(nvml, "NVML_AGGREGATE_ECC", 1)
    ecc = ("nvmlDeviceGetTotalEccErrors",)
    r.read(
        ("util_gpu_pct", "util_mem_pct"),
        ("nvmlDeviceGetUtilizationRates",),
        lambda u: (float(u.gpu), float(u.memory)),
    )
    r.read(
        ("mem_used_mib", "mem_total_mib"),
        ("nvmlDeviceGetMemoryInfo",),
        lambda m: (m.used / MIB, m.total / MIB),
    )
    r.read(
        ("temp_c",),
        ("nvmlDeviceGetTemperature", "nvmlDeviceGetTemperatureV"),  # the first leaves in CUDA 14
        _float,
        const(nvml, "NVML_TEMPERATURE_GPU", 0),
    )
    r.read(("power_w",), ("nvmlDeviceGetPowerUsage",), lambda mw: mw / 1000.0)
    r.read(("power_limit_w",), ("nvmlDeviceGetPowerManagementLimit",), lambda mw: mw / 1000.0)
    r.read(("energy_mj",), ("nvmlDeviceGetTotalEnergyConsumption",), int)
    r.read(("sm_clock_mhz",), ("nvmlDeviceGetClockInfo",), _float, const(nvml, "NVML_CLOCK_SM", 1))
    r.read(
        ("mem_clock_mhz",), ("nvmlDeviceGetClockInfo",), _float, const(nvml, "NVML_CLOCK_MEM", 2)
    )
    r.read(
        ("clock_event_reasons",),
        ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
        int,
    )
    r.read(("ecc_volatile_corrected",), ecc, int, ecc_corr, volatile)
    r.read(("ecc_volatile_uncorrected",), ecc, int, ecc_unc, volatile)
    r.read(("ecc_aggregate_corrected",), ecc, int, ecc_corr, aggregate)
    r.read(("ecc_aggregate_uncorrected",), ecc, int, ecc_unc, aggregate)
    r.read(
        ("remap_corrected", "remap_uncorrected", "remap_pending", "remap_failed"),
        ("nvmlDeviceGetRemappedRows",),
        lambda rows: (int(rows[0]), int(rows[1]), bool(rows[2]), bool(rows[3])),
    )
    sbe = const(nvml, "NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS", 0)
    dbe = const(nvml, "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR", 1)
    r.read(("retired_pages_sbe",), ("nvmlDeviceGetRetiredPages",), len, sbe)
    r.read(("retired_pages_dbe",), ("nvmlDeviceGetRetiredPages",), len, dbe)
    r.read(("retired_pages_pending",), ("nvmlDeviceGetRetiredPagesPendingStatus",), bool)
    r.read(("pcie_replay",), ("nvmlDeviceGetPcieReplayCounter",), int)
    r.read(("fan_pct",), ("nvmlDeviceGetFanSpeed",), _float)
    recovery = getattr(nvml, "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION", None)
    if recovery is None:
        r.sample["recovery_action"] = None
        r.na["recovery_action"] = "not_supported"
    else:
        r.read(
            ("recovery_action",),
            ("nvmlDeviceGetFieldValues",),
            lambda values: int(field_value(values[0])),
            [recovery],
        )


def _lost_or_none(exc):
    if classify(exc) == "lost":
        raise GpuLost() from None


def _optional(convert, fn, *args):
    """convert(fn(*args)), None when NVML refuses; a lost GPU still aborts."""
    try:
        value = fn(*args)
        return value if convert is None else convert(value)
    except Exception as exc:
        _lost_or_none(exc)
        return None


def read_nvlink(nvml, handle, links, counters=None):
    """Per-link state (one call per link) with the links' DL error counters, never summed
    across links, column-wise: {"up": [...], "replay_errors": [...], ...} where a list's
    position is the link number and None is "not read". None for a GPU without NVLink.
    `counters` is what read_nvlink_counters() returned, now or earlier."""
    if not links:
        return None
    width = max(links) + 1
    if counters is None or len(counters[COUNTER_KEYS[0]]) != width:
        counters = read_nvlink_counters(nvml, handle, links)
    enabled = const(nvml, "NVML_FEATURE_ENABLED", 1)
    get_state = nvml.nvmlDeviceGetNvLinkState
    up = [None] * width
    for link in links:
        try:
            up[link] = get_state(handle, link) == enabled
        except Exception as exc:
            _lost_or_none(exc)
    nvlink = {"up": up}
    nvlink.update(counters)  # the counter lists are never changed once read: shared
    return nvlink


COUNTER_KEYS = tuple(key for key, _, _, _ in NVLINK_COUNTERS)


def nvlink_fields(nvml, links):
    """[(link, counter key, field id)] of the per-link NVLink error counter fields the
    binding names (NVML numbers them for links 0-11 only)."""
    fields = []
    for link in links:
        for key, _, _, prefix in NVLINK_COUNTERS:
            field_id = getattr(nvml, "%s%d" % (prefix, link), None)
            if field_id is not None:
                fields.append((link, key, field_id))
    return fields


def _counter(value):
    value = int(value)
    return value if 0 <= value <= MAX_COUNTER else None


def read_nvlink_counters(nvml, handle, links, fields=None):
    """{counter key: [value or None, by link number]}, in the protocol's order.

    One nvmlDeviceGetFieldValues call covers every counter the binding has a field id for
    (`fields`, as nvlink_fields() gives them); a counter without one, a field NVML answers
    with an error, or a failed call falls back to nvmlDeviceGetNvLinkErrorCounter, one
    call per counter. A lost GPU aborts.
    """
    width = max(links) + 1 if links else 0
    out = {key: [None] * width for key in COUNTER_KEYS}
    read = set()  # (link, counter key) answered by the field values call
    wanted = nvlink_fields(nvml, links) if fields is None else fields
    get_fields = getattr(nvml, "nvmlDeviceGetFieldValues", None)
    if wanted and get_fields is not None:
        try:
            values = get_fields(handle, [field_id for _, _, field_id in wanted])
        except Exception as exc:
            _lost_or_none(exc)
            values = ()
        for (link, key, _), field in zip(wanted, values):  # noqa: B905 (Python 3.8)
            try:
                out[key][link] = _counter(field_value(field))
            except Exception:  # this field failed: read it the slow way below
                continue
            read.add((link, key))
    get_counter = getattr(nvml, "nvmlDeviceGetNvLinkErrorCounter", None)
    if get_counter is None:
        return out
    for link in links:
        for key, name, default, _ in NVLINK_COUNTERS:
            if (link, key) in read:
                continue
            try:
                out[key][link] = _counter(get_counter(handle, link, const(nvml, name, default)))
            except Exception as exc:
                _lost_or_none(exc)
    return out


def read_mig(nvml, handle):
    """MIG instances (ids, uuid, memory) when MIG mode is on. NVML has no per-instance
    utilisation, so none is reported and its absence is not an error."""
    try:
        current = nvml.nvmlDeviceGetMigMode(handle)[0]
        if current != const(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
            return []
        count = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except Exception as exc:
        _lost_or_none(exc)
        return []
    instances = []
    for slot in range(count):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            entry = {"gi": int(nvml.nvmlDeviceGetGpuInstanceId(mig))}
        except Exception as exc:  # NotFound: an empty slot
            _lost_or_none(exc)
            continue
        entry["ci"] = _optional(int, nvml.nvmlDeviceGetComputeInstanceId, mig)
        entry["uuid"] = _optional(as_text, nvml.nvmlDeviceGetUUID, mig)
        memory = _optional(None, nvml.nvmlDeviceGetMemoryInfo, mig)
        entry["mem_used_mib"] = None if memory is None else memory.used / MIB
        entry["mem_total_mib"] = None if memory is None else memory.total / MIB
        instances.append(entry)
    return instances


_PROCESS_FUNCTIONS = (
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetComputeRunningProcesses",
)


def read_processes(nvml, handle, fs, na):
    """Compute processes with host pids and memory; names from /proc/PID/comm."""
    try:
        running = call_first(nvml, _PROCESS_FUNCTIONS, handle)
    except Exception as exc:
        _lost_or_none(exc)
        na["processes"] = classify(exc)
        return []
    processes = []
    for proc in list(running)[:MAX_PROCESSES]:
        try:
            pid = int(proc.pid)
        except (AttributeError, TypeError, ValueError):
            continue
        used = getattr(proc, "usedGpuMemory", None)
        name = fs.read("/proc/%d/comm" % pid, 256) if fs is not None else None
        processes.append(
            {
                "pid": pid,
                "mem_used_mib": None if used is None else used / MIB,
                "name": name or None,
            }
        )
    return processes
