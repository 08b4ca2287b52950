"""The agent in NVML mode, against the pynvml double, read back as the console reads it."""

from __future__ import annotations

import pynvml
import pytest

from opsconsole.agent.agent import Agent
from opsconsole.agent.nvml_sample import READING_FIELDS
from opsconsole.wire import Hello, Sample
from tests.agent.wire import roundtrip
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml, FunctionNotFound, GpuIsLost, Unknown


def make_agent(fake, fs, **kwargs) -> Agent:
    return Agent(nvml=fake, fs=fs, watchdog_timeout_s=kwargs.pop("timeout_s", 5.0), **kwargs)


def test_hello_then_sample_decode_with_the_consoles_strict_decoder(fake_nvml, host_fs):
    agent = make_agent(fake_nvml, host_fs)
    hello, sample = (roundtrip(message) for message in agent.tick())
    assert isinstance(hello, Hello) and isinstance(sample, Sample)
    assert hello.mode == "nvml"
    assert hello.host.hostname == "sg1-r01-n01" and hello.host.os == "Ubuntu 22.04.4 LTS"
    assert hello.host.driver_version == "550.90.07" and hello.host.cuda_version == "12.4"
    assert {"nvml", "events", "ib", "eth"} <= set(hello.capabilities)
    assert [gpu.index for gpu in hello.gpus] == list(range(8))
    assert hello.gpus[1].pci_bus_id == "0000:28:00.0"
    assert hello.gpus[0].name == "NVIDIA H100 80GB HBM3"  # bytes from NVML, str on the wire
    assert sample.driver == "ok" and sample.gpu_count == 8 and sample.seq == 1
    gpu = sample.gpus[0]
    assert gpu.state == "ok" and gpu.power_w == pytest.approx(612.345)
    assert gpu.mem_used_mib == 61000 and gpu.ecc_aggregate_corrected == 120
    assert sample.gpus[2].clock_event_reasons == 4
    assert sample.ib[0].state == "ACTIVE" and sample.load.load1 == 12.52
    assert sample.collect_ms is not None and sample.collect_ms >= 0
    assert [message["type"] for message in agent.tick()] == ["sample"]


def test_not_supported_is_null_with_a_reason_never_zero(fake_nvml, host_fs):
    sample = make_agent(fake_nvml, host_fs).sample()
    gpu = sample["gpus"][0]
    for field in ("fan_pct", "retired_pages_sbe", "retired_pages_dbe", "retired_pages_pending"):
        assert gpu[field] is None
        assert gpu["na"][field] == "not_supported"
    assert gpu["state"] == "ok"
    roundtrip(sample)


def test_an_older_pynvml_missing_functions_reads_as_not_supported(host_fs):
    fake = FakeNvml()
    fake.missing = {"nvmlDeviceGetCurrentClocksEventReasons"}
    gpu = make_agent(fake, host_fs).sample()["gpus"][2]
    assert gpu["clock_event_reasons"] == 4  # the older name still answers

    fake.missing |= {"nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetPcieReplayCounter"}
    del fake.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION
    gpu = make_agent(fake, host_fs).sample()["gpus"][2]
    for field in ("clock_event_reasons", "pcie_replay", "recovery_action"):
        assert gpu[field] is None and gpu["na"][field] == "not_supported"


def test_a_driver_older_than_the_binding_falls_back_to_older_functions(fake_nvml, host_fs):
    # pynvml 13 has nvmlDeviceGetCurrentClocksEventReasons; a driver before 535 does not.
    fake_nvml.fail("nvmlDeviceGetCurrentClocksEventReasons", FunctionNotFound)
    fake_nvml.fail("nvmlDeviceGetTemperature", FunctionNotFound)
    fake_nvml.nvmlDeviceGetTemperatureV = lambda handle, sensor: 61  # a CUDA 14 era driver
    gpu = make_agent(fake_nvml, host_fs).sample()["gpus"][2]
    assert gpu["clock_event_reasons"] == 4
    assert gpu["temp_c"] == 61


def test_function_not_found_in_the_driver_is_not_supported(fake_nvml, host_fs):
    fake_nvml.fail("nvmlDeviceGetRemappedRows", FunctionNotFound)
    gpu = make_agent(fake_nvml, host_fs).sample()["gpus"][0]
    for field in ("remap_corrected", "remap_uncorrected", "remap_pending", "remap_failed"):
        assert gpu[field] is None and gpu["na"][field] == "not_supported"


def test_other_nvml_errors_name_the_error_and_keep_the_gpu_ok(fake_nvml, host_fs):
    fake_nvml.fail("nvmlDeviceGetPowerUsage", pynvml.NVMLError_NoPermission, gpu=1)
    sample = make_agent(fake_nvml, host_fs).sample()
    gpu = sample["gpus"][1]
    assert gpu["power_w"] is None and gpu["na"]["power_w"] == "error: Insufficient Permissions"
    assert gpu["state"] == "ok" and sample["gpus"][0]["power_w"] is not None
    roundtrip(sample)


@pytest.mark.parametrize("error", [GpuIsLost, Unknown])
def test_a_lost_gpu_marks_that_gpu_only(fake_nvml, host_fs, error):
    agent = make_agent(fake_nvml, host_fs)
    fake_nvml.fail("nvmlDeviceGetTemperature", error, gpu=5)
    sample = agent.sample()
    lost = sample["gpus"][5]
    assert lost["state"] == "lost" and lost["uuid"] == fake_nvml.gpus[5].uuid
    assert all(lost[field] is None for field in READING_FIELDS)
    assert set(lost["na"].values()) == {"lost"}
    assert [gpu["state"] for gpu in sample["gpus"]].count("ok") == 7
    assert sample["driver"] == "ok"
    roundtrip(sample)


