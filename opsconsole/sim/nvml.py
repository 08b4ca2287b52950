"""A pynvml stand-in for one simulated host, handed to the real agent's NVML reader.

It answers the functions the agent calls from the host's state, with the real module's
constants and the real `pynvml.NVMLError_*` classes, so error handling is exercised as on
hardware: fans and page retirement are NotSupported on an SXM H200, a GPU that fell off
the bus raises GpuIsLost (its index still counts, as NVML's does until the driver is
reloaded), an empty event queue raises Timeout at once, and while `driver_hang` is active
every call blocks, as a wedged driver's ioctl does.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, NoReturn

import pynvml as _pynvml  # no stubs, no py.typed: pyproject lets mypy skip it

from opsconsole.sim import hardware as hw
from opsconsole.sim.world import SimHost

MIB = 1024 * 1024
RESERVED_MIB = 512
"""Memory the driver keeps for itself (in NVML v1's `used`, not in v2's)."""
PCIE_GEN = 5
PCIE_WIDTH = 16
HANG_WAIT_S = 3600.0
"""A hung call returns after this long at the latest, so a forgotten hang cannot pin a
thread for ever; the agent's watchdog gives up on it long before."""


@dataclass(slots=True, eq=False)
class SimHandle:
    """An nvmlDevice_t: identity matters (the agent compares handles), not contents."""

    gpu: hw.SimGpu


_NO_INSTANCE = 0xFFFFFFFF
"""gpuInstanceId / computeInstanceId of a process or event outside MIG."""


@dataclass(slots=True)
class _EventSet:
    cursor: int
    devices: dict[int, int]
    """GPU index -> registered event type mask."""


class _Value:
    """A c_nvmlValue_t union: every member holds the number. Built for every field of
    every nvmlDeviceGetFieldValues call (48 NVLink counters per GPU), so it stores the
    number once and reads it back per member."""

    __slots__ = ("_number",)

    def __init__(self, number: int = 0):
        self._number = number

    @property
    def dVal(self) -> float:
        return float(self._number)

    uiVal = ulVal = ullVal = sllVal = siVal = usVal = property(lambda self: self._number)


@dataclass(slots=True)
class _FieldValue:
    """An nvmlFieldValue_t (member names as in nvml.h)."""

    fieldId: int
    scopeId: int
    timestamp: int
    latencyUsec: int
    valueType: int
    nvmlReturn: int
    value: _Value


def _raise(error_class: type[_pynvml.NVMLError]) -> NoReturn:
    raise error_class()


_NVLINK_COUNTERS = ("replay_errors", "recovery_errors", "crc_flit_errors", "crc_data_errors")
"""NvLinkState attributes by NVML_NVLINK_ERROR_DL_* value."""

_NVLINK_FIELD_PREFIXES = {
    "replay_errors": "NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_L",
    "recovery_errors": "NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_L",
    "crc_flit_errors": "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L",
    "crc_data_errors": "NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_L",
}
_NVLINK_FIELDS: dict[int, tuple[int, str]] = {
    getattr(_pynvml, f"{prefix}{link}"): (link, attr)
    for attr, prefix in _NVLINK_FIELD_PREFIXES.items()
    for link in range(hw.GPU_NVLINKS)
    if hasattr(_pynvml, f"{prefix}{link}")
}
"""Field id -> (link, NvLinkState attribute) for the per-link NVLink error counter fields
nvmlDeviceGetFieldValues answers (NVML numbers them for links 0-11 only)."""


_LINK_STATE_FIELD = _pynvml.NVML_FI_DEV_NVLINK_GET_STATE
"""Per-link state, scoped by link number: all 18 links in one call."""


