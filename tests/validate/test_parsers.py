"""The validation tools' own output formats, read back into figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.validate.parsers import (
    MIB_PER_S_TO_GBPS,
    ParseError,
    parse_compute_apps,
    parse_dcgm_diag,
    parse_gpu_reset,
    parse_ib_sysfs,
    parse_ib_write_bw,
    parse_nccl_tests,
    parse_nvlink_status,
    parse_pcie_links,
)

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


class TestDcgm:
    def test_dcgm4_memory_failure_names_the_gpu_and_warning(self):
        report = parse_dcgm_diag(read("dcgm4_r2_fail.json"))
        assert report.version == "4.2.3"
        assert not report.passed
        [failure] = report.failures
        assert (failure.category, failure.test, failure.gpu) == ("Hardware", "memory", 1)
        assert "cuMemAlloc" in failure.warnings[0]
        assert {r.gpu for r in report.results} == {0, 1}

    def test_dcgm3_with_progress_line_before_the_json_passes(self):
        report = parse_dcgm_diag(read("dcgm3_r1_pass.json"))
        assert report.version == "3.3.5"
        assert report.passed
        assert {r.status for r in report.results} == {"pass", "skip"}
        assert all(r.gpu is None for r in report.results)

    def test_dcgm3_gpu_ids_list_expands_per_gpu(self):
        text = (
            '{"DCGM GPU Diagnostic": {"test_categories": [{"category": "Hardware", "tests": '
            '[{"name": "GPU Memory", "results": [{"gpu_ids": "0,1,2", "status": "Pass"}]}]}]}}'
        )
        assert [r.gpu for r in parse_dcgm_diag(text).results] == [0, 1, 2]

    def test_runtime_error_is_not_a_pass(self):
        text = '{"DCGM Diagnostic": {"runtime_error": "Couldn\'t connect to nv-hostengine"}}'
        report = parse_dcgm_diag(text)
        assert not report.passed
        assert "nv-hostengine" in report.runtime_error

    @pytest.mark.parametrize(
        "text", ["", "Error: unable to establish a connection", "{", '{"other": 1}', "[1]"]
    )
    def test_not_dcgm_output_is_a_parse_error(self, text):
        with pytest.raises(ParseError):
            parse_dcgm_diag(text)


class TestNccl:
    def test_two_node_table(self):
        report = parse_nccl_tests(read("all_reduce_perf_2node.txt"))
        assert report.ranks == 4
        assert len(report.rows) == 8
        assert report.largest.size_b == 1073741824
        assert report.busbw_gbps == pytest.approx(113.89)
        assert report.avg_busbw_gbps == pytest.approx(101.946)
        assert report.wrong == 0

    def test_wrong_values_are_counted_and_na_is_none(self):
        text = (
            "     8388608       2097152     float     sum      -1    171.2   49.00   73.50"
            "      3    170.8   49.11   73.67      0\n"
            "    16777216       4194304     float     sum      -1    288.9   58.07   87.11"
            "    N/A    287.5   58.36   87.53    N/A\n"
            "# Out of bounds values : 2 FAILED\n"
        )
        report = parse_nccl_tests(text)
        assert report.rows[1].wrong is None
        assert report.wrong == 5

    def test_usage_message_is_a_parse_error(self):
        with pytest.raises(ParseError):
            parse_nccl_tests("all_reduce_perf: invalid option -- 'z'\nUSAGE: ...\n")


class TestIbWriteBw:
    def test_gbits_report_skips_interleaved_warnings(self):
        report = parse_ib_write_bw(read("ib_write_bw_gbits.txt"))
        assert report.device == "mlx5_0"
        assert report.avg_gbps == pytest.approx(392.18)

    def test_mib_report_is_converted_to_gbits(self):
        report = parse_ib_write_bw(read("ib_write_bw_mb.txt"))
        assert report.avg_gbps == pytest.approx(11791.91 * MIB_PER_S_TO_GBPS)
        assert 98 < report.avg_gbps < 100  # an EDR port's plateau

    def test_connection_failure_is_a_parse_error(self):
        with pytest.raises(ParseError, match="no bandwidth table"):
            parse_ib_write_bw(" Couldn't connect to 10.0.0.2:18515\nUnable to init the socket\n")


class TestNvidiaSmi:
    def test_pcie_links_with_na(self):
        links = parse_pcie_links(
            "0, 00000000:19:00.0, 1, 5, 16, 16\n1, 00000000:3B:00.0, [N/A], 5, 8, 16\n"
        )
        assert links[0].gen_current == 1 and links[0].gen_max == 5
        assert links[1].gen_current is None and links[1].width_current == 8

    def test_pcie_error_text_is_a_parse_error(self):
        with pytest.raises(ParseError):
            parse_pcie_links(
                "NVIDIA-SMI has failed because it couldn't communicate with the driver"
            )

    def test_nvlink_status_with_inactive_link(self):
        text = (
            "GPU 0: NVIDIA H200 (UUID: GPU-4a1c)\n"
            "\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n\t Link 2: 13.281 GB/s\n"
            "GPU 1: NVIDIA H200 (UUID: GPU-77aa)\n\t Link 0: 26.562 GB/s\n"
        )
        assert parse_nvlink_status(text) == {0: (26.562, None, 13.281), 1: (26.562,)}

    def test_compute_apps(self):
        apps = parse_compute_apps("41822, python3, 00000000:19:00.0, 131072\n")
        assert apps[0].pid == 41822 and apps[0].mem_used_mib == 131072
        assert parse_compute_apps("") == ()
        assert parse_compute_apps("No running processes found\n") == ()

    def test_gpu_reset_success_and_refusal(self):
        ok = parse_gpu_reset(
            "GPU 00000000:19:00.0 was successfully reset.\n"
            "GPU 00000000:3B:00.0 was successfully reset.\nAll done.\n"
        )
        assert ok.ok and len(ok.reset) == 2
        refused = parse_gpu_reset(
            "The following GPUs could not be reset:\n"
            "  GPU 00000000:19:00.0: In use by another client\n\n"
            "1 device is currently being used by one or more other processes "
            "(e.g., Fabric Manager, CUDA application, graphics application such as an X "
            "server, or a monitoring application such as another instance of nvidia-smi). "
            "Please first kill all processes using this device and all compute applications "
            "running in the system.\n"
        )
        assert not refused.ok
        assert refused.failed == (("00000000:19:00.0", "In use by another client"),)

    def test_ib_sysfs(self):
        text = (
            "/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE\n"
            "/sys/class/infiniband/mlx5_0/ports/1/rate:400 Gb/sec (4X NDR)\n"
            "/sys/class/infiniband/mlx5_1/ports/1/state:1: DOWN\n"
            "/sys/class/infiniband/mlx5_1/ports/1/rate:10 Gb/sec (4X SDR)\n"
        )
        ports = parse_ib_sysfs(text)
        assert [(p.device, p.state, p.rate_gbps) for p in ports] == [
            ("mlx5_0", "ACTIVE", 400.0),
            ("mlx5_1", "DOWN", 10.0),
        ]


@given(st.text(max_size=400))
def test_parsers_never_fail_other_than_with_parse_error(text):
    for parse in (
        parse_dcgm_diag,
        parse_nccl_tests,
        parse_ib_write_bw,
        parse_pcie_links,
        parse_nvlink_status,
        parse_compute_apps,
        parse_gpu_reset,
        parse_ib_sysfs,
    ):
        try:
            parse(text)
        except ParseError:
            pass
