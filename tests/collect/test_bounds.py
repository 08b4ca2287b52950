"""Readings a tenant can forge: bounded against physics and the host's inventory, refused
ones visible as `invalid` and absent from every number downstream; host time, GPU count
and identity claims checked. No network: HostState and the bounds module directly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.collect.bounds import GPU_BOUNDS, check_sample
from opsconsole.collect.snapshot import host_snapshot
from opsconsole.collect.state import FleetState
from opsconsole.store.rollup import accumulate
from opsconsole.wire import Hello, Sample, decode_line
from tests.collect.test_state import make_host
from tests.support.collect import hello_line, sample_dict


def decoded(raw: dict) -> Sample:
    message = decode_line(msgspec.json.encode(raw))
    assert isinstance(message, Sample)
    return message


def two_hosts(gpus: int = 2) -> FleetState:
    return FleetState([make_host("h1", gpus), make_host("h2", gpus)], now_ts=1000.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("power_w", 1e308),
        ("power_w", 901.0),  # above twice its own 450 W limit
        ("temp_c", 1e6),
        ("util_gpu_pct", 101.0),
        ("util_mem_pct", 1e300),
        ("mem_used_mib", 90_000.0),  # above its 81,559 MiB total
        ("sm_clock_mhz", 99_999.0),
        ("ecc_volatile_uncorrected", 2**60),
        ("fan_pct", 1e9),
    ],
)
def test_out_of_bounds_reading_is_invalid_and_reaches_nothing(field, value):
    state = two_hosts()
    host = state.hosts["h1"]
    raw = sample_dict(1, 5.0)
    raw["gpus"][0].update(power_limit_w=450.0, mem_total_mib=81_559.0, mem_used_mib=100.0)
    raw["gpus"][0][field] = value
    message = decoded(raw)
    host.apply_sample(message, now_ts=1001.0)
    reading = host.gpus()[0].readings[field]
    assert reading.state == "invalid" and reading.value is None
    assert field in reading.detail or "outside" in reading.detail or "above" in reading.detail
    assert getattr(message.gpus[0], field) is None  # what the store and the alerts see
    assert host.reason == "invalid readings" and field in host.detail
    assert host.invalid_readings == 1
    snap = host_snapshot(host)
    assert snap["gpus"][0]["readings"][field]["state"] == "invalid"
    json.dumps(snap, allow_nan=False)  # nothing non-finite reaches `poll --json`
    finished: list = []
    accumulate({}, "h1", 960, message.gpus, finished)  # the store's rollups read the same


def test_honest_sample_passes_untouched():
    host = two_hosts().hosts["h1"]
    raw = sample_dict(1, 5.0)
    raw["gpus"][0].update(power_limit_w=700.0, power_w=690.0, mem_total_mib=81_559.0)
    host.apply_sample(decoded(raw), now_ts=1001.0)
    assert host.invalid_readings == 0 and host.reason == ""
    assert host.gpus()[0].readings["power_w"].value == 690.0


@given(
    st.dictionaries(
        st.sampled_from(sorted(GPU_BOUNDS)),
        st.floats(min_value=0, max_value=1.7e308, allow_nan=False, allow_infinity=False),
    )
)
def test_any_finite_values_leave_only_in_bounds_readings(values):
    raw = sample_dict(1, 5.0)
    raw["gpus"][0].update(
        {k: (int(v) if "ecc" in k or k in ("pcie_replay", "recovery_action") else v)
         for k, v in values.items()}
    )  # fmt: skip
    try:
        message = decoded(raw)
    except Exception:  # an integer beyond msgspec's int range: the line is refused
        return
    check_sample(message)
    for name, (low, high, _unit) in GPU_BOUNDS.items():
        value = getattr(message.gpus[0], name)
        assert value is None or (low <= value <= high and math.isfinite(value))
    assert math.isfinite(sum(g.power_w or 0.0 for g in message.gpus))


def test_counter_going_down_is_a_reset_not_invalid():
    host = two_hosts().hosts["h1"]
    raw = sample_dict(1, 5.0)
    raw["gpus"][0]["pcie_replay"] = 50
    host.apply_sample(decoded(raw), now_ts=1001.0)
    raw = sample_dict(2, 7.0)
    raw["gpus"][0]["pcie_replay"] = 3
    host.apply_sample(decoded(raw), now_ts=1003.0)
    assert host.counter_resets == 1 and "pcie_replay reset" in host.last_counter_reset
    assert host.gpus()[0].readings["pcie_replay"].value == 3
    assert host.invalid_readings == 0


def test_samples_are_stamped_with_receive_time_and_skew_is_kept():
    host = two_hosts().hosts["h1"]
    event = {"kind": "xid", "code": 79, "ts": 32_503_680_000.0, "source": "kmsg"}
    message = decoded(sample_dict(1, 32_503_680_000.0, events=[event]))  # year 3000
    host.apply_sample(message, now_ts=1001.0)
    assert message.ts == 1001.0 and message.events[0].ts == 1001.0
    assert host.clock_skew_s == pytest.approx(32_503_680_000.0 - 1001.0)
    assert host.history.timestamps() == [1001.0]
    message = decoded(sample_dict(2, 0.0))  # 1970
    host.apply_sample(message, now_ts=1003.0)
    assert message.ts == 1003.0 and host.clock_skew_s == pytest.approx(-1003.0)


def test_more_gpus_than_expected_are_kept_out_of_totals_until_accepted():
    host = two_hosts(gpus=2).hosts["h1"]
    raw = json.loads(hello_line(gpus=120))
    raw["host"]["hostname"] = "h1"
    hello = decode_line(json.dumps(raw).encode())
    assert isinstance(hello, Hello)
    host.apply_hello(hello, now_ts=1000.0)
    assert len(hello.gpus) == 2 and host.extra_gpus == 118  # what the store's inventory gets
    message = decoded(sample_dict(1, 5.0, gpus=120))
    host.apply_sample(message, now_ts=1001.0)
    assert [g.index for g in message.gpus] == [0, 1]
    assert len(host.gpus()) == 2 and host.gpu_count == 120
    assert host.reason == "gpu count" and "118 kept out of totals" in host.detail
    assert host.accept_extra_gpus() == 120
    host.apply_sample(decoded(sample_dict(2, 7.0, gpus=120)), now_ts=1003.0)
    assert len(host.gpus()) == 120 and host.extra_gpus == 0


def test_repeated_gpu_index_counts_once():
    host = two_hosts(gpus=2).hosts["h1"]
    raw = sample_dict(1, 5.0)
    raw["gpus"].append(dict(raw["gpus"][0], power_w=5000.0))
    message = decoded(raw)
    host.apply_sample(message, now_ts=1001.0)
    assert [g.index for g in message.gpus] == [0, 1]


def test_hostname_and_uuid_claims_are_checked_against_every_host():
    state = two_hosts()
    h1, h2 = state.hosts["h1"], state.hosts["h2"]
    hello = decode_line(hello_line())  # hostname "h", GPU-0 and GPU-1
    h1.apply_hello(hello, now_ts=1000.0)
    assert "'h'" in h1.identity_problem
    spoof = json.loads(hello_line())
    spoof["host"]["hostname"] = "h1"
    h2.apply_hello(decode_line(json.dumps(spoof).encode()), now_ts=1000.0)
    assert h2.identity_problem == "says it is 'h1', which is configured host h1"
    assert h1.uuid_conflicts == {"GPU-0": ["h2"], "GPU-1": ["h2"]}
    assert h2.uuid_conflicts == {"GPU-0": ["h1"], "GPU-1": ["h1"]}
    h2.apply_sample(decoded(sample_dict(1, 5.0)), now_ts=1001.0)
    assert h2.reason == "identity"
    own = json.loads(hello_line())
    own["host"]["hostname"] = "h2.example.net"
    for gpu in own["gpus"]:
        gpu["uuid"] = gpu["uuid"] + "-h2"
    h2.apply_hello(decode_line(json.dumps(own).encode()), now_ts=1002.0)
    h2.apply_sample(decoded(sample_dict(2, 5.0)), now_ts=1003.0)  # sample UUIDs GPU-0/1
    assert h2.identity_problem == ""
    assert h1.uuid_conflicts  # the sample still claims h1's UUIDs
    raw = sample_dict(3, 5.0)
    for gpu in raw["gpus"]:
        gpu["uuid"] = gpu["uuid"] + "-h2"
    h2.apply_sample(decoded(raw), now_ts=1005.0)
    assert h1.uuid_conflicts == {} and h2.reason == ""


def test_down_reason_is_the_latest_protocol_error_not_the_timeout():
    host = two_hosts().hosts["h1"]
    host.apply_sample(decoded(sample_dict(1, 5.0)), now_ts=1001.0)
    host.record_protocol_error("JSON is malformed", now_ts=1002.0)
    host.mark_disconnected("timeout", "no line for 30 s", now_ts=1030.0)
    assert host.reason == "protocol error"
    assert "JSON is malformed" in host.detail and "timeout" in host.detail
    assert host.mark_connect_failed("timeout", "", now_ts=1031.0)
    assert host_snapshot(host)["reason"] == "protocol error"
    host.apply_sample(decoded(sample_dict(2, 5.0)), now_ts=1040.0)
    host.mark_disconnected("timeout", "no line for 30 s", now_ts=1071.0)
    assert host.reason == "timeout"  # a good sample came after the refused line


def test_operator_accepts_extra_gpus_through_the_poller(caplog):
    from opsconsole.collect.poller import Poller
    from opsconsole.config import fleet_from_dict
    from tests.alerts.fleet import HOST, RAW, gpu, healthy

    fleet = fleet_from_dict(RAW, Path("/nonexistent/alerts.toml"))  # never started: no files
    state = FleetState(fleet.hosts, stale_after_s=10, down_after_s=30, now_ts=1000.0)
    poller = Poller(fleet, state)
    host = state.hosts[HOST]
    host.apply_sample(healthy(1000.0, gpus=[gpu(i) for i in range(4)], gpu_count=4), 1000.0)
    assert host.extra_gpus == 2 and len(host.gpus()) == 2
    with caplog.at_level("WARNING", logger="opsconsole.collect"):
        assert "4 GPUs accepted (2 more) by alice" in poller.accept_extra_gpus(HOST, "alice")
    assert "alice accepted 2 extra GPUs" in caplog.text
    host.apply_sample(healthy(1002.0, gpus=[gpu(i) for i in range(4)], gpu_count=4), 1002.0)
    assert len(host.gpus()) == 4
    assert "no GPUs beyond" in poller.accept_extra_gpus(HOST, "alice")
    with pytest.raises(KeyError):
        poller.accept_extra_gpus("nope", "alice")
