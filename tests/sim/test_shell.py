"""What a host without the agent prints: the agentless command and nvidia-smi queries."""

from __future__ import annotations

import pytest

from opsconsole.agent.agentless import (
    AGENTLESS_COMMAND,
    parse_agentless_hello,
    parse_agentless_output,
)
from opsconsole.agent.smi import QUERY_FIELDS, smi_command
from opsconsole.sim.shell import run_command_line
from opsconsole.sim.sysfs import SimSysfs
from opsconsole.sim.world import SimFleet
from tests.support.sim import T0


@pytest.fixture
def host():
    host = SimFleet(4, seed=6, start_ts=T0).host("sg1-r01-n02")
    host.advance(T0 + 10)
    return host


def run(host, command):
    return run_command_line(host, SimSysfs(host), command)


def test_agentless_output_parses_into_a_full_sample(host):
    status, out, _ = run(host, AGENTLESS_COMMAND)
    assert status == 0
    sample = parse_agentless_output(out, 1, T0 + 10)
    assert sample["driver"] == "ok" and sample["gpu_count"] == 8
    gpu = sample["gpus"][7]
    assert gpu["power_limit_w"] == 700.0 and gpu["mem_total_mib"] == 143_771
    assert gpu["na"]["fan_pct"] == "not_supported"  # "[N/A]"
    assert gpu["remap_pending"] is False  # from the remapped-rows query
    assert len(sample["ib"]) == 8 and sample["ib"][0]["counters"]["link_downed"] == 0
    assert [i["name"] for i in sample["eth"]] == ["eno1", "ens21f0np0"]
    assert sample["load"]["load1"] == pytest.approx(host.load[0], abs=0.01)
    hello = parse_agentless_hello(out, T0 + 10)
    assert hello["host"]["hostname"] == host.name
    assert hello["host"]["driver_version"] == host.driver_version
    assert [g["pci_bus_id"] for g in hello["gpus"]][:2] == ["0000:19:00.0", "0000:3b:00.0"]


def test_agentless_sees_ib_faults(host):
    host.inject("ib_port_down", port="mlx5_1")
    sample = parse_agentless_output(run(host, AGENTLESS_COMMAND)[1], 1, T0)
    assert sample["ib"][1]["state"] == "DOWN" and sample["ib"][1]["rate_gbps"] == 10.0


def test_nvidia_smi_query_alone_prints_only_csv(host):
    status, out, err = run(host, " ".join(smi_command()))
    lines = out.splitlines()
    assert status == 0 and err == "" and len(lines) == 8
    cells = lines[0].split(", ")
    assert len(cells) == len(QUERY_FIELDS)
    row = dict(zip(QUERY_FIELDS, cells, strict=True))
    assert row["name"] == "NVIDIA H200" and row["pci.bus_id"] == "00000000:19:00.0"
    assert row["fan.speed"] == "[N/A]" and row["clocks_event_reasons.active"].startswith("0x")
    assert float(row["power.draw"]) <= 700.0


def test_nvidia_smi_with_header_and_units(host):
    out = run(host, "nvidia-smi --query-gpu=index,power.draw,fan.speed --format=csv")[1]
    header, first = out.splitlines()[:2]
    assert header == "index, power.draw [W], fan.speed [%]"
    assert first.startswith("0, ") and first.split(", ")[1].endswith(" W")
    assert first.endswith("[N/A]")


def test_nvidia_smi_refuses_an_unknown_field(host):
    status, out, _ = run(host, "nvidia-smi --query-gpu=index,bogus --format=csv,noheader")
    assert status == 2 and out == 'Field "bogus" is not a valid field to query.\n'


def test_unknown_commands_exit_127(host):
    status, out, err = run(host, "rm -rf /")
    assert (status, out, err) == (127, "", "bash: rm: command not found\n")


def test_a_lost_gpu_has_no_row_and_nvidia_smi_exits_15(host):
    host.inject("xid79", gpu=2)
    status, out, _ = run(host, " ".join(smi_command()))
    assert status == 15
    assert "Unable to determine the device handle for GPU00000000:4C:00.0" in out
    assert len([line for line in out.splitlines() if line[:1].isdigit()]) == 7


def test_agentless_with_a_lost_gpu_counts_seven(host):
    host.inject("xid79", gpu=2)
    sample = parse_agentless_output(run(host, AGENTLESS_COMMAND)[1], 1, T0)
    assert sample["gpu_count"] == 7
