"""Live state without the network: statuses by the console's clock, readings that never
pass old numbers off as live, history rings, event de-duplication."""

from __future__ import annotations

import json

import msgspec

from opsconsole.collect.snapshot import fleet_snapshot
from opsconsole.collect.state import FleetState
from opsconsole.config import Host
from opsconsole.wire import Sample, decode_line
from tests.support.collect import sample_dict


def make_host(name: str = "h1", gpus: int = 2) -> Host:
    return Host(
        name=name,
        address=name,
        port=22,
        user=None,
        site="T1",
        rack="r1",
        leaf=None,
        host_class="g",
        expected_gpus=gpus,
        gpu_model=None,
        expected_ib_ports=1,
        expected_ib_rate_gbps=400.0,
        mode="agent",
        python="python3",
    )


def sample(seq: int, ts: float, **kwargs) -> Sample:
    message = decode_line(json.dumps(sample_dict(seq, ts, **kwargs)).encode())
    assert isinstance(message, Sample)
    return message


def fleet_state(**kwargs) -> FleetState:
    return FleetState(
        [make_host()], stale_after_s=10, down_after_s=30, history_points=4, now_ts=1000.0, **kwargs
    )


def test_status_ages_by_console_clock_and_readings_follow():
    state = fleet_state()
    host = state.hosts["h1"]
    changes = []
    state.add_listener(lambda h, change: changes.append((h.status, change)))
    assert host.status == "pending"
    assert host.apply_sample(sample(1, 5.0), now_ts=1001.0)  # host clock far off: irrelevant
    temp = host.gpus()[0].readings["temp_c"]
    assert (temp.state, temp.value) == ("value", 60.0)
    assert host.gpus()[0].readings["fan_pct"].state == "not_supported"

    state.tick(1011.5)
    assert host.status == "stale"
    temp = host.gpus()[0].readings["temp_c"]
    assert temp.state == "stale" and temp.value is None and temp.last_value == 60.0
    assert host.gpus()[0].state == "stale"

    state.tick(1031.5)
    assert host.status == "down" and host.reason == "no sample"
    temp = host.gpus()[0].readings["temp_c"]
    assert temp.state == "unreachable" and temp.value is None and temp.last_value == 60.0
    assert changes == [("stale", "status"), ("down", "status")]
    gen = state.generation
    state.tick(1040.0)
    assert state.generation == gen  # nothing changed: readers can skip work

    snap = fleet_snapshot(state, 1040.0)
    json.dumps(snap)
    reading = snap["hosts"]["h1"]["gpus"][0]["readings"]["temp_c"]
    assert reading == {"state": "unreachable", "last_value": 60.0, "detail": "host is down"}
    assert snap["hosts"]["h1"]["ib"][0]["live"] is False
    assert snap["hosts"]["h1"]["ib"][0]["rates_per_s"] is None


def test_never_heard_host_goes_down_after_down_after_s():
    state = fleet_state()
    state.tick(1029.0)
    assert state.hosts["h1"].status == "pending"
    state.tick(1030.0)
    assert state.hosts["h1"].status == "down"


def test_connect_failure_is_down_at_once_and_a_sample_clears_it():
    state = fleet_state()
    host = state.hosts["h1"]
    host.apply_sample(sample(1, 1.0), now_ts=1001.0)
    host.mark_connect_failed("refused", "Connection refused", 1002.0)
    state.tick(1002.5)
    assert (host.status, host.reason) == ("down", "refused")
    assert host.gpus()[0].readings["util_gpu_pct"].state == "unreachable"
    host.apply_sample(sample(2, 2.0), now_ts=1003.0)
    state.tick(1003.5)
    assert (host.status, host.reason) == ("fresh", "")


def test_a_lost_gpu_counts_against_the_expected_gpus_and_is_named():
    state = fleet_state()
    host = state.hosts["h1"]
    lost = sample_dict(1, 1.0)
    lost["gpus"][1].update(state="lost", util_gpu_pct=None, temp_c=None, power_w=None)
    host.apply_sample(decode_line(json.dumps(lost).encode()), now_ts=1001.0)
    assert host.gpu_count == 2 and host.answering_gpus == 1
    assert (host.reason, host.detail) == ("gpu count", "1 of 2 GPUs (lost: 1)")
    host.apply_sample(sample(2, 2.0), now_ts=1003.0)
    assert (host.reason, host.detail) == ("", "")


def test_reasons_for_driver_gpu_count_and_protocol_errors():
    state = fleet_state()
    host = state.hosts["h1"]
    host.apply_sample(sample(1, 1.0, gpus=1), now_ts=1001.0)
    assert (host.reason, host.detail) == ("gpu count", "1 of 2 GPUs (missing: 1)")
    host.record_protocol_error("JSON is malformed", 1002.0)
    assert host.reason == "protocol error" and host.protocol_errors == 1
    host.apply_sample(sample(2, 2.0, driver="unresponsive", driver_detail="nvmlInit hung"), 1003.0)
    assert (host.reason, host.detail) == ("driver unresponsive", "nvmlInit hung")
    assert host.consecutive_bad_lines == 0 and host.protocol_errors == 1


def test_gpu_reading_states_from_the_agent():
    state = fleet_state()
    host = state.hosts["h1"]
    raw = sample_dict(1, 1.0)
    raw["gpus"][1].update(state="lost", temp_c=None, power_w=None, na={"temp_c": "lost"})
    host.apply_sample(decode_line(msgspec.json.encode(raw)), now_ts=1001.0)
    gpu = host.gpus()[1]
    assert gpu.state == "lost"
    assert (gpu.readings["temp_c"].state, gpu.readings["temp_c"].detail) == ("error", "lost")
    assert gpu.readings["power_w"].detail == "lost"  # no na entry: the GPU's state says why


def test_history_ring_keeps_last_points_aligned():
    state = fleet_state()
    host = state.hosts["h1"]
    for i in range(6):
        raw = sample_dict(i, float(i))
        raw["gpus"][0]["util_gpu_pct"] = float(i)
        if i == 4:
            raw["gpus"][0]["util_gpu_pct"] = None
            raw["gpus"][0]["na"] = {"util_gpu_pct": "unresponsive"}
        host.apply_sample(decode_line(msgspec.json.encode(raw)), now_ts=1000.0 + i)
    assert host.history.series(0, "util_gpu_pct") == [2.0, 3.0, None, 5.0]
    assert host.history.timestamps() == [1002.0, 1003.0, 1004.0, 1005.0]  # receive times
    assert host.history.series(1, "temp_c") == [60.0] * 4
    assert host.history.series(7, "temp_c") == []


def test_replayed_events_are_kept_once():
    state = fleet_state()
    host = state.hosts["h1"]
    event = {
        "kind": "xid",
        "code": 79,
        "ts": 500.2,
        "source": "kmsg",
        "pci_bus_id": "0000:17:00.0",
        "message": "GPU has fallen off the bus",
    }
    host.apply_sample(sample(1, 1.0, events=[event]), now_ts=1001.0)
    host.apply_sample(sample(0, 2.0, events=[event]), now_ts=1002.0)  # agent restarted
    assert [(e.kind, e.code) for e in host.events] == [("xid", 79)]


def test_listener_failure_does_not_stop_others():
    state = fleet_state()
    seen = []

    def broken(host, change):
        raise RuntimeError("boom")

    state.add_listener(broken)
    state.add_listener(lambda host, change: seen.append(change))
    state.changed(state.hosts["h1"], "sample")
    assert seen == ["sample"] and state.generation == 1
