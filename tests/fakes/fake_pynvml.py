"""A configurable stand-in for the `pynvml` module, for tests on machines without a GPU.

Functions mirror the signatures of nvidia-ml-py 13 for the calls the agent makes and
return plausible H100-like values, built from pynvml's own ctypes structs where the real
module returns them. Failures raise the real `pynvml.NVMLError_*` classes; a call can be
made to hang on a `threading.Event` (to exercise the watchdog) or removed altogether
(to look like an older pynvml).
"""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pynvml as real

MIB = 1024 * 1024
RESERVED_MIB = 512
"""Memory the driver keeps for itself: in v1's `used`, not in v2's."""
NVMLError = real.NVMLError
NotSupported = real.NVMLError_NotSupported
GpuIsLost = real.NVMLError_GpuIsLost
FunctionNotFound = real.NVMLError_FunctionNotFound
LibraryNotFound = real.NVMLError_LibraryNotFound
Unknown = real.NVMLError_Unknown
Timeout = real.NVMLError_Timeout
NotFound = real.NVMLError_NotFound

# Field id -> (link, NVML_NVLINK_ERROR_DL_* counter) for the per-link NVLink error counter
# fields the real module names (links 0-11).
NVLINK_FIELDS = {
    getattr(real, f"NVML_FI_DEV_NVLINK_{name}_ERROR_COUNT_L{link}"): (link, counter)
    for name, counter in (
        ("REPLAY", real.NVML_NVLINK_ERROR_DL_REPLAY),
        ("RECOVERY", real.NVML_NVLINK_ERROR_DL_RECOVERY),
        ("CRC_FLIT", real.NVML_NVLINK_ERROR_DL_CRC_FLIT),
        ("CRC_DATA", real.NVML_NVLINK_ERROR_DL_CRC_DATA),
    )
    for link in range(12)
}


class FakeGpu:
    """One GPU's facts and readings; change attributes to change what NVML reports."""

    def __init__(self, index: int, **overrides):
        self.index = index
        self.uuid = f"GPU-5f1c0a3e-0000-4000-8000-{index:012d}"
        self.name = "NVIDIA H100 80GB HBM3"
        self.serial = f"165232400{index:04d}"
        self.bus_id = f"00000000:{0x18 + 0x10 * index:02X}:00.0"
        self.vbios = "96.00.74.00.0D"
        self.memory_total_mib = 81559
        self.memory_used_mib = 61000 + index
        self.util = (87, 41)
        self.temp_c = 54 + index
        self.power_mw = 612345
        self.power_limit_mw = 700000
        self.clocks_mhz = {real.NVML_CLOCK_SM: 1980, real.NVML_CLOCK_MEM: 2619}
        self.clock_reasons = 0x4 if index == 2 else 0x0
        self.ecc = {(0, 0): 3, (1, 0): 0, (0, 1): 120, (1, 1): 0}  # (type, counter) -> n
        self.remapped_rows = (2, 0, 0, 0)
        self.retired_pages: dict[int, list[int]] | None = None  # Hopper: not supported
        self.pcie_replay = 0
        self.fan_pct: int | None = None  # SXM parts have no fan of their own
        self.recovery_action = 0
        self.nvlinks = 18
        self.nvlink_down: set[int] = set()
        self.nvlink_errors: dict[tuple[int, int], int] = {(3, 2): 7}  # (link, counter) -> n
        self.nvlink_fields = True  # False: nvmlDeviceGetFieldValues refuses the counter ids
        self.mig_instances: list[dict] | None = None  # [{"gi":, "ci":, "uuid":, "used_mib":}]
        self.processes = [(4242 + index, 60000)]  # (host pid, used MiB)
        self.pcie = (5, 5, 16, 16)  # generation current, max; width current, max
        self.pstate = 0
        self.temp_thresholds_c = {real.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: 92,
                                  real.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: 87}  # fmt: skip
        self.energy_mj = 123_456_789 + index
        self.enc_dec_util = (0, 3)
        self.lost = False
        self.not_supported: set[str] = set()
        self.__dict__.update(overrides)


