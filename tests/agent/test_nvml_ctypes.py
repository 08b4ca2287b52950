"""The real pynvml ctypes path against a fake libnvidia-ml.so.1 built here with gcc
(tests/fakes/fake_libnvml.c): the agent as shipped (bundle, bundled pynvml) and the
agent's fault paths, each under Python 3.8 and the current Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pynvml
import pytest

from opsconsole.agent.bundle import agent_command
from opsconsole.wire import Hello, Sample, decode_line
from tests.fakes.fake_libnvml import Control, build, gcc

REPO = Path(__file__).resolve().parents[2]
PYTHON38 = next(
    (
        path
        for path in ("/root/.pyenv/versions/3.8.18/bin/python", shutil.which("python3.8"))
        if path and os.access(path, os.X_OK)
    ),
    None,
)
PYTHONS = [pytest.param(sys.executable, id="current")] + (
    [pytest.param(PYTHON38, id="py3.8")] if PYTHON38 else []
)
pytestmark = pytest.mark.skipif(
    gcc() is None and not os.environ.get("OPSCONSOLE_REQUIRE_INTEROP"), reason="no gcc here"
)

DRIVER = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import pynvml
from opsconsole.agent.agent import Agent, encode
from opsconsole.agent.sysfs import DictFs

agent = Agent(nvml=pynvml, fs=DictFs({}), watchdog_timeout_s=float(sys.argv[3]),
              expected_interval_s=float(sys.argv[4]), run_command=lambda argv, t: (127, "", ""))
for command in sys.stdin:
    for message in agent.tick():
        sys.stdout.write(encode(message) + "\\n")
    sys.stdout.write("END\\n")
    sys.stdout.flush()
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("libnvml"))


@pytest.fixture
def control(tmp_path) -> Control:
    return Control(tmp_path / "nvml-control")


class Host:
    """The agent in its own process (it must load the library at start), one tick per
    request; `control` steers the library between ticks."""

    def __init__(self, python, library, control, tmp_path, timeout_s=5.0, interval_s=2.0):
        only_pynvml = tmp_path / "pynvml-only"
        only_pynvml.mkdir(exist_ok=True)
        shutil.copy(pynvml.__file__, only_pynvml / "pynvml.py")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **control.env(library)}
        self.process = subprocess.Popen(
            [python, "-I", "-c", DRIVER, str(only_pynvml), str(REPO), str(timeout_s),
             str(interval_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=tmp_path, env=env,
        )  # fmt: skip

    def tick(self) -> dict[str, Hello | Sample]:
        self.process.stdin.write(b"tick\n")
        self.process.stdin.flush()
        messages = {}
        while (line := self.process.stdout.readline().rstrip(b"\n")) != b"END":
            assert line, self.process.stderr.read().decode()
            message = decode_line(line)
            messages["hello" if isinstance(message, Hello) else "sample"] = message
        return messages

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture
def start(library, control, tmp_path):
    hosts = []

    def start(python, **kwargs) -> Host:
        hosts.append(Host(python, library, control, tmp_path, **kwargs))
        return hosts[-1]

    yield start
    control.set()  # release a hang before closing
    for host in hosts:
        host.close()


@pytest.mark.slow
@pytest.mark.parametrize("python", PYTHONS)
def test_the_shipped_agent_reads_every_gpu_through_its_bundled_pynvml(python, library, control,
                                                                      tmp_path):  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **control.env(library)}
    process = subprocess.Popen(
        ["bash", "-c", agent_command(0.2, python=python)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env=env,
    )  # fmt: skip
    try:
        hello, sample = (decode_line(process.stdout.readline()) for _ in range(2))
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
    assert isinstance(hello, Hello) and hello.mode == "nvml", hello
    assert "events" in hello.capabilities and hello.host.driver_version == "570.133.20"
    assert hello.host.cuda_version == "12.8"
    buses = [g.pci_bus_id for g in hello.gpus]
    assert buses[:3] == ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0"]
    assert hello.gpus[7].uuid == "GPU-fa4e0000-0000-4000-8000-000000000007"
    assert isinstance(sample, Sample) and sample.driver == "ok" and sample.gpu_count == 8
    gpu = sample.gpus[2]
    assert gpu.state == "ok" and gpu.power_w == 612.345 and gpu.temp_c == 52
    assert gpu.mem_used_mib == 100002  # v2: the driver's 512 MiB reserve left out
    assert gpu.clock_event_reasons == 4 and gpu.ecc_aggregate_corrected == 120
    assert gpu.remap_corrected == 2 and gpu.pcie_gen == 5 and gpu.pcie_width_max == 16
    assert gpu.pstate == 0 and (gpu.temp_slowdown_c, gpu.temp_shutdown_c) == (87, 92)
    assert gpu.energy_mj is not None and gpu.energy_mj > 987654321
    assert gpu.dec_util_pct == 3
    assert len(gpu.nvlink.up) == 18 and all(gpu.nvlink.up)
    assert gpu.nvlink.crc_flit_errors[3] == 7 and gpu.nvlink.replay_errors[17] == 0
    assert [p.pid for p in gpu.processes] == [4442]
    for field in ("fan_pct", "retired_pages_sbe"):  # not in the library: FunctionNotFound
        assert getattr(gpu, field) is None and gpu.na[field] == "not_supported"


@pytest.mark.parametrize("python", PYTHONS)
def test_a_gpu_lost_at_inventory_comes_back_with_identity_and_xids(python, start, control):
    control.set("lost 3")
    host = start(python)
    first = host.tick()
    assert first["hello"].gpus[3].uuid is None
    assert first["sample"].gpus[3].state == "lost"
    assert [g.state for g in first["sample"].gpus].count("ok") == 7

    control.set()  # back on the bus
    back = host.tick()
    assert back["hello"].gpus[3].uuid == "GPU-fa4e0000-0000-4000-8000-000000000003"
    assert back["sample"].gpus[3].state == "ok"
    assert back["sample"].gpus[3].pci_bus_id == "0000:5d:00.0"

    control.xid(3, 48)  # registered for events when it came back
    events = host.tick()["sample"].events
    assert [(e.code, e.gpu, e.pci_bus_id, e.source) for e in events] == [
        (48, 3, "0000:5d:00.0", "nvml")
    ]


@pytest.mark.parametrize("python", PYTHONS)
def test_xids_of_a_gpu_that_is_lost_name_it(python, start, control):
    host = start(python)
    host.tick()
    control.set("lost 4")
    control.xid(4, 79)
    sample = host.tick()["sample"]
    assert sample.gpus[4].state == "lost" and sample.gpus[4].pci_bus_id == "0000:9a:00.0"
    assert sample.gpus[4].uuid == "GPU-fa4e0000-0000-4000-8000-000000000004"
    assert [(e.code, e.gpu, e.pci_bus_id) for e in sample.events] == [(79, 4, "0000:9a:00.0")]
    control.set()
    assert host.tick()["sample"].gpus[4].state == "ok"


def test_unsupported_readings_are_null_with_their_reason(start, control):
    control.set("unsupported nvmlDeviceGetPowerUsage", "unsupported nvmlDeviceGetNvLinkState")
    gpu = start(sys.executable).tick()["sample"].gpus[0]
    assert gpu.state == "ok" and gpu.power_w is None and gpu.na["power_w"] == "not_supported"
    assert gpu.nvlink.up == [None] * 18 and gpu.nvlink.crc_flit_errors == [None] * 18
    assert gpu.na["nvlink"] == "not_supported" and gpu.temp_c == 50


def test_init_failure_is_reported_in_one_line(start, control):
    control.set("init_error 9")
    messages = start(sys.executable).tick()
    assert messages["hello"].mode == "none"
    assert messages["sample"].driver == "unavailable"
    assert "NVML: Driver Not Loaded" in messages["sample"].driver_detail


@pytest.mark.slow
def test_a_hung_call_is_unresponsive_from_the_first_tick_then_recovers(start, control):
    host = start(sys.executable, timeout_s=120.0, interval_s=0.5)
    host.tick()
    control.set("hang nvmlDeviceGetPowerUsage")
    hung = host.tick()["sample"]  # back within the sample budget, not the 120 s watchdog
    assert hung.driver == "unresponsive"
    assert {g.state for g in hung.gpus} == {"unresponsive"}
    heartbeat = host.tick()["sample"]
    assert heartbeat.driver == "unresponsive" and "stuck" in heartbeat.driver_detail
    control.set()
    deadline = time.monotonic() + 30
    recovered = host.tick()["sample"]
    while recovered.driver != "ok" and time.monotonic() < deadline:  # the call returns soon
        time.sleep(0.02)
        recovered = host.tick()["sample"]
    assert recovered.driver == "ok" and {g.state for g in recovered.gpus} == {"ok"}
