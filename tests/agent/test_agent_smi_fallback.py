"""No usable NVML: the agent falls back to nvidia-smi, or reports no GPU source at all."""

from __future__ import annotations

import threading
import time

import pytest

from opsconsole.agent.agent import Agent
from tests.agent import smi_outputs as out
from tests.agent.wire import roundtrip
from tests.fakes.fake_pynvml import FakeNvml, LibraryNotFound


class FakeSmi:
    """A run_command that answers like nvidia-smi; records what was run."""

    def __init__(self, gpu_output=out.H100_ROWS, refuse_new_names=False):
        self.gpu_output = gpu_output
        self.refuse_new_names = refuse_new_names
        self.argvs: list[list[str]] = []

    def __call__(self, argv, timeout_s):
        self.argvs.append(argv)
        if argv[0] != "nvidia-smi":
            return 127, "", f"{argv[0]}: command not found"
        if argv[1].startswith("--query-remapped-rows="):
            return 0, out.REMAP_ROWS, ""
        if self.refuse_new_names and "clocks_event_reasons" in argv[1]:
            return 2, out.REFUSED, ""
        return (0 if self.gpu_output.strip() else 9), self.gpu_output, ""


@pytest.fixture
def no_library():
    fake = FakeNvml()
    fake.init_error = LibraryNotFound
    return fake


def test_library_not_found_falls_back_to_nvidia_smi(no_library, host_fs):
    smi = FakeSmi()
    agent = Agent(nvml=no_library, fs=host_fs, run_command=smi)
    hello, sample = (roundtrip(m) for m in agent.tick())
    assert hello.mode == "nvidia-smi" and "nvidia-smi" in hello.capabilities
    assert hello.host.driver_version == "550.90.07"
    assert [gpu.uuid[:8] for gpu in hello.gpus] == ["GPU-b9f9", "GPU-20af"]
    assert sample.driver == "ok" and sample.gpu_count == 2
    assert sample.gpus[1].remap_corrected == 3 and sample.gpus[1].clock_event_reasons == 4
    assert sample.gpus[0].na["fan_pct"] == "not_supported"
    agent.sample()
    remap_runs = [argv for argv in smi.argvs if argv[1].startswith("--query-remapped-rows")]
    assert len(remap_runs) == 1  # slow-changing: not re-read every sample


def test_a_driver_older_than_535_gets_the_legacy_column_name(no_library, host_fs):
    smi = FakeSmi(refuse_new_names=True)
    agent = Agent(nvml=no_library, fs=host_fs, run_command=smi)
    assert agent.mode == "nvidia-smi"
    agent.sample()
    queries = [argv[1] for argv in smi.argvs if argv[1].startswith("--query-gpu=")]
    assert "clocks_event_reasons" in queries[0]
    assert all("clocks_throttle_reasons" in query for query in queries[1:])


def test_no_nvml_and_no_nvidia_smi_reports_the_driver_unavailable(no_library, host_fs):
    agent = Agent(nvml=no_library, fs=host_fs, run_command=FakeSmi(gpu_output=out.DRIVER_GONE))
    hello, sample = (roundtrip(m) for m in agent.tick())
    assert hello.mode == "none" and hello.gpus == []
    assert sample.driver == "unavailable" and sample.gpu_count is None
    assert "NVML Shared Library Not Found" in sample.driver_detail
    assert "NVIDIA-SMI has failed" in sample.driver_detail
    assert sample.ib and sample.eth  # the fabric is still watched


def test_without_pynvml_nvidia_smi_is_used_directly(host_fs):
    agent = Agent(nvml=None, fs=host_fs, run_command=FakeSmi())
    assert agent.mode == "nvidia-smi"
    assert roundtrip(agent.sample()).gpu_count == 2


def test_a_gpu_lost_under_nvidia_smi_marks_that_gpu(no_library, host_fs):
    agent = Agent(nvml=no_library, fs=host_fs, run_command=FakeSmi(out.H100_ROWS + out.LOST_ROWS))
    sample = roundtrip(agent.sample())
    assert [gpu.state for gpu in sample.gpus] == ["ok", "ok", "lost", "lost"]


def test_a_host_without_gpu_source_is_retried_and_announces_the_change(no_library, host_fs):
    now = [1_800_000_000.0]
    agent = Agent(
        nvml=no_library,
        fs=host_fs,
        clock=lambda: now[0],
        run_command=FakeSmi(gpu_output=out.DRIVER_GONE),
    )
    agent.tick()
    no_library.init_error = None  # the driver got loaded
    now[0] += 2
    assert [m["type"] for m in agent.tick()] == ["sample"]  # not retried on every sample
    now[0] += 60
    hello, sample = agent.tick()
    assert hello["mode"] == "nvml" and len(hello["gpus"]) == 8
    assert sample["driver"] == "ok"


HELP_535 = """List of valid properties to query for the switch "--query-gpu=":

"index"
Zero based index of the GPU.

"uuid"
This value is the globally unique immutable alphanumeric identifier of the GPU.

"pci.bus_id" or "gpu_bus_id"
PCI bus id as "domain:bus:device.function", in hex.

"memory.used"
Total memory allocated by active contexts.

"clocks_throttle_reasons.active"
Bitmask of active clock throttle reasons.

"pcie.link.gen.current"
The current link generation.

"pcie.link.gen.max"
The maximum link generation.

"pstate"
The current performance state for the GPU.
"""


