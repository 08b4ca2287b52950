"""The interop fixture: one OpenSSH sshd for the session (tests/support/interop.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.interop import (
    FAKE_NVIDIA_SMI,
    SSHD,
    OpenSshServer,
    account_locked,
    free_port,
    unavailable,
    wait_listening,
)


@pytest.fixture(scope="session")
def openssh_server():
    user = os.environ.get("OPSCONSOLE_INTEROP_USER", "opsconsole-ci")
    if not os.path.exists(SSHD):
        unavailable("OpenSSH sshd is not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        unavailable("sshd must start as root to log a user in")
    try:
        pwd.getpwnam(user)
    except KeyError:
        unavailable(f"no user {user!r} (useradd --create-home --shell /bin/sh {user})")
    if account_locked(user):
        unavailable(f"user {user!r} is locked; sshd without PAM refuses it (usermod -p '*' {user})")

    # Not under pytest's root-only tmp dir: the login user must read its keys and PATH.
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-sshd-"))
    workdir.chmod(0o755)
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    bin_dir.chmod(0o755)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/usr/bin/python3\n{FAKE_NVIDIA_SMI.read_text()}")
    smi.chmod(0o755)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / "host_key")], check=True
    )
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / "client_key")],
        check=True,
    )
    authorized = workdir / "authorized_keys"
    shutil.copy(workdir / "client_key.pub", authorized)
    authorized.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {workdir / "host_key"}
PidFile {workdir / "sshd.pid"}
AuthorizedKeysFile {authorized}
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin no
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
SetEnv PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin
"""
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log, stdout=log)
    try:
        wait_listening(port, process)
        host_key = (workdir / "host_key.pub").read_text().split()
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield OpenSshServer(port, user, known_hosts, workdir / "client_key", workdir)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