def test_a_gpu_lost_before_inventory_is_still_listed(host_fs):
    fake = FakeNvml()
    fake.gpus[3].lost = True
    agent = make_agent(fake, host_fs)
    hello, sample = agent.tick()
    assert hello["gpus"][3] == {"index": 3}
    assert sample["gpus"][3]["state"] == "lost" and sample["gpu_count"] == 8
    roundtrip(hello), roundtrip(sample)


def test_a_gpu_nvml_refuses_a_handle_for_is_an_error_not_lost(host_fs):
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetHandleByIndex", pynvml.NVMLError_NoPermission, gpu=6)
    gpu = roundtrip(make_agent(fake, host_fs).sample()).gpus[6]
    assert gpu.state == "error" and gpu.na["temp_c"] == "error: Insufficient Permissions"


def test_nvlink_counters_are_per_link(fake_nvml, host_fs):
    fake_nvml.gpus[0].nvlink_down = {5}
    fake_nvml.gpus[0].nvlink_errors = {(3, 2): 7, (4, 0): 2}
    nvlink = make_agent(fake_nvml, host_fs).sample()["gpus"][0]["nvlink"]
    assert {key: len(values) for key, values in nvlink.items()} == dict.fromkeys(nvlink, 18)
    assert nvlink["crc_flit_errors"][3] == 7 and nvlink["replay_errors"][4] == 2
    assert nvlink["up"][5] is False and nvlink["up"][6] is True
    assert nvlink["crc_flit_errors"][6] == 0


def test_pcie_gpus_without_nvlink_report_no_links(host_fs):
    fake = FakeNvml([FakeGpu(0, nvlinks=0)])
    del fake.NVML_FI_DEV_NVLINK_LINK_COUNT  # force probing, as on an old binding
    sample = make_agent(fake, host_fs).sample()
    assert "nvlink" not in sample["gpus"][0]
    assert roundtrip(sample).gpus[0].nvlink.up == []


def test_mig_instances_report_memory_and_no_utilisation_error(host_fs):
    instances = [
        {"gi": 1, "ci": 0, "uuid": "MIG-7a1c0a3e-0000-4000-8000-000000000001", "used_mib": 1200},
        {"gi": 2, "ci": 0, "uuid": "MIG-7a1c0a3e-0000-4000-8000-000000000002", "used_mib": 0},
    ]
    gpu = FakeGpu(0, mig_instances=instances, not_supported={"nvmlDeviceGetUtilizationRates"})
    sample = make_agent(FakeNvml([gpu]), host_fs).sample()
    reading = sample["gpus"][0]
    assert reading["state"] == "ok"
    assert [(m["gi"], m["ci"], m["mem_used_mib"]) for m in reading["mig"]] == [
        (1, 0, 1200),
        (2, 0, 0),
    ]
    assert reading["mig"][0]["uuid"].startswith("MIG-")
    assert reading["na"]["util_gpu_pct"] == "not_supported"
    assert not any(reason.startswith("error") for reason in reading["na"].values())
    roundtrip(sample)


def test_processes_carry_host_pids_memory_and_names(fake_nvml, host_fs):
    fake_nvml.gpus[0].processes = [(4242, 60000), (5151, None)]
    processes = make_agent(fake_nvml, host_fs).sample()["gpus"][0]["processes"]
    assert processes == [
        {"pid": 4242, "mem_used_mib": 60000.0, "name": "python3"},
        {"pid": 5151, "mem_used_mib": None, "name": None},
    ]


def test_xid_events_from_nvml_name_the_gpu_and_its_bus(fake_nvml, host_fs):
    agent = make_agent(fake_nvml, host_fs, clock=lambda: 1_800_000_000.0)
    fake_nvml.queued_xids += [(1, 48), (4, 79)]
    sample = roundtrip(agent.sample())
    assert [(e.code, e.gpu, e.pci_bus_id, e.source) for e in sample.events] == [
        (48, 1, "0000:28:00.0", "nvml"),
        (79, 4, "0000:58:00.0", "nvml"),
    ]
    assert agent.sample()["events"] == []


def test_inventory_is_refreshed_when_the_gpu_count_changes(fake_nvml, host_fs):
    agent = make_agent(fake_nvml, host_fs)
    agent.tick()
    fake_nvml.gpus.pop()
    hello, sample = agent.tick()
    assert hello["type"] == "hello" and len(hello["gpus"]) == 7
    assert sample["gpu_count"] == 7 and len(sample["gpus"]) == 7


def test_inventory_is_refreshed_every_ten_minutes(fake_nvml, host_fs):
    now = [1_800_000_000.0]
    agent = make_agent(fake_nvml, host_fs, clock=lambda: now[0])
    agent.tick()
    now[0] += 599
    assert [m["type"] for m in agent.tick()] == ["sample"]
    now[0] += 2
    assert [m["type"] for m in agent.tick()] == ["hello", "sample"]


def test_non_finite_readings_go_out_as_null(host_fs):
    fake = FakeNvml([FakeGpu(0)])
    fake.nvmlDeviceGetTemperature = lambda handle, sensor: float("nan")
    sample = make_agent(fake, host_fs).sample()
    assert roundtrip(sample).gpus[0].temp_c is None
    assert sample["gpus"][0]["na"]["temp_c"] == "error: not a finite number"
