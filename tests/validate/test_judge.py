"""Tool output against a host class's thresholds: measured vs expected, and the blame."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.config import fleet_from_dict
from opsconsole.errors import ConfigError
from opsconsole.validate.judge import (
    Output,
    attribute_pairs,
    judge_dcgm,
    judge_ib_pair,
    judge_nccl,
    judge_nvlink,
    judge_pcie,
)
from opsconsole.validate.model import CheckStatus, RunState, host_verdicts
from opsconsole.validate.settings import Thresholds, validation_settings

DATA = Path(__file__).parent / "data"
LIMITS = Thresholds(
    nccl_busbw_gbps=((8, 400.0), (16, 100.0)),
    ib_write_bw_gbps=360.0,
    nvlink_link_gbps=26.0,
    pcie_gen_min=5,
    pcie_width_min=16,
)


def ib_output(gbps: float) -> Output:
    text = (
        " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n"
        f" 65536      748102           0.00               {gbps:.2f}		   0.748027\n"
    )
    return Output("ib_write_bw -d mlx5_3", 0, text)


def test_dcgm_failure_names_test_and_gpu():
    out = Output("dcgmi diag -r 2 -j", 226, (DATA / "dcgm4_r2_fail.json").read_text())
    check = judge_dcgm("n1", out, 2)
    assert check.status == CheckStatus.FAIL
    assert "memory on GPU 1" in check.summary
    assert check.raw.startswith("{")


def test_dcgm_missing_is_skipped_not_passed():
    check = judge_dcgm("n1", Output("dcgmi", 127, "", "bash: dcgmi: command not found"), 1)
    assert check.status == CheckStatus.SKIP


def test_nccl_busbw_uses_the_entry_for_the_gpu_count():
    out = Output("all_reduce_perf", 0, (DATA / "all_reduce_perf_2node.txt").read_text())
    assert judge_nccl("nccl_fabric", ["a", "b"], out, 16, LIMITS).status == CheckStatus.PASS
    failed = judge_nccl("nccl_fabric", ["a", "b"], out, 8, LIMITS)
    assert failed.status == CheckStatus.FAIL
    assert "113.9 GB/s" in failed.summary and "expected >= 400 GB/s" in failed.summary


def test_pcie_narrow_link_fails_idle_gen_does_not():
    out = Output(
        "nvidia-smi", 0, "0, 00000000:19:00.0, 1, 5, 16, 16\n1, 00000000:3B:00.0, 5, 5, 8, 16\n"
    )
    check = judge_pcie("n1", out, LIMITS)
    assert check.status == CheckStatus.FAIL
    assert check.summary == "GPU 1 x8 (expected x16)"


def test_nvlink_slow_link_is_measured_against_expected():
    out = Output(
        "nvidia-smi nvlink -s",
        0,
        "GPU 0: NVIDIA H200\n\t Link 0: 26.562 GB/s\n\t Link 1: 13.281 GB/s\n",
    )
    check = judge_nvlink("n1", out, LIMITS)
    assert check.status == CheckStatus.FAIL
    assert "13.281 GB/s, expected >= 26 GB/s" in check.summary


def test_slow_ib_end_is_the_host_without_a_passing_pair():
    checks = [
        judge_ib_pair("a", "b", "mlx5_3", ib_output(392.0), LIMITS),
        judge_ib_pair("b", "c", "mlx5_3", ib_output(181.5), LIMITS),
        judge_ib_pair("c", "a", "mlx5_3", ib_output(180.9), LIMITS),
    ]
    checks = attribute_pairs(checks)
    assert checks[1].blame == ("c",) and checks[2].blame == ("c",)
    assert "181.5 Gb/s, expected >= 360 Gb/s" in checks[1].summary
    verdicts = host_verdicts(checks, ["a", "b", "c"])
    assert verdicts == {"a": RunState.PASSED, "b": RunState.PASSED, "c": RunState.FAILED}


def test_two_nodes_slow_pair_blames_both():
    checks = attribute_pairs([judge_ib_pair("a", "b", "mlx5_0", ib_output(100.0), LIMITS)])
    assert checks[0].blame == ("a", "b")


def _fleet(validation: dict, tmp_path):
    raw = {
        "sites": [{"name": "SG1"}],
        "racks": [{"names": "r1", "site": "SG1"}],
        "host_classes": {"h200": {"gpus": 8}},
        "hosts": [{"names": "n1", "rack": "r1", "class": "h200"}],
        "validation": validation,
    }
    return fleet_from_dict(raw, tmp_path / "c.toml")


def test_settings_thresholds_by_class(tmp_path):
    fleet = _fleet({"classes": {"h200": {"nccl_busbw_gbps": {"16": 300.0, "8": 420.0}}}}, tmp_path)
    limits = validation_settings(fleet).thresholds(fleet.host("n1"))
    assert limits.busbw_for(8) == 420.0 and limits.busbw_for(32) == 300.0
    assert limits.busbw_for(4) is None


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        (
            {"classes": {"h20": {}}},
            'validation.classes.h20: unknown host class "h20" (did you mean h200?)',
        ),
        (
            {"classes": {"h200": {"nccl_busbw_gbps": {"eight": 1.0}}}},
            "validation.classes.h200.nccl_busbw_gbps",
        ),
        ({"dcgm_levels": {"fast": 1}}, "validation.dcgm_levels.fast: unknown level"),
        ({"required_level": "slow"}, "validation.required_level: expected one of"),
        ({"schedule": {"max_share_per_rack": 2}}, "validation.schedule.max_share_per_rack"),
    ],
)
def test_config_errors_name_the_key_path(tmp_path, validation, message):
    with pytest.raises(ConfigError, match=r"c\.toml: ") as err:
        validation_settings(_fleet(validation, tmp_path))
    assert message in str(err.value)