class SimNvml:
    """Module-like object: `SimNvml(host).nvmlDeviceGetCount()` and so on."""

    def __init__(self, host: SimHost):
        self._host = host
        self._handles = [SimHandle(gpu) for gpu in host.gpus]
        self._init_count = 0

    # -- plumbing -----------------------------------------------------------------------

    def _call(self) -> None:
        if self._host.driver_hung:
            self._host.driver_released.wait(HANG_WAIT_S)
        if self._init_count <= 0:
            _raise(_pynvml.NVMLError_Uninitialized)

    def _gpu(self, handle: SimHandle) -> hw.SimGpu:
        """The GPU behind a handle, after the checks every device call makes. Inlined
        _call(): this runs about a thousand times per host per sample."""
        if self._host.driver_hung:
            self._host.driver_released.wait(HANG_WAIT_S)
        if self._init_count <= 0:
            _raise(_pynvml.NVMLError_Uninitialized)
        gpu = handle.gpu
        if gpu.lost:
            _raise(_pynvml.NVMLError_GpuIsLost)
        return gpu

    # -- library and system -------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self._host.driver_hung:
            self._host.driver_released.wait(HANG_WAIT_S)
        self._init_count += 1

    def nvmlShutdown(self) -> None:
        self._call()
        self._init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._call()
        return self._host.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._call()
        return self._host.nvml_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._call()
        return self._host.cuda_driver_version

    nvmlSystemGetCudaDriverVersion_v2 = nvmlSystemGetCudaDriverVersion

    # -- inventory ------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._call()
        return len(self._handles)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimHandle:
        self._call()
        if not 0 <= index < len(self._handles):
            _raise(_pynvml.NVMLError_InvalidArgument)
        handle = self._handles[index]
        if handle.gpu.lost:  # nvidia-smi: "Unable to determine the device handle"
            _raise(_pynvml.NVMLError_GpuIsLost)
        return handle

    def nvmlDeviceGetIndex(self, handle: SimHandle) -> int:
        return self._gpu(handle).index

    def nvmlDeviceGetUUID(self, handle: SimHandle) -> str:
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: SimHandle) -> str:
        self._gpu(handle)
        return hw.GPU_NAME

    def nvmlDeviceGetSerial(self, handle: SimHandle) -> str:
        return self._gpu(handle).serial

    def nvmlDeviceGetPciInfo(self, handle: SimHandle) -> types.SimpleNamespace:
        bus_id = self._gpu(handle).pci_bus_id
        return types.SimpleNamespace(
            busId=bus_id, busIdLegacy=bus_id[4:], bus=int(bus_id[9:11], 16)
        )

    def nvmlDeviceGetVbiosVersion(self, handle: SimHandle) -> str:
        self._gpu(handle)
        return hw.GPU_VBIOS

    def nvmlDeviceGetMigMode(self, handle: SimHandle) -> list[int]:
        self._gpu(handle)
        return [_pynvml.NVML_DEVICE_MIG_DISABLE, _pynvml.NVML_DEVICE_MIG_DISABLE]

    # -- fast readings ------------------------------------------------------------------

    def nvmlDeviceGetMemoryInfo(
        self, handle: SimHandle, version: int | None = None
    ) -> types.SimpleNamespace:
        """v2 (`version` given) leaves the driver's reserve out of `used`; v1 counts it."""
        gpu = self._gpu(handle)
        total = hw.GPU_MEMORY_TOTAL_MIB * MIB
        used = int(gpu.mem_used_mib * MIB)
        reserved = RESERVED_MIB * MIB
        free = total - used - reserved
        if version:
            return types.SimpleNamespace(total=total, used=used, free=free, reserved=reserved)
        return types.SimpleNamespace(total=total, used=used + reserved, free=free)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: SimHandle) -> int:
        self._gpu(handle)
        return PCIE_GEN

    nvmlDeviceGetMaxPcieLinkGeneration = nvmlDeviceGetCurrPcieLinkGeneration

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: SimHandle) -> int:
        self._gpu(handle)
        return PCIE_WIDTH

    nvmlDeviceGetMaxPcieLinkWidth = nvmlDeviceGetCurrPcieLinkWidth

    def nvmlDeviceGetPerformanceState(self, handle: SimHandle) -> int:
        return 0 if self._gpu(handle).util_gpu_pct >= 1.0 else 1

    def nvmlDeviceGetTemperatureThreshold(self, handle: SimHandle, threshold: int) -> int:
        self._gpu(handle)
        if threshold == _pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            return int(hw.THERMAL_SLOWDOWN_C)
        if threshold == _pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN:
            return int(hw.THERMAL_SLOWDOWN_C) + 5
        _raise(_pynvml.NVMLError_NotSupported)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: SimHandle) -> int:
        return int(self._gpu(handle).energy_mj)

    def nvmlDeviceGetEncoderUtilization(self, handle: SimHandle) -> list[int]:
        self._gpu(handle)
        return [0, 167000]

    nvmlDeviceGetDecoderUtilization = nvmlDeviceGetEncoderUtilization

    def nvmlDeviceGetUtilizationRates(self, handle: SimHandle) -> types.SimpleNamespace:
        gpu = self._gpu(handle)
        return types.SimpleNamespace(gpu=int(gpu.util_gpu_pct), memory=int(gpu.util_mem_pct))

    def nvmlDeviceGetTemperature(self, handle: SimHandle, sensor: int) -> int:
        gpu = self._gpu(handle)
        if sensor != _pynvml.NVML_TEMPERATURE_GPU:
            _raise(_pynvml.NVMLError_NotSupported)
        return round(gpu.temp_c)

    def nvmlDeviceGetPowerUsage(self, handle: SimHandle) -> int:
        return int(self._gpu(handle).power_w * 1000)

    def nvmlDeviceGetPowerManagementLimit(self, handle: SimHandle) -> int:
        self._gpu(handle)
        return int(hw.GPU_POWER_LIMIT_W * 1000)

    nvmlDeviceGetEnforcedPowerLimit = nvmlDeviceGetPowerManagementLimit

    def nvmlDeviceGetClockInfo(self, handle: SimHandle, clock_type: int) -> int:
        gpu = self._gpu(handle)
        if clock_type in (_pynvml.NVML_CLOCK_SM, _pynvml.NVML_CLOCK_GRAPHICS):
            return int(gpu.sm_clock_mhz)
        if clock_type == _pynvml.NVML_CLOCK_MEM:
            return int(gpu.mem_clock_mhz)
        _raise(_pynvml.NVMLError_InvalidArgument)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimHandle) -> int:
        return self._gpu(handle).clock_event_reasons

    nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksEventReasons

    def nvmlDeviceGetTotalEccErrors(
        self, handle: SimHandle, error_type: int, counter_type: int
    ) -> int:
        gpu = self._gpu(handle)
        corrected = error_type == _pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
        if counter_type == _pynvml.NVML_VOLATILE_ECC:
            return gpu.ecc_volatile_corrected if corrected else gpu.ecc_volatile_uncorrected
        return gpu.ecc_aggregate_corrected if corrected else gpu.ecc_aggregate_uncorrected

    def nvmlDeviceGetRemappedRows(self, handle: SimHandle) -> tuple[int, int, int, int]:
        gpu = self._gpu(handle)
        return (gpu.remap_corrected, gpu.remap_uncorrected, int(gpu.remap_pending),
                int(gpu.remap_failed))  # fmt: skip

    def nvmlDeviceGetRetiredPages(self, handle: SimHandle, cause: int) -> list[int]:
        """Hopper replaced page retirement with row remapping."""
        self._gpu(handle)
        _raise(_pynvml.NVMLError_NotSupported)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: SimHandle) -> int:
        self._gpu(handle)
        _raise(_pynvml.NVMLError_NotSupported)

    def nvmlDeviceGetPcieReplayCounter(self, handle: SimHandle) -> int:
        return self._gpu(handle).pcie_replay

    def nvmlDeviceGetFanSpeed(self, handle: SimHandle) -> int:
        """SXM boards have no fan of their own: the chassis cools them."""
        self._gpu(handle)
        _raise(_pynvml.NVMLError_NotSupported)

    def nvmlDeviceGetFieldValues(
        self, handle: SimHandle, field_ids: list[int | tuple[int, int]]
    ) -> list[Any]:
        gpu = self._gpu(handle)
        known = {
            _pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT: len(gpu.nvlinks),
            _pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION: gpu.recovery_action,
        }
        timestamp = int(self._host.now_ts * 1e6)
        links = gpu.nvlinks
        out = []
        for field_id in field_ids:
            fid, scope = field_id if isinstance(field_id, tuple) else (field_id, 0)
            link_field = _NVLINK_FIELDS.get(fid)
            if fid == _LINK_STATE_FIELD and scope < len(links):
                value = _pynvml.NVML_NVLINK_STATE_ACTIVE if links[scope].up else 0
                value_type = _pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            elif link_field is not None and link_field[0] < len(links):
                value = getattr(links[link_field[0]], link_field[1])
                value_type = _pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
            else:
                value = known.get(fid)
                value_type = _pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            ret = _pynvml.NVML_SUCCESS if value is not None else _pynvml.NVML_ERROR_NOT_SUPPORTED
            out.append(_FieldValue(fid, scope, timestamp, 0, value_type, ret, _Value(value or 0)))
        return out

    def nvmlDeviceGetNvLinkState(self, handle: SimHandle, link: int) -> int:
        gpu = self._gpu(handle)
        if not 0 <= link < len(gpu.nvlinks):
            _raise(_pynvml.NVMLError_InvalidArgument)
        return _pynvml.NVML_FEATURE_ENABLED if gpu.nvlinks[link].up else 0

    def nvmlDeviceGetNvLinkErrorCounter(self, handle: SimHandle, link: int, counter: int) -> int:
        """Called 4 x 18 x 8 times per sample: the checks are folded into one lookup."""
        gpu = self._gpu(handle)
        try:
            count: int = getattr(gpu.nvlinks[link], _NVLINK_COUNTERS[counter])
            return count
        except IndexError:
            pass
        if not 0 <= link < len(gpu.nvlinks):
            _raise(_pynvml.NVMLError_InvalidArgument)
        _raise(_pynvml.NVMLError_NotSupported)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimHandle) -> list[Any]:
        gpu = self._gpu(handle)
        return [
            types.SimpleNamespace(pid=pid, usedGpuMemory=int(mem_mib * MIB),
                                  gpuInstanceId=_NO_INSTANCE, computeInstanceId=_NO_INSTANCE)
            for pid, _, mem_mib in gpu.processes
        ]  # fmt: skip

    # -- events -------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> _EventSet:
        """Only events raised from now on are seen, as with NVML."""
        self._call()
        events = self._host.nvml_events
        return _EventSet(events[-1][0] if events else 0, {})

    def nvmlDeviceRegisterEvents(
        self, handle: SimHandle, event_types: int, event_set: _EventSet
    ) -> None:
        gpu = self._gpu(handle)
        event_set.devices[gpu.index] = event_set.devices.get(gpu.index, 0) | event_types

    def nvmlEventSetWait_v2(self, event_set: _EventSet, timeout_ms: int) -> types.SimpleNamespace:
        """The next registered event, or NVMLError_Timeout at once (never sleeps: the
        simulator serves many hosts from one thread)."""
        self._call()
        events = self._host.nvml_events
        start = max(0, event_set.cursor - events[0][0] + 1) if events else 0
        for seq, gpu_index, event_type, data in events[start:]:
            event_set.cursor = seq
            if event_set.devices.get(gpu_index, 0) & event_type:
                return types.SimpleNamespace(
                    device=self._handles[gpu_index],
                    eventType=event_type,
                    eventData=data,
                    gpuInstanceId=_NO_INSTANCE,
                    computeInstanceId=_NO_INSTANCE,
                )
        _raise(_pynvml.NVMLError_Timeout)

    nvmlEventSetWait = nvmlEventSetWait_v2

    def nvmlEventSetFree(self, event_set: _EventSet) -> None:
        event_set.devices.clear()


def _copy_constants() -> None:
    """Give SimNvml the real module's constants and NVMLError classes as class attributes
    (plain attribute hits: the agent looks constants up on every reading). Functions are
    not copied: one SimNvml lacks raises AttributeError, read as "not supported"."""
    for name, value in vars(_pynvml).items():
        constant = name.startswith(("NVML", "nvml")) and not callable(value)
        error_class = isinstance(value, type) and issubclass(value, _pynvml.NVMLError)
        if (constant or error_class) and not hasattr(SimNvml, name):
            setattr(SimNvml, name, value)


_copy_constants()
