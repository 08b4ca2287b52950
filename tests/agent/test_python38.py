"""The agent's NVML path on the oldest Python the hosts run (3.8, Ubuntu 20.04).

The bundle test proves the shipped command starts under 3.8; this one drives the NVML
reader, watchdog and encoder under 3.8 against the pynvml test double (with only the
real `pynvml.py` on the path, no 3.11 site-packages), then decodes the lines here with
the console's strict decoder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pynvml
import pytest

from opsconsole.wire import Hello, Sample, decode_line

REPO = Path(__file__).resolve().parents[2]
PYTHON38 = next(
    (
        path
        for path in ("/root/.pyenv/versions/3.8.18/bin/python", shutil.which("python3.8"))
        if path and os.access(path, os.X_OK)
    ),
    None,
)

DRIVER = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
assert sys.version_info[:2] == (3, 8), sys.version
from tests.fakes.fake_pynvml import FakeNvml
from opsconsole.agent.agent import Agent, encode
from opsconsole.agent.sysfs import DictFs

fake = FakeNvml()
fake.gpus[3].lost = True
fake.fail("nvmlDeviceGetPcieReplayCounter", fake.NVMLError_NotSupported)
agent = Agent(nvml=fake, fs=DictFs({}), watchdog_timeout_s=5.0)
print(encode(agent.hello()))
print(encode(agent.sample()))
"""


@pytest.mark.interop
@pytest.mark.skipif(
    PYTHON38 is None and not os.environ.get("OPSCONSOLE_REQUIRE_INTEROP"),
    reason="no Python 3.8 interpreter here",
)
def test_nvml_sampling_under_python_3_8(tmp_path):
    assert PYTHON38 is not None, "CI must have a Python 3.8 interpreter (pyenv)"
    only_pynvml = tmp_path / "pynvml-only"
    only_pynvml.mkdir()
    shutil.copy(pynvml.__file__, only_pynvml / "pynvml.py")
    result = subprocess.run(
        [PYTHON38, "-I", "-c", DRIVER, str(only_pynvml), str(REPO)],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()
    hello, sample = (decode_line(line) for line in result.stdout.splitlines())
    assert isinstance(hello, Hello) and hello.host.python.startswith("3.8.")
    assert hello.mode == "nvml"
    assert isinstance(sample, Sample)
    states = {gpu.index: gpu.state for gpu in sample.gpus}
    assert states[3] == "lost"
    assert [i for i, s in states.items() if s != "ok"] == [3]
    healthy = next(g for g in sample.gpus if g.index == 0)
    assert healthy.pcie_replay is None and healthy.na["pcie_replay"] == "not_supported"
    assert healthy.power_w is not None and healthy.power_w > 0
