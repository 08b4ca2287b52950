"""GPUs known by PCI bus id across loss and recovery; XIDs attributed to them; a hang
costs no tick (issue 12), against the pynvml double."""

from __future__ import annotations

import time

import pytest

from opsconsole.agent.agent import Agent
from opsconsole.agent.kernel_log import KernelLog
from opsconsole.agent.sysfs import DictFs
from tests.agent.wire import roundtrip
from tests.fakes.fake_pynvml import FakeNvml

T0 = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def agent_on(fake, fs, clock, **kwargs):
    return Agent(nvml=fake, fs=fs, clock=clock, watchdog_timeout_s=5.0, **kwargs)


def states(sample):
    return {gpu["index"]: gpu["state"] for gpu in sample["gpus"]}


def test_a_gpu_lost_at_inventory_is_back_with_its_identity_within_one_sample(host_fs):
    fake, clock = FakeNvml(), Clock()
    fake.gpus[3].lost = True
    agent = agent_on(fake, host_fs, clock)
    hello, sample = agent.tick()
    assert hello["gpus"][3] == {"index": 3} and states(sample)[3] == "lost"
    assert 3 not in fake.registered

    fake.gpus[3].lost = False
    clock.now += 2
    hello, sample = agent.tick()  # the very next sample: ok, and a hello that names it
    assert hello["type"] == "hello" and hello["gpus"][3]["uuid"] == fake.gpus[3].uuid
    assert hello["gpus"][3]["pci_bus_id"] == "0000:48:00.0"
    assert states(sample)[3] == "ok" and sample["gpus"][3]["pci_bus_id"] == "0000:48:00.0"
    assert sample["gpus"][3]["nvlink"]["up"] == [True] * 18
    assert 3 in fake.registered  # its XIDs are heard from now on
    roundtrip(hello), roundtrip(sample)
    clock.now += 2
    assert [m["type"] for m in agent.tick()] == ["sample"]


