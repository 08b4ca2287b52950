from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsconsole.agent.agent import encode
from opsconsole.agent.process import _parse_args

REPO = Path(__file__).resolve().parents[2]


def test_encode_is_compact_and_replaces_non_finite_numbers():
    line = encode({"a": [1.5, float("nan")], "b": {"c": float("inf")}, "d": "é"})
    assert line == '{"a":[1.5,null],"b":{"c":null},"d":"\\u00e9"}'
    assert "\n" not in encode({"text": "two\nlines"})
    assert json.loads(encode({"x": -float("inf")})) == {"x": None}


def test_arguments():
    args = _parse_args(["--interval", "0.5", "--once"])
    assert (args.interval, args.once, args.watchdog_timeout) == (0.5, True, 10.0)


@pytest.mark.slow
def test_once_prints_hello_and_one_sample(tmp_path):
    code = "import sys; from opsconsole.agent.agent import main; sys.exit(main(['--once']))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=b"",
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()] == ["hello", "sample"]


@pytest.mark.slow
def test_agent_source_is_python_3_8_compatible():
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).exists():
        pytest.skip("vermin is not installed")
    result = subprocess.run(
        [vermin, "-q", "--no-tips", "--violations", "--target=3.8-", "opsconsole/agent"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout
