"""No usable NVML: the agent falls back to nvidia-smi, or reports no GPU source at all."""

from __future__ import annotations

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