class FakeNvml:
    """The module double. Pass an instance wherever the agent takes `nvml`."""

    def __init__(self, gpus: list[FakeGpu] | None = None, count: int = 8):
        self.missing: set[str] = set()  # first: __getattribute__ reads it
        for name in dir(real):  # constants and error classes, as the real module has them
            value = getattr(real, name)
            constant = name.startswith(("NVML_", "nvmlEventType", "nvmlMemory_v")) and not callable(
                value
            )
            if constant or name.startswith("NVMLError"):
                setattr(self, name, value)
        self.gpus = gpus if gpus is not None else [FakeGpu(i) for i in range(count)]
        self.init_error: type[Exception] | None = None
        self.failures: dict[tuple[str, int | None], type[Exception]] = {}
        self.hangs: dict[tuple[str, int | None], threading.Event] = {}
        self.queued_xids: list[tuple[int, int]] = []  # (gpu index, xid)
        self.calls = 0
        self.counts: Counter[str] = Counter()  # calls by function name
        self.registered: set[int] = set()

    def __getattribute__(self, name):
        missing = object.__getattribute__(self, "missing")
        if missing and name in missing:
            raise AttributeError(name)  # an older pynvml without this function
        return object.__getattribute__(self, name)

    # -- configuration -----------------------------------------------------------------

    def fail(self, function: str, error: type[Exception], gpu: int | None = None) -> None:
        self.failures[(function, gpu)] = error

    def hang(self, function: str, gpu: int | None = None) -> threading.Event:
        """Make `function` block until the returned event is set."""
        release = threading.Event()
        self.hangs[(function, gpu)] = release
        return release

    def release_all(self) -> None:
        for event in self.hangs.values():
            event.set()

    def _enter(self, function: str, handle=None) -> None:
        self.calls += 1
        self.counts[function] += 1
        index = getattr(handle, "index", None)
        for key in ((function, index), (function, None)):
            if key in self.hangs:
                self.hangs[key].wait()
            if key in self.failures:
                raise self.failures[key]()
        if isinstance(handle, FakeGpu):
            if handle.lost:
                raise GpuIsLost()
            if function in handle.not_supported:
                raise NotSupported()

    # -- system ------------------------------------------------------------------------

    def nvmlInit(self):
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise self.init_error()

    def nvmlSystemGetDriverVersion(self):
        self._enter("nvmlSystemGetDriverVersion")
        return "550.90.07"

    def nvmlSystemGetNVMLVersion(self):
        self._enter("nvmlSystemGetNVMLVersion")
        return "12.550.90.07"

    def nvmlSystemGetCudaDriverVersion_v2(self):
        self._enter("nvmlSystemGetCudaDriverVersion_v2")
        return 12040

    def nvmlDeviceGetCount(self):
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    # -- inventory ---------------------------------------------------------------------

    def nvmlDeviceGetHandleByIndex(self, index):
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise real.NVMLError_InvalidArgument()
        gpu = self.gpus[index]
        self._enter("nvmlDeviceGetHandleByIndex", gpu)
        return gpu

    def nvmlDeviceGetIndex(self, handle):
        self._enter("nvmlDeviceGetIndex", handle)
        return handle.index

    def nvmlDeviceGetUUID(self, handle):
        self._enter("nvmlDeviceGetUUID", handle)
        return handle.uuid

    def nvmlDeviceGetName(self, handle):
        self._enter("nvmlDeviceGetName", handle)
        return handle.name.encode()  # older bindings return bytes

    def nvmlDeviceGetSerial(self, handle):
        self._enter("nvmlDeviceGetSerial", handle)
        return handle.serial

    def nvmlDeviceGetPciInfo(self, handle):
        self._enter("nvmlDeviceGetPciInfo", handle)
        info = real.nvmlPciInfo_t()
        info.busId = handle.bus_id.encode()
        return info

    def nvmlDeviceGetVbiosVersion(self, handle):
        self._enter("nvmlDeviceGetVbiosVersion", handle)
        return handle.vbios

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        """v2 (`version` given): `used` leaves out the driver's reserve; v1 counts it."""
        self._enter("nvmlDeviceGetMemoryInfo", handle)
        total = handle.memory_total_mib if isinstance(handle, FakeGpu) else handle.total_mib
        used = handle.memory_used_mib if isinstance(handle, FakeGpu) else handle.used_mib
        reserved = RESERVED_MIB if isinstance(handle, FakeGpu) else 0
        free = total - used - reserved
        if version:
            memory = real.c_nvmlMemory_v2_t()
            memory.reserved = reserved * MIB
        else:
            memory = real.c_nvmlMemory_t()
            used += reserved
        memory.total, memory.used, memory.free = total * MIB, used * MIB, free * MIB
        return memory

    # -- readings ----------------------------------------------------------------------

    def nvmlDeviceGetUtilizationRates(self, handle):
        self._enter("nvmlDeviceGetUtilizationRates", handle)
        util = real.c_nvmlUtilization_t()
        util.gpu, util.memory = handle.util
        return util

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self._enter("nvmlDeviceGetTemperature", handle)
        return handle.temp_c

    def nvmlDeviceGetPowerUsage(self, handle):
        self._enter("nvmlDeviceGetPowerUsage", handle)
        return handle.power_mw

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        self._enter("nvmlDeviceGetPowerManagementLimit", handle)
        return handle.power_limit_mw

    def nvmlDeviceGetClockInfo(self, handle, type):
        self._enter("nvmlDeviceGetClockInfo", handle)
        return handle.clocks_mhz[type]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle)
        return handle.clock_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        return handle.clock_reasons

    def nvmlDeviceGetTotalEccErrors(self, handle, errorType, counterType):
        self._enter("nvmlDeviceGetTotalEccErrors", handle)
        return handle.ecc[(errorType, counterType)]

    def nvmlDeviceGetRemappedRows(self, device):
        self._enter("nvmlDeviceGetRemappedRows", device)
        return device.remapped_rows

    def nvmlDeviceGetRetiredPages(self, device, sourceFilter):
        self._enter("nvmlDeviceGetRetiredPages", device)
        if device.retired_pages is None:
            raise NotSupported()
        return list(device.retired_pages.get(sourceFilter, []))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, device):
        self._enter("nvmlDeviceGetRetiredPagesPendingStatus", device)
        if device.retired_pages is None:
            raise NotSupported()
        return 0

    def nvmlDeviceGetPcieReplayCounter(self, handle):
        self._enter("nvmlDeviceGetPcieReplayCounter", handle)
        return handle.pcie_replay

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        self._enter("nvmlDeviceGetCurrPcieLinkGeneration", handle)
        return handle.pcie[0]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        self._enter("nvmlDeviceGetMaxPcieLinkGeneration", handle)
        return handle.pcie[1]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        self._enter("nvmlDeviceGetCurrPcieLinkWidth", handle)
        return handle.pcie[2]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        self._enter("nvmlDeviceGetMaxPcieLinkWidth", handle)
        return handle.pcie[3]

    def nvmlDeviceGetPerformanceState(self, handle):
        self._enter("nvmlDeviceGetPerformanceState", handle)
        return handle.pstate

    def nvmlDeviceGetTemperatureThreshold(self, handle, threshold):
        self._enter("nvmlDeviceGetTemperatureThreshold", handle)
        return handle.temp_thresholds_c[threshold]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._enter("nvmlDeviceGetTotalEnergyConsumption", handle)
        return handle.energy_mj

    def nvmlDeviceGetEncoderUtilization(self, handle):
        self._enter("nvmlDeviceGetEncoderUtilization", handle)
        return [handle.enc_dec_util[0], 167000]

    def nvmlDeviceGetDecoderUtilization(self, handle):
        self._enter("nvmlDeviceGetDecoderUtilization", handle)
        return [handle.enc_dec_util[1], 167000]

    def nvmlDeviceGetFanSpeed(self, handle):
        self._enter("nvmlDeviceGetFanSpeed", handle)
        if handle.fan_pct is None:
            raise NotSupported()
        return handle.fan_pct

    def nvmlDeviceGetFieldValues(self, handle, fieldIds):
        self._enter("nvmlDeviceGetFieldValues", handle)
        values = (real.c_nvmlFieldValue_t * len(fieldIds))()
        known = {
            real.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: handle.recovery_action,
            real.NVML_FI_DEV_NVLINK_LINK_COUNT: handle.nvlinks,
        }
        for slot, field_id in enumerate(fieldIds):
            field_id, scope = field_id if isinstance(field_id, tuple) else (field_id, 0)
            values[slot].fieldId, values[slot].scopeId = field_id, scope
            values[slot].valueType = real.NVML_VALUE_TYPE_UNSIGNED_INT
            link_counter = NVLINK_FIELDS.get(field_id)
            if field_id == real.NVML_FI_DEV_NVLINK_GET_STATE:
                readable = handle.nvlink_fields and scope < handle.nvlinks
                if not readable or "nvmlDeviceGetNvLinkState" in handle.not_supported:
                    values[slot].nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
                else:
                    values[slot].nvmlReturn = real.NVML_SUCCESS
                    down = scope in handle.nvlink_down
                    values[slot].value.uiVal = 0 if down else real.NVML_NVLINK_STATE_ACTIVE
            elif (
                link_counter is not None
                and handle.nvlink_fields
                and link_counter[0] < handle.nvlinks
            ):
                values[slot].valueType = real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                values[slot].nvmlReturn = real.NVML_SUCCESS
                values[slot].value.ullVal = handle.nvlink_errors.get(link_counter, 0)
            elif known.get(field_id) is None:
                values[slot].nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
            else:
                values[slot].nvmlReturn = real.NVML_SUCCESS
                values[slot].value.uiVal = known[field_id]
        return values

    def nvmlDeviceGetNvLinkState(self, device, link):
        self._enter("nvmlDeviceGetNvLinkState", device)
        if link >= device.nvlinks:
            raise NotSupported() if device.nvlinks == 0 else real.NVMLError_InvalidArgument()
        return (
            real.NVML_FEATURE_DISABLED if link in device.nvlink_down else real.NVML_FEATURE_ENABLED
        )

    def nvmlDeviceGetNvLinkErrorCounter(self, device, link, counter):
        self._enter("nvmlDeviceGetNvLinkErrorCounter", device)
        if link >= device.nvlinks:
            raise real.NVMLError_InvalidArgument()
        return device.nvlink_errors.get((link, counter), 0)

    def nvmlDeviceGetMigMode(self, device):
        self._enter("nvmlDeviceGetMigMode", device)
        mode = real.NVML_DEVICE_MIG_ENABLE if device.mig_instances else real.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, device):
        self._enter("nvmlDeviceGetMaxMigDeviceCount", device)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device, index):
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", device)
        instances = device.mig_instances or []
        if index >= len(instances):
            raise NotFound()
        item = instances[index]
        return SimpleNamespace(parent=device, total_mib=item.get("total_mib", 9856), **item)

    def nvmlDeviceGetGpuInstanceId(self, device):
        self._enter("nvmlDeviceGetGpuInstanceId", device.parent)
        return device.gi

    def nvmlDeviceGetComputeInstanceId(self, device):
        self._enter("nvmlDeviceGetComputeInstanceId", device.parent)
        return device.ci

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * MIB)
                for pid, mib in handle.processes]  # fmt: skip

    # -- events ------------------------------------------------------------------------

    def nvmlEventSetCreate(self):
        self._enter("nvmlEventSetCreate")
        return SimpleNamespace(kind="event-set")

    def nvmlDeviceRegisterEvents(self, handle, eventTypes, eventSet):
        self._enter("nvmlDeviceRegisterEvents", handle)
        self.registered.add(handle.index)

    def nvmlEventSetWait_v2(self, eventSet, timeoutms):
        self._enter("nvmlEventSetWait_v2")
        if not self.queued_xids:
            raise Timeout()
        index, xid = self.queued_xids.pop(0)
        return SimpleNamespace(
            device=self.gpus[index], eventType=real.nvmlEventTypeXidCriticalError, eventData=xid
        )
