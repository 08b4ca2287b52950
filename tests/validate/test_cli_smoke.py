"""`opsconsole validate` as an operator runs it: a real process, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_validate_smoke(tmp_path):
    config = tmp_path / "opsconsole.toml"
    text = (
        (REPO / "config.example.toml")
        .read_text()
        .replace('path = "opsconsole.db"', f'path = "{tmp_path / "o.db"}"')
    )
    config.write_text(text)
    listed = run_cli("validate", "list", "--config", str(config), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    bad = run_cli("validate", "show", "7", "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "opsconsole: no validation run 7"
