"""`opsconsole demo` in a real terminal (tmux): the fleet, then a host, then a clean exit
that stops the simulator and removes the temp directory. Waits poll the pane with a
deadline; nothing here asserts on time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Pane:
    """A session on a tmux server of its own (`tmux -L`): another session's server, or a
    client attached to it, cannot resize this pane (one run saw 80x24, not 140x40)."""

    def __init__(self, session: str):
        self.session = session
        self.tmux = ["tmux", "-L", session]

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False)

    def text(self) -> str:
        result = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.session],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return result.stdout

    def send(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.session, *keys], check=True)

    def wait_for(self, *needles: str, timeout_s: float = 90.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not on screen within {timeout_s} s:\n{text}")
            time.sleep(0.2)


def simulators_under(directory: Path) -> list[int]:
    """PIDs of `opsconsole sim serve` processes writing under `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "serve" in argv and any(str(directory) in arg for arg in argv):
                found.append(int(entry.name))
    return found


def start_demo(env_prefix: str, arguments: str) -> Pane:
    """`opsconsole demo ARGUMENTS` in a new 140x40 tmux session on its own server; its
    exit status is printed as DEMO-EXITED and the pane stays open to be read."""
    session = f"opsconsole-test-{uuid.uuid4().hex[:8]}"
    command = (
        f"cd {REPO} && {env_prefix} {sys.executable} -m opsconsole demo {arguments};"
        " echo DEMO-EXITED $?; sleep 600"
    )
    # A runner's COLUMNS/LINES (pytest-xdist's workers set 80x24) would override the
    # pane's 140x40 in Textual: the demo must size itself from the terminal it is in.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    pane = Pane(session)
    subprocess.run(
        [*pane.tmux, "new-session", "-d", "-s", session, "-x", "140", "-y", "40", command],
        check=True, env=env,
    )  # fmt: skip
    return pane


@pytest.mark.timeout(240)
def test_demo_shows_the_fleet_then_a_host_and_cleans_up(tmp_path):
    workdir = tmp_path / "tmp"
    workdir.mkdir()
    pane = start_demo(f"TMPDIR={workdir}", "--hosts 16")
    try:
        pane.wait_for("16 fresh", "sg1-r01-n16", "■ SG1")
        assert len(simulators_under(workdir)) == 1  # the simulator runs as a subprocess
        pane.send(":")
        pane.wait_for("fleet · host NAME")
        pane.send("host sg1-r01-n03", "Enter")
        text = pane.wait_for("sg1-r01-n03  site SG1", "FRESH", "mlx5_0/1")
        assert "LAST XID" in text
        pane.send("Escape")
        pane.wait_for("■ SG1", "metric utilisation", "TENANT", "aurora-labs 8")
        pane.send("l")  # the demo's seeded tenants, a lease and a reservation
        pane.wait_for("reserved + active", "kestrel-ai", "peak GPUs/day", "■ SG1 · 128 GPUs")
        pane.send("Escape")
        pane.wait_for("■ SG1", "metric utilisation")
        pane.send(":")
        pane.wait_for("fleet · host NAME")
        pane.send("quit", "Enter")
        text = pane.wait_for("DEMO-EXITED 0", timeout_s=60)
        assert str(workdir) not in text  # no path left on screen to a directory now gone
        assert "--dir DIR" in text  # but how to keep one
        assert list(workdir.iterdir()) == []  # the demo's temp directory is gone
        assert simulators_under(workdir) == []  # and the simulator was stopped
    finally:
        pane.close()


@pytest.mark.timeout(240)
def test_demo_with_dir_shares_its_store_with_the_cli(tmp_path):
    """`demo --dir` keeps the fleet's config and store, so `lease list` and `usage --json`
    pointed at that config see the demo's leases while it runs, and after it exits."""
    demo_dir = tmp_path / "demo"
    pane = start_demo("", f"--hosts 16 --dir {demo_dir}")
    config = demo_dir / "fleet" / "config.toml"

    def cli(*args: str):
        result = subprocess.run(
            [sys.executable, "-m", "opsconsole", *args, "--config", str(config), "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    try:
        pane.wait_for("16 fresh", "aurora-labs 8")
        leases = cli("lease", "list")
        tenants = {lease["tenant"] for lease in leases}
        assert tenants == {"aurora-labs", "kestrel-ai"}
        usage = {row["tenant"]: row for row in cli("usage")["tenants"]}
        assert usage["aurora-labs"]["leases"] == 1
        assert usage["aurora-labs"]["gpu_hours"] > 0
        pane.send(":")
        pane.wait_for("fleet · host NAME")
        pane.send("quit", "Enter")
        pane.wait_for("DEMO-EXITED 0", timeout_s=60)
        assert config.exists()  # kept: --dir is the operator's directory
        assert {lease["tenant"] for lease in cli("lease", "list")} == tenants
    finally:
        pane.close()
