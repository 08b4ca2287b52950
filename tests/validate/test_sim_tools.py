"""The simulated hosts answer the validation tools in their own formats, and the
validation faults change what those tools measure (read back with the real parsers)."""

from __future__ import annotations

import pytest

from opsconsole.config.validation import ValidationCommands
from opsconsole.sim.shell import run_command_line
from opsconsole.sim.sysfs import SimSysfs
from opsconsole.sim.world import SimFleet
from opsconsole.validate.parsers import (
    parse_compute_apps,
    parse_dcgm_diag,
    parse_gpu_reset,
    parse_ib_sysfs,
    parse_ib_write_bw,
    parse_nccl_tests,
    parse_nvlink_status,
    parse_pcie_links,
)

CMD = ValidationCommands()


@pytest.fixture
def fleet():
    return SimFleet(3, seed=5, start_ts=1_700_000_000.0)


def run(host, command):
    status, out, _err = run_command_line(host, SimSysfs(host), command)
    return status, out


def test_healthy_host_reads_back_healthy(fleet):
    host = fleet.hosts["sg1-r01-n01"]
    assert parse_dcgm_diag(run(host, CMD.dcgm.format(dcgm_level=3))[1]).passed
    assert len(parse_pcie_links(run(host, CMD.pcie)[1])) == 8
    assert all(
        s == 26.562 for v in parse_nvlink_status(run(host, CMD.nvlink)[1]).values() for s in v
    )
    assert {p.state for p in parse_ib_sysfs(run(host, CMD.ib_ports)[1])} == {"ACTIVE"}
    assert parse_nccl_tests(run(host, CMD.nccl_local.format(gpus=8))[1]).busbw_gbps > 440


def test_hbm_fault_fails_the_memory_test_from_level_2(fleet):
    host = fleet.hosts["sg1-r01-n01"]
    host.inject("hbm_fail", gpu=3)
    assert parse_dcgm_diag(run(host, CMD.dcgm.format(dcgm_level=1))[1]).passed
    status, out = run(host, CMD.dcgm.format(dcgm_level=2))
    [failure] = parse_dcgm_diag(out).failures
    assert status != 0 and (failure.test, failure.gpu) == ("memory", 3)


def test_slow_nvlink_halves_the_local_all_reduce(fleet):
    host = fleet.hosts["sg1-r01-n01"]
    before = parse_nccl_tests(run(host, CMD.nccl_local.format(gpus=8))[1]).busbw_gbps
    host.inject("nvlink_slow", gpu=2)
    after = parse_nccl_tests(run(host, CMD.nccl_local.format(gpus=8))[1]).busbw_gbps
    assert after < before * 0.6
    assert min(parse_nvlink_status(run(host, CMD.nvlink)[1])[2]) == 13.281


def test_slow_ib_port_shows_only_in_bandwidth_tests(fleet):
    a, b = fleet.hosts["sg1-r01-n01"], fleet.hosts["sg1-r01-n02"]
    b.inject("ib_slow", port="mlx5_3")
    assert {p.rate_gbps for p in parse_ib_sysfs(run(b, CMD.ib_ports)[1])} == {400.0}
    client = CMD.ib_client.format(device="mlx5_3", server=b.name)
    slow = parse_ib_write_bw(run(a, client)[1]).avg_gbps
    fine = parse_ib_write_bw(run(a, CMD.ib_client.format(device="mlx5_2", server=b.name))[1])
    assert slow < 200 < 380 < fine.avg_gbps
    fabric = CMD.nccl_fabric.format(ranks=16, host_slots=f"{a.name}:8,{b.name}:8")
    report = parse_nccl_tests(run(a, fabric)[1])
    assert report.ranks == 16 and report.busbw_gbps < 200


def test_dirty_node_keeps_a_process_through_kill_and_blocks_reset(fleet):
    host = fleet.hosts["sg1-r01-n03"]
    host.inject("dirty_node", gpu=1)
    pids = [a.pid for a in parse_compute_apps(run(host, CMD.processes)[1])]
    run(host, CMD.kill.format(pids=" ".join(map(str, pids))))
    left = parse_compute_apps(run(host, CMD.processes)[1])
    assert [a.bus_id for a in left] == [host.gpus[1].pci_bus_id]
    assert not parse_gpu_reset(run(host, CMD.gpu_reset)[1]).ok
    host.clear("dirty_node")
    assert parse_gpu_reset(run(host, CMD.gpu_reset)[1]).ok