class ProbedSmi:
    """An nvidia-smi that lists its fields and answers queries by them, with a header."""

    def __init__(self, help_text=HELP_535, lost_bus=None):
        self.help_text = help_text
        self.lost_bus = lost_bus
        self.argvs: list[list[str]] = []

    def __call__(self, argv, timeout_s):
        self.argvs.append(argv)
        if argv[1] == "--help-query-gpu":
            return 0, self.help_text, ""
        if argv[1].startswith("--query-remapped-rows="):
            return 0, "", ""
        fields = argv[1].split("=", 1)[1].split(",")
        known = {"index", "uuid", "pci.bus_id", "memory.used", "clocks_throttle_reasons.active",
                 "pcie.link.gen.current", "pcie.link.gen.max", "pstate"}  # fmt: skip
        for field in fields:
            if field not in known:
                return 2, f'Field "{field}" is not a valid field to query.\n', ""
        values = {
            "index": "{i}",
            "uuid": "GPU-{i}",
            "pci.bus_id": "00000000:1{i}:00.0",
            "memory.used": "1024",
            "clocks_throttle_reasons.active": "0x0000000000000004",
            "pcie.link.gen.current": "4",
            "pcie.link.gen.max": "5",
            "pstate": "P2",
        }
        header = ", ".join(f + (" [MiB]" if f == "memory.used" else "") for f in fields)
        lines = [header]
        for i in range(2):
            if self.lost_bus is not None and i == 1:
                lines.append(
                    f"Unable to determine the device handle for GPU{self.lost_bus}: GPU is lost."
                )
                continue
            lines.append(", ".join(values[f].format(i=i) for f in fields))
        return (15 if self.lost_bus else 0), "\n".join(lines) + "\n", ""


def test_fields_are_probed_once_and_read_by_header(no_library, host_fs):
    smi = ProbedSmi()
    agent = Agent(nvml=no_library, fs=host_fs, run_command=smi)
    hello, sample = (roundtrip(m) for m in agent.tick())
    assert hello.mode == "nvidia-smi" and [g.pci_bus_id for g in hello.gpus] == [
        "0000:10:00.0",
        "0000:11:00.0",
    ]
    gpu = sample.gpus[1]
    assert gpu.mem_used_mib == 1024 and gpu.clock_event_reasons == 4
    assert (gpu.pcie_gen, gpu.pcie_gen_max, gpu.pstate) == (4, 5, 2)
    for field in ("temp_c", "power_w", "pcie_width", "enc_util_pct"):  # this driver lacks them
        assert getattr(gpu, field) is None and gpu.na[field] == "not_supported"
    agent.sample()
    assert [argv[1] for argv in smi.argvs].count("--help-query-gpu") == 1


def test_a_field_listed_but_refused_is_dropped_not_the_host(no_library, host_fs):
    smi = ProbedSmi(help_text=HELP_535 + '\n"fan.speed"\nThe fan speed.\n')
    sample = roundtrip(Agent(nvml=no_library, fs=host_fs, run_command=smi).sample())
    assert sample.driver == "ok" and sample.gpus[0].na["fan_pct"] == "not_supported"


def test_a_gpu_nvidia_smi_cannot_open_is_lost_under_the_identity_it_had(no_library, host_fs):
    smi = ProbedSmi()
    agent = Agent(nvml=no_library, fs=host_fs, run_command=smi)
    agent.tick()
    smi.lost_bus = "00000000:11:00.0"
    sample = roundtrip(agent.sample())
    assert sample.driver == "ok" and [g.state for g in sample.gpus] == ["ok", "lost"]
    assert sample.gpus[1].uuid == "GPU-1" and sample.gpus[1].pci_bus_id == "0000:11:00.0"


def test_the_reason_for_an_odd_answer_is_one_short_sentence_not_raw_csv(no_library, host_fs):
    odd = "a, b, c\n" * 40
    sample = roundtrip(Agent(nvml=no_library, fs=host_fs, run_command=FakeSmi(odd)).sample())
    assert sample.driver == "unavailable"
    assert "a, b" not in sample.driver_detail and len(sample.driver_detail) < 200


@pytest.mark.slow
def test_a_hung_nvidia_smi_is_unresponsive_from_the_first_tick(no_library, host_fs):
    smi, release = FakeSmi(), threading.Event()

    def run(argv, timeout_s):
        if hung.is_set() and argv[1].startswith("--query-gpu="):
            release.wait(30)
        return smi(argv, timeout_s)

    hung = threading.Event()
    agent = Agent(nvml=no_library, fs=host_fs, run_command=run, watchdog_timeout_s=120.0,
                  expected_interval_s=0.5)  # fmt: skip
    agent.tick()
    hung.set()
    try:
        started = time.monotonic()
        first = roundtrip(agent.sample())
        assert time.monotonic() - started < 60.0  # the sample's budget, not the watchdog's 120 s
        assert first.driver == "unresponsive" and {g.state for g in first.gpus} == {"unresponsive"}
        assert roundtrip(agent.sample()).driver == "unresponsive"  # a heartbeat at once
    finally:
        release.set()
    hung.clear()
    assert agent.watchdog.wait_idle(10)
    assert roundtrip(agent.sample()).driver == "ok"
