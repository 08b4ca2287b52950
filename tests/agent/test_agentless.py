"""Agentless mode: the one shell command, run for real with a stand-in nvidia-smi."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.agent.agentless import (
    AGENTLESS_COMMAND,
    FILES_MARKER,
    REMAP_MARKER,
    parse_agentless_hello,
    parse_agentless_output,
)
from opsconsole.wire import Hello, Sample
from tests.agent import smi_outputs as out
from tests.agent.wire import roundtrip

STAND_IN = """#!{python}
import sys
args = " ".join(sys.argv[1:])
with open({log!r}, "a") as log:
    log.write(args + "\\n")
if "--query-remapped-rows=" in args:
    sys.stdout.write({remap!r})
elif {refuse!r} and "clocks_event_reasons" in args:
    sys.stdout.write({refused!r})
    sys.exit(2)
else:
    sys.stdout.write({rows!r})
    sys.exit({status!r})
"""
FELL_OFF_ROWS = out.H100_ROWS.splitlines(keepends=True)[0] + out.FELL_OFF
"""What nvidia-smi prints, exiting 15, when GPU 1 of two fell off the bus."""


def run_agentless(
    tmp_path: Path, refuse_new_names=False, with_smi=True, rows=out.H100_ROWS, status=0
) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if with_smi:
        script = bin_dir / "nvidia-smi"
        script.write_text(
            STAND_IN.format(
                python=sys.executable,
                log=str(tmp_path / "nvidia-smi.log"),
                remap=out.REMAP_ROWS,
                refuse=refuse_new_names,
                refused=out.REFUSED,
                rows=rows,
                status=status,
            )
        )
        script.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LC_ALL": "C"}
    result = subprocess.run(
        ["sh", "-c", AGENTLESS_COMMAND], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_the_command_output_becomes_a_sample_and_a_hello(tmp_path):
    text = run_agentless(tmp_path)
    sample = roundtrip(parse_agentless_output(text, seq=7, ts=1_800_000_000.0))
    assert isinstance(sample, Sample)
    assert (sample.seq, sample.driver, sample.gpu_count) == (7, "ok", 2)
    assert sample.gpus[1].remap_corrected == 3 and sample.gpus[1].clock_event_reasons == 4
    if Path("/proc/loadavg").exists():
        assert sample.load.load1 is not None
    hello = roundtrip(parse_agentless_hello(text, ts=1_800_000_000.0))
    assert isinstance(hello, Hello) and hello.mode == "agentless"
    assert [gpu.pci_bus_id for gpu in hello.gpus] == ["0000:18:00.0", "0000:2a:00.0"]
    assert hello.host.driver_version == "550.90.07"
    assert hello.host.hostname == Path("/proc/sys/kernel/hostname").read_text().strip()


def gpu_queries(tmp_path: Path) -> list[str]:
    """The --query-gpu= field lists nvidia-smi was run with, in order."""
    lines = (tmp_path / "nvidia-smi.log").read_text().splitlines()
    return [arg for line in lines for arg in line.split() if arg.startswith("--query-gpu=")]


@pytest.mark.slow
def test_a_driver_before_535_is_answered_by_the_legacy_query(tmp_path):
    sample = parse_agentless_output(run_agentless(tmp_path, refuse_new_names=True), 1, 1.0)
    assert sample["gpu_count"] == 2 and sample["driver_detail"] == ""
    new, legacy = gpu_queries(tmp_path)
    assert "clocks_event_reasons.active" in new and "clocks_throttle_reasons.active" in legacy


@pytest.mark.slow
def test_a_current_driver_runs_only_the_first_query(tmp_path):
    run_agentless(tmp_path)
    assert len(gpu_queries(tmp_path)) == 1


@pytest.mark.slow
def test_a_gpu_off_the_bus_does_not_run_the_legacy_query_too(tmp_path):
    text = run_agentless(tmp_path, rows=FELL_OFF_ROWS, status=15)
    assert len(gpu_queries(tmp_path)) == 1
    sample = roundtrip(parse_agentless_output(text, 1, 1.0))
    assert sample.gpu_count == 1 and [gpu.index for gpu in sample.gpus] == [0]
    assert sample.driver_detail.startswith("Unable to determine the device handle")
    assert [gpu.index for gpu in roundtrip(parse_agentless_hello(text, 1.0)).gpus] == [0]


def test_rows_printed_twice_count_once():
    text = FELL_OFF_ROWS + FELL_OFF_ROWS + out.H100_ROWS + REMAP_MARKER + "\n" + out.REMAP_ROWS
    sample = roundtrip(parse_agentless_output(text, 1, 1.0))
    assert [gpu.index for gpu in sample.gpus] == [0, 1] and sample.gpu_count == 2
    assert sample.gpus[1].remap_corrected == 3
    assert [gpu.index for gpu in roundtrip(parse_agentless_hello(text, 1.0)).gpus] == [0, 1]


def test_no_nvidia_smi_reads_as_driver_unavailable(tmp_path):
    sample = roundtrip(parse_agentless_output(run_agentless(tmp_path, with_smi=False), 1, 1.0))
    assert sample.driver == "unavailable" and "not found" in sample.driver_detail
    assert sample.gpus == []


def test_grep_lines_feed_the_same_fabric_readers():
    text = "\n".join(
        [
            out.H100_ROWS,
            REMAP_MARKER,
            FILES_MARKER,
            "/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE",
            "/sys/class/infiniband/mlx5_0/ports/1/phys_state:2: Polling",
            "/sys/class/infiniband/mlx5_0/ports/1/rate:400 Gb/sec (4X NDR)",
            "/sys/class/infiniband/mlx5_0/ports/1/counters/link_downed:4",
            "/sys/class/net/ens1f0np0/operstate:up",
            "/sys/class/net/ens1f0np0/statistics/rx_errors:12",
            "/proc/loadavg:1.00 2.00 3.00 1/2 3",
            "/etc/os-release:NAME=Ubuntu",
            '/etc/os-release:PRETTY_NAME="Ubuntu 22.04.4 LTS"',
            "grep: /sys/class/net/eno1/speed: Invalid argument",
        ]
    )
    sample = roundtrip(parse_agentless_output(text, 1, 1.0))
    (port,) = sample.ib
    assert (port.state, port.phys_state, port.rate_gbps) == ("ACTIVE", "Polling", 400.0)
    assert port.counters == {"link_downed": 4}
    assert sample.eth[0].counters == {"rx_errors": 12} and sample.load.load15 == 3.0
    assert parse_agentless_hello(text, 1.0)["host"]["os"] == "Ubuntu 22.04.4 LTS"


@pytest.mark.slow
@given(st.text())
def test_parse_never_raises(text):
    roundtrip(parse_agentless_output(text, 1, 1.0))
    roundtrip(parse_agentless_hello(text, 1.0))


@pytest.mark.skipif(not os.path.exists("/bin/sh"), reason="needs a POSIX shell")
def test_command_is_plain_posix_shell():
    assert "'" not in AGENTLESS_COMMAND.replace(f"'{REMAP_MARKER}'", "").replace(
        f"'{FILES_MARKER}'", ""
    )
    subprocess.run(["sh", "-n", "-c", AGENTLESS_COMMAND], check=True, timeout=10)
