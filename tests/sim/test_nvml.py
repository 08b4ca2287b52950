"""The simulated pynvml module speaks in the real module's constants and error classes."""

from __future__ import annotations

import pynvml
import pytest

from opsconsole.sim.nvml import SimNvml
from opsconsole.sim.world import SimFleet
from tests.support.sim import T0


@pytest.fixture
def nvml():
    host = SimFleet(1, seed=2, start_ts=T0).host("sg1-r01-n01")
    module = SimNvml(host)
    module.nvmlInit()
    module.host = host
    return module


def test_constants_and_error_classes_are_pynvml_s(nvml):
    assert nvml.NVML_TEMPERATURE_GPU == pynvml.NVML_TEMPERATURE_GPU
    assert nvml.NVMLError_GpuIsLost is pynvml.NVMLError_GpuIsLost
    assert nvml.nvmlClocksEventReasonSwPowerCap == 0x4
    with pytest.raises(AttributeError):
        nvml.nvmlDeviceGetBoardPartNumber  # noqa: B018 - absent functions read as unsupported


def test_calls_before_init_raise_uninitialized():
    host = SimFleet(1, seed=2, start_ts=T0).host("sg1-r01-n01")
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        SimNvml(host).nvmlDeviceGetCount()


def test_inventory_and_readings(nvml):
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetCount() == 8
    assert nvml.nvmlDeviceGetName(handle) == "NVIDIA H200"
    assert nvml.nvmlDeviceGetPciInfo(handle).busId == "00000000:19:00.0"
    assert nvml.nvmlDeviceGetMemoryInfo(handle).total == 143_771 * 1024 * 1024
    assert nvml.nvmlDeviceGetEnforcedPowerLimit(handle) == 700_000
    assert nvml.nvmlDeviceGetPowerUsage(handle) <= 700_000
    assert nvml.nvmlDeviceGetNvLinkState(handle, 17) == pynvml.NVML_FEATURE_ENABLED
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetNvLinkState(handle, 18)
    (field,) = nvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT])
    assert field.nvmlReturn == pynvml.NVML_SUCCESS and field.value.uiVal == 18


@pytest.mark.parametrize(
    "call",
    [
        lambda n, h: n.nvmlDeviceGetFanSpeed(h),
        lambda n, h: n.nvmlDeviceGetRetiredPages(h, 1),
        lambda n, h: n.nvmlDeviceGetRetiredPagesPendingStatus(h),
    ],
)
def test_what_an_sxm_h200_lacks_is_not_supported(nvml, call):
    with pytest.raises(pynvml.NVMLError_NotSupported):
        call(nvml, nvml.nvmlDeviceGetHandleByIndex(0))


def test_a_gpu_off_the_bus_raises_gpu_is_lost(nvml):
    handle = nvml.nvmlDeviceGetHandleByIndex(4)
    nvml.host.inject("xid79", gpu=4)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetHandleByIndex(4)
    assert nvml.nvmlDeviceGetCount() == 8


def test_event_wait_times_out_at_once_then_delivers_registered_xids(nvml):
    events = nvml.nvmlEventSetCreate()
    handle = nvml.nvmlDeviceGetHandleByIndex(2)
    nvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, events)
    with pytest.raises(pynvml.NVMLError_Timeout):
        nvml.nvmlEventSetWait_v2(events, 10_000)  # would block ten seconds on hardware
    nvml.host.inject("xid48", gpu=0)  # not registered: not delivered
    nvml.host.inject("xid48", gpu=2)
    data = nvml.nvmlEventSetWait_v2(events, 0)
    assert (data.device, data.eventType, data.eventData) == (handle, 0x8, 48)
    with pytest.raises(pynvml.NVMLError_Timeout):
        nvml.nvmlEventSetWait_v2(events, 0)
