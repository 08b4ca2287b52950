"""Interop with OpenSSH's sshd: both collection modes, through the real CLI, as an
unprivileged user whose PATH has a test `nvidia-smi` (the host has no GPU and its system
python3 has no pynvml, so the agent falls back to nvidia-smi as on such a node)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]


def write_config(server, tmp_path: Path, known_hosts: Path) -> Path:
    config = tmp_path / "opsconsole.toml"
    config.write_text(
        f"""
[store]
path = "ops.db"

[ssh]
known_hosts = "{known_hosts}"
identity_files = ["{server.client_key}"]
use_ssh_config = false
user = "{server.user}"
connect_timeout_s = 10

[polling]
interval_s = 1

[[sites]]
name = "LAB"

[[racks]]
names = "lab-r01"
site = "LAB"
leaf = "lab-leaf-01"
power_budget_kw = 12

[host_classes.h200-8]
gpus = 8
gpu_model = "H200"

[[hosts]]
names = "interop-agent"
address = "127.0.0.1"
port = {server.port}
rack = "lab-r01"
class = "h200-8"
mode = "agent"

[[hosts]]
names = "interop-agentless"
address = "localhost"
port = {server.port}
rack = "lab-r01"
class = "h200-8"
mode = "agentless"
"""
    )
    return config


def known_hosts_for(server, tmp_path: Path, key_line: str | None = None) -> Path:
    key = key_line or " ".join(server.known_hosts.read_text().split()[1:3])
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.1]:{server.port} {key}\n[localhost]:{server.port} {key}\n")
    return path


def poll_once(config: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsconsole",
            "poll",
            "--config",
            str(config),
            "--once",
            "--json",
            "--ok-when-down",  # a down host is what some of these tests look for
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def value(gpu: dict, name: str):
    reading = gpu["readings"][name]
    assert reading["state"] == "value", (name, reading)
    return reading["value"]


def test_both_modes_against_openssh(openssh_server, tmp_path):
    config = write_config(openssh_server, tmp_path, known_hosts_for(openssh_server, tmp_path))
    snapshot = poll_once(config)
    for name, mode in (("interop-agent", "nvidia-smi"), ("interop-agentless", "agentless")):
        host = snapshot["hosts"][name]
        assert host["status"] == "fresh", (name, host["reason"], host["detail"])
        assert host["mode"] == mode
        gpus = {gpu["index"]: gpu for gpu in host["gpus"]}
        assert sorted(gpus) == list(range(8))
        assert value(gpus[3], "temp_c") == 53
        assert value(gpus[2], "clock_event_reasons") == 0x4
        assert value(gpus[5], "ecc_volatile_uncorrected") == 1
        assert value(gpus[5], "remap_pending") is True
        assert gpus[0]["readings"]["fan_pct"]["state"] == "not_supported"
        assert gpus[0]["uuid"] == "GPU-5f1c0a3e-0000-4000-8000-000000000000"
    facts = snapshot["hosts"]["interop-agent"]["facts"]
    assert facts["driver_version"] == "570.124.06"
    assert facts["gpus"][7]["pci_bus_id"].lower().endswith("88:00.0")


def test_changed_host_key_is_refused_and_reported(openssh_server, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    config = write_config(
        openssh_server, tmp_path, known_hosts_for(openssh_server, tmp_path, wrong)
    )
    snapshot = poll_once(config)
    for host in snapshot["hosts"].values():
        assert host["status"] == "down"
        assert host["reason"] == "host key changed"
        assert host["gpus"] == []