def test_an_inventory_refresh_while_a_gpu_is_lost_keeps_its_identity(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = agent_on(fake, host_fs, clock)
    agent.tick()
    fake.gpus[5].lost = True
    clock.now += 601  # the ten-minute inventory refresh falls while GPU 5 is away
    hello, sample = agent.tick()
    assert hello["gpus"][5]["uuid"] == fake.gpus[5].uuid
    assert hello["gpus"][5]["pci_bus_id"] == "0000:68:00.0"
    lost = sample["gpus"][5]
    assert lost["state"] == "lost" and lost["uuid"] == fake.gpus[5].uuid
    assert lost["pci_bus_id"] == "0000:68:00.0"
    fake.gpus[5].lost = False
    clock.now += 2
    assert states(agent.sample())[5] == "ok"


def test_xids_of_a_lost_gpu_name_it_by_index_and_bus(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = agent_on(fake, host_fs, clock)
    agent.tick()
    fake.gpus[4].lost = True  # NVML still hands out the event; the GPU answers nothing
    fake.queued_xids += [(4, 79), (4, 48)]
    clock.now += 2
    events = roundtrip(agent.sample()).events
    assert [(e.code, e.gpu, e.pci_bus_id) for e in events] == [
        (79, 4, "0000:58:00.0"),
        (48, 4, "0000:58:00.0"),
    ]


def test_a_lost_gpu_whose_handle_is_back_is_read_again(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = agent_on(fake, host_fs, clock)
    agent.tick()
    fake.gpus[2].lost = True
    clock.now += 2
    assert states(agent.sample())[2] == "lost"
    fake.gpus[2].lost = False
    clock.now += 2
    assert states(agent.sample())[2] == "ok"


@pytest.mark.slow
def test_a_hung_call_costs_no_tick_the_sample_goes_out_unresponsive_in_time(fake_nvml, host_fs):
    agent = Agent(nvml=fake_nvml, fs=host_fs, watchdog_timeout_s=120.0, expected_interval_s=0.5)
    agent.tick()
    fake_nvml.hang("nvmlDeviceGetPowerUsage", gpu=1)
    started = time.monotonic()
    first = agent.sample()
    assert time.monotonic() - started < 60.0  # the sample budget, not the watchdog's 120 s
    assert first["driver"] == "unresponsive"
    assert states(first)[0] == "ok" and states(first)[1] == "unresponsive"
    heartbeat = agent.sample()  # every later tick: a heartbeat at once
    assert heartbeat["driver"] == "unresponsive" and "stuck" in heartbeat["driver_detail"]
    assert heartbeat["gpus"][1]["pci_bus_id"] == "0000:28:00.0"


def test_an_nvlink_that_becomes_unreadable_sends_null_counters_not_cached_ones(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = agent_on(fake, host_fs, clock)
    first = agent.sample()["gpus"][0]["nvlink"]
    assert first["crc_flit_errors"][3] == 7
    fake.gpus[0].not_supported.add("nvmlDeviceGetNvLinkState")
    clock.now += 2  # well inside the 30 s counter cache
    gpu = agent.sample()["gpus"][0]
    assert gpu["nvlink"]["up"][3] is None and gpu["nvlink"]["crc_flit_errors"][3] is None
    assert set(gpu["nvlink"]["replay_errors"]) == {None}
    assert gpu["na"]["nvlink"] == "not_supported"
    roundtrip(agent.sample())


def test_pcie_link_pstate_thresholds_energy_and_codec_utilisation(fake_nvml, host_fs):
    fake_nvml.gpus[0].pcie = (3, 5, 8, 16)  # a degraded link: gen 3 x8 on a gen 5 x16 slot
    fake_nvml.gpus[0].not_supported.add("nvmlDeviceGetEncoderUtilization")
    gpu = roundtrip(agent_on(fake_nvml, host_fs, Clock()).sample()).gpus[0]
    assert (gpu.pcie_gen, gpu.pcie_gen_max, gpu.pcie_width, gpu.pcie_width_max) == (3, 5, 8, 16)
    assert gpu.pstate == 0 and gpu.energy_mj == 123_456_789
    assert (gpu.temp_slowdown_c, gpu.temp_shutdown_c) == (87.0, 92.0)
    assert gpu.dec_util_pct == 3.0
    assert gpu.enc_util_pct is None and gpu.na["enc_util_pct"] == "not_supported"


def test_memory_used_is_nvml_v2_used_which_leaves_out_the_drivers_reserve(fake_nvml, host_fs):
    asked = []
    real_info = fake_nvml.nvmlDeviceGetMemoryInfo

    def memory_info(handle, version=None):
        asked.append(version)
        return real_info(handle, version)

    fake_nvml.nvmlDeviceGetMemoryInfo = memory_info
    gpu = agent_on(fake_nvml, host_fs, Clock()).sample()["gpus"][0]
    assert set(asked[-8:]) == {fake_nvml.nvmlMemory_v2}
    assert gpu["mem_used_mib"] == fake_nvml.gpus[0].memory_used_mib


def test_without_the_v2_call_memory_used_is_v1s(fake_nvml, host_fs):
    fake_nvml.missing = {"nvmlMemory_v2"}  # an older binding
    gpu = agent_on(fake_nvml, host_fs, Clock()).sample()["gpus"][0]
    assert gpu["mem_used_mib"] == fake_nvml.gpus[0].memory_used_mib + 512


def test_refusals_and_part_facts_are_asked_again_only_with_the_counters(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = agent_on(fake, host_fs, clock)
    agent.sample()
    fake.counts.clear()
    clock.now += 2
    gpu = agent.sample()["gpus"][0]
    assert fake.counts["nvmlDeviceGetFanSpeed"] == 0  # refused before: not asked each sample
    assert fake.counts["nvmlDeviceGetTemperatureThreshold"] == 0
    assert gpu["fan_pct"] is None and gpu["na"]["fan_pct"] == "not_supported"
    assert gpu["temp_slowdown_c"] == 87 and "temp_slowdown_c" not in gpu["na"]
    assert fake.counts["nvmlDeviceGetPowerUsage"] == 8  # readings: every sample
    clock.now += 30
    agent.sample()
    assert fake.counts["nvmlDeviceGetFanSpeed"] == 8


class KernelLines:
    name = "kmsg"
    poll_every_s = 0.0

    def __init__(self, lines):
        self.lines = list(lines)

    def read(self):
        lines, self.lines = self.lines, []
        return lines


def test_a_gpu_lost_before_nvml_named_it_takes_its_bus_id_from_sysfs(host_fs):
    fake, clock = FakeNvml(), Clock()
    fake.gpus[3].lost = True
    files = dict(host_fs.files)
    for gpu in fake.gpus:
        bus = gpu.bus_id[4:].lower()
        files[f"/sys/bus/pci/drivers/nvidia/{bus}"] = ""
        files[f"/sys/bus/pci/devices/{bus}/class"] = "0x030200"
    files["/sys/bus/pci/drivers/nvidia/0000:05:00.0"] = ""  # an NVSwitch: not a GPU
    files["/sys/bus/pci/devices/0000:05:00.0/class"] = "0x068000"
    fell_off = "NVRM: Xid (PCI:0000:48:00): 79, pid='<unknown>', GPU has fallen off the bus."
    agent = Agent(nvml=fake, fs=DictFs(files), clock=clock, watchdog_timeout_s=5.0,
                  kernel_log=KernelLog(KernelLines([(T0 - 5, fell_off)]), clock=clock))  # fmt: skip
    hello, sample = agent.tick()
    assert hello["gpus"][3] == {"index": 3, "pci_bus_id": "0000:48:00.0"}
    assert sample["gpus"][3]["pci_bus_id"] == "0000:48:00.0"
    assert [(e["code"], e["gpu"]) for e in sample["events"]] == [(79, 3)]


def test_sysfs_that_disagrees_with_nvml_is_not_trusted(host_fs):
    fake = FakeNvml()
    fake.gpus[3].lost = True
    files = {
        f"/sys/bus/pci/drivers/nvidia/0000:{0x18 + 0x10 * i + 1:02x}:00.0": "" for i in range(8)
    }
    files.update({f"/sys/bus/pci/devices/{p.rsplit('/', 1)[1]}/class": "0x030200" for p in files})
    hello = Agent(nvml=fake, fs=DictFs(files), watchdog_timeout_s=5.0).hello()
    assert hello["gpus"][3] == {"index": 3}
