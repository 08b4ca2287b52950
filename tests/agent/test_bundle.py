"""The agent as the console starts it: one shell command, no files, stdin ends it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsconsole.agent.bundle import (
    AGENT_COMMAND_MARKER,
    BUNDLED_MODULES,
    MAX_COMMAND_BYTES,
    agent_command,
    parse_agent_command,
    pynvml_source,
)
from opsconsole.wire import AgentError, Hello, Sample, decode_line

REPO = Path(__file__).resolve().parents[2]
PYTHON38 = next(
    (
        path
        for path in ("/root/.pyenv/versions/3.8.18/bin/python", shutil.which("python3.8"))
        if path and os.access(path, os.X_OK)
    ),
    None,
)


def start(python: str, cwd: Path, interval_s: float = 0.2) -> subprocess.Popen:
    # A bare environment: no GPU, no PYTHONPATH, nothing of the repository importable.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LC_ALL": "C"}
    return subprocess.Popen(
        ["bash", "-c", agent_command(interval_s, python=python)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )


def read_messages(process: subprocess.Popen, count: int) -> list:
    return [decode_line(process.stdout.readline().rstrip(b"\n")) for _ in range(count)]


def stop(process: subprocess.Popen) -> int:
    process.stdin.close()  # the console closing the channel
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.slow
def test_command_fits_and_is_recognised():
    command = agent_command(2)
    assert len(command.encode()) < MAX_COMMAND_BYTES
    assert command.startswith("exec python3 -B -c '") and AGENT_COMMAND_MARKER in command
    for interval in (2, 0.5, 10.0, 1e-1):
        assert parse_agent_command(agent_command(interval, python="/usr/bin/python3")) == {
            "interval_s": float(interval)
        }
    assert parse_agent_command("python3 -c 'print(1)' --interval 2") is None
    assert parse_agent_command("nvidia-smi --query-gpu=index") is None
    assert parse_agent_command(None) is None


def test_bundle_carries_every_module_the_agent_imports():
    on_disk = {path.stem for path in (REPO / "opsconsole" / "agent").glob("*.py")}
    assert set(BUNDLED_MODULES) == on_disk - {"bundle", "agentless"}


@pytest.mark.slow
def test_agent_runs_from_the_command_line_and_exits_when_stdin_closes(tmp_path):
    process = start(sys.executable, tmp_path)
    hello, first, second = read_messages(process, 3)
    assert isinstance(hello, Hello) and hello.mode in ("nvml", "nvidia-smi", "none")
    assert hello.host.python == f"{sys.version_info.major}.{sys.version_info.minor}." + str(
        sys.version_info.micro
    )
    assert isinstance(first, Sample) and isinstance(second, Sample)
    assert (first.seq, second.seq) == (1, 2) and second.ts > first.ts
    if hello.mode == "none":  # no GPU here: the real pynvml's LibraryNotFound, reported
        assert first.driver == "unavailable" and "NVML" in first.driver_detail
    assert stop(process) == 0
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


@pytest.mark.interop
@pytest.mark.skipif(PYTHON38 is None, reason="no Python 3.8 interpreter here")
def test_agent_runs_under_python_3_8(tmp_path):
    process = start(PYTHON38, tmp_path)
    hello, sample = read_messages(process, 2)
    assert isinstance(hello, Hello) and hello.host.python.startswith("3.8.")
    assert isinstance(sample, Sample)
    assert stop(process) == 0


@pytest.mark.slow
def test_a_broken_pipe_ends_the_agent_quietly(tmp_path):
    process = start(sys.executable, tmp_path, interval_s=0.05)
    read_messages(process, 1)
    process.stdout.close()  # the reader is gone; stdin stays open
    try:
        assert process.wait(timeout=30) == 0
        assert b"Traceback" not in process.stderr.read()
    finally:
        process.stdin.close()
        process.stderr.close()


@pytest.mark.slow
def test_bundle_carries_pynvml_with_its_licence_notice():
    source = pynvml_source()
    assert source is not None
    assert source.startswith("#####\n# Copyright (c) ") and "NVIDIA Corporation" in source[:200]
    assert "Redistributions of source code must retain the above copyright notice" in source
    compile(source, "<bundled pynvml>", "exec")
    assert "def nvmlDeviceGetMemoryInfo(" in source


@pytest.mark.slow
def test_the_agent_uses_the_bundled_pynvml_never_one_on_the_host(tmp_path):
    host_copy = tmp_path / "site"
    host_copy.mkdir()
    (host_copy / "pynvml.py").write_text("raise SystemExit('the host pynvml was imported')\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(host_copy)}
    process = subprocess.Popen(
        ["bash", "-c", agent_command(0.2, python=sys.executable)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=host_copy,
        env=env,
    )
    hello, sample = read_messages(process, 2)
    assert stop(process) == 0
    assert isinstance(hello, Hello) and isinstance(sample, Sample)
    if hello.mode == "none":  # no driver here: the bundled pynvml found no library
        assert "NVML: NVML Shared Library Not Found" in sample.driver_detail


@pytest.mark.slow
def test_bad_arguments_give_one_error_line_and_exit_1(tmp_path):
    command = agent_command(2).replace("--interval 2.0", "--interval -1")
    result = subprocess.run(
        ["bash", "-c", command], input=b"", capture_output=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    error = decode_line(line)
    assert isinstance(error, AgentError) and "--interval" in error.message
