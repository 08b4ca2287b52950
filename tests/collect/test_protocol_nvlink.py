"""NVLink on the wire: per GPU, one list per field, list position = link number."""

from __future__ import annotations

import json

import pytest

from opsconsole.collect.readings import gpu_view
from opsconsole.ui.view.health import gpu_health
from opsconsole.wire import MAX_NVLINKS, NvLinks, ProtocolError, decode_line

COUNTERS = ("replay_errors", "recovery_errors", "crc_flit_errors", "crc_data_errors")


def line_with(nvlink) -> bytes:
    gpu = {"index": 3, "uuid": "GPU-3"}
    if nvlink is not ...:
        gpu["nvlink"] = nvlink
    return json.dumps({"type": "sample", "seq": 1, "ts": 100.0, "gpus": [gpu]}).encode()


def columns(links: int, **overrides) -> dict:
    nvlink = {"up": [True] * links, **{key: [0] * links for key in COUNTERS}}
    nvlink.update(overrides)
    return nvlink


def test_columns_decode_by_link_number():
    nvlink = columns(18, up=[n != 5 for n in range(18)])
    nvlink["crc_flit_errors"][3] = 7
    nvlink["recovery_errors"][9] = None  # not read: null, never 0
    gpu = decode_line(line_with(nvlink)).gpus[0]
    assert gpu.nvlink.up.count(False) == 1 and gpu.nvlink.crc_flit_errors[3] == 7
    view = gpu_view(gpu, "fresh", 100.0).nvlink_errors
    assert list(view) == list(range(18))
    assert view[3] == {
        "up": True,
        "replay_errors": 0,
        "recovery_errors": 0,
        "crc_flit_errors": 7,
        "crc_data_errors": 0,
    }
    assert view[5]["up"] is False and view[9]["recovery_errors"] is None
    assert gpu_health(gpu, None, 100.0).why == "1 NVLink down"


@pytest.mark.parametrize("nvlink", [..., {}, columns(0)], ids=["absent", "empty", "empty-lists"])
def test_a_gpu_without_nvlink_has_empty_lists(nvlink):
    gpu = decode_line(line_with(nvlink)).gpus[0]
    assert gpu.nvlink == NvLinks() and gpu_view(gpu, "fresh", 100.0).nvlink_errors == {}
    assert gpu_health(gpu, None, 100.0).level == "ok"


def test_unread_link_state_is_not_down():
    gpu = decode_line(line_with(columns(2, up=[None, True]))).gpus[0]
    assert gpu_health(gpu, None, 100.0).level == "ok"


@pytest.mark.parametrize(
    ("nvlink", "reason"),
    [
        (columns(18, crc_data_errors=[0] * 17), "lists of different lengths"),
        ({"up": [True] * 4}, "lists of different lengths"),
        (columns(MAX_NVLINKS + 1), f"length <= {MAX_NVLINKS}"),
        (columns(2, replay_errors=[0, -1]), ">= 0"),
        (columns(2, up=[1, 0]), "Expected `bool | null`"),
        (columns(2, replay_errors=[0, 1.5]), "Expected `int | null`"),
        ([{"link": 0, "up": True}], "Expected `object`"),
    ],
    ids=["short-list", "only-up", "too-long", "negative", "int-for-bool", "float", "old-shape"],
)
def test_malformed_nvlink_columns_are_refused_with_a_one_line_reason(nvlink, reason):
    with pytest.raises(ProtocolError) as refused:
        decode_line(line_with(nvlink))
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_the_reason_names_the_gpu_and_every_length():
    with pytest.raises(ProtocolError, match=r"GPU 3 nvlink: .*\(up 18, replay_errors 18, "):
        decode_line(line_with(columns(18, crc_data_errors=[0] * 17)))
