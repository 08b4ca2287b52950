"""An operator's terminal shows no third-party warnings, and the suite's warning policy:
a warning from our own code fails a test, one raised inside a library does not."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The console script the install puts beside the interpreter, as an operator runs it.
OPSCONSOLE = [str(Path(sys.executable).parent / "opsconsole")]
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONWARNINGS": ""}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=CLEAN_ENV, timeout=60, check=False
    )


@pytest.mark.slow
def test_version_writes_nothing_to_stderr(tmp_path: Path) -> None:
    done = run([*OPSCONSOLE, "--version"], tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("opsconsole ")
    assert done.stderr == ""


@pytest.mark.slow
def test_check_config_imports_asyncssh_without_a_warning_on_stderr(tmp_path: Path) -> None:
    # check-config builds the SSH options, so asyncssh (and cryptography) are imported.
    done = run(
        [*OPSCONSOLE, "check-config", "--config", str(REPO / "config.example.toml")], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.slow
def test_poll_help_writes_nothing_to_stderr(tmp_path: Path) -> None:
    done = run([*OPSCONSOLE, "poll", "--help"], tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""


def test_a_warning_from_our_own_code_fails_the_test() -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module="opsconsole.x")


def test_a_warning_raised_inside_a_library_is_shown_not_fatal() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("DSA is deprecated", UserWarning, "m.py", 1, module="somelib.m")
    assert [str(w.message) for w in caught] == ["DSA is deprecated"]


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "bench").glob("*.py")))
def test_each_bench_script_runs_after_the_install(script: str) -> None:
    done = run([sys.executable, f"bench/{script}", "--help"], REPO)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
