"""bench/gpu_smoke.py is run by hand on GPU machines; keep it working against the double."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.fakes.fake_pynvml import FakeNvml

SMOKE = Path(__file__).resolve().parents[2] / "bench" / "gpu_smoke.py"


def test_smoke_script_passes_with_an_nvml_that_answers(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    spec = importlib.util.spec_from_file_location("gpu_smoke", SMOKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--samples", "2", "--interval", "0", "--no-bundle"]) == 0
    printed = capsys.readouterr().out
    assert "GPU 7: NVIDIA H100 80GB HBM3" in printed and printed.rstrip().endswith("OK")
    assert "fan_pct: not_supported" in printed
