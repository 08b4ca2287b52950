"""OpenSSH's own sshd on a loopback port, as an unprivileged user, for interop tests.

sshd runs as root with its own config (key auth only, no PAM) and lets one dedicated
user in; that user's PATH starts with a directory holding a test `nvidia-smi`, so both
collection modes run exactly as on a GPU host without python3's pynvml.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


FAKE_NVIDIA_SMI = Path(__file__).parents[1] / "interop" / "fake_nvidia_smi.py"


@dataclass
class OpenSshServer:
    port: int
    user: str
    known_hosts: Path
    client_key: Path
    workdir: Path


def unavailable(reason: str):
    if os.environ.get("OPSCONSOLE_REQUIRE_INTEROP"):
        pytest.fail(f"OpenSSH interop required in CI but unavailable: {reason}")
    pytest.skip(reason)


def account_locked(user: str) -> bool:
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            name, password = line.split(":")[:2]
            if name == user:
                return password.startswith("!")
    except OSError:
        pass
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not start listening")
