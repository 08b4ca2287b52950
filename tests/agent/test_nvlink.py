"""NVLink readings: link state every sample, error counters every 30 s from one
nvmlDeviceGetFieldValues call per GPU where NVML has field ids, cached in between."""

from __future__ import annotations

import pytest

from opsconsole.agent.agent import Agent, encode
from opsconsole.wire import NvLinks
from tests.agent.wire import roundtrip
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml, GpuIsLost, NotSupported

T0 = 1_800_000_000.0
COUNTERS = ("replay_errors", "recovery_errors", "crc_flit_errors", "crc_data_errors")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_agent(fake, fs, clock, **kwargs) -> Agent:
    return Agent(nvml=fake, fs=fs, clock=clock, watchdog_timeout_s=5.0, **kwargs)


def link_counters(sample, gpu=0):
    """(replay, recovery, crc_flit, crc_data) by link number, from the per-GPU columns."""
    nvlink = sample["gpus"][gpu]["nvlink"]
    return list(zip(*(nvlink[key] for key in COUNTERS), strict=True))


def links_down(sample, gpu=0):
    return [link for link, up in enumerate(sample["gpus"][gpu]["nvlink"]["up"]) if not up]


def test_counters_are_read_every_30_s_and_link_state_every_sample(host_fs):
    fake, clock = FakeNvml(), Clock()
    agent = make_agent(fake, host_fs, clock)
    first = agent.sample()
    assert link_counters(first)[3] == (0, 0, 7, 0)

    fake.gpus[0].nvlink_errors = {(3, 2): 9, (16, 1): 4}  # link 16: no NVML field id
    fake.gpus[0].nvlink_down = {16}
    fake.counts.clear()
    clock.now += 2
    cached = agent.sample()
    assert links_down(cached) == [16]  # state: at once
    assert link_counters(cached) == link_counters(first)  # counters: from the cache
    assert fake.counts["nvmlDeviceGetNvLinkErrorCounter"] == 0
    assert fake.counts["nvmlDeviceGetNvLinkState"] == 0  # every link's state: one field call
    assert fake.counts["nvmlDeviceGetFieldValues"] == 8 * 2  # link states; recovery action
    roundtrip(cached)

    clock.now += 27.9
    assert link_counters(agent.sample()) == link_counters(first)
    clock.now += 0.1  # 30 s after the first read
    fresh = agent.sample()
    assert link_counters(fresh)[3] == (0, 0, 9, 0) and link_counters(fresh)[16] == (0, 4, 0, 0)
    clock.now += 2
    assert link_counters(agent.sample()) == link_counters(fresh)


def test_link_state_falls_back_to_one_call_per_link_without_the_state_field(host_fs):
    fake, clock = FakeNvml(), Clock()
    del fake.NVML_FI_DEV_NVLINK_GET_STATE  # a binding older than the field
    fake.gpus[0].nvlink_down = {5}
    sample = make_agent(fake, host_fs, clock).sample()
    assert links_down(sample) == [5]
    assert fake.counts["nvmlDeviceGetNvLinkState"] >= 8 * 18


def test_the_cadence_is_configurable(host_fs):
    fake, clock = FakeNvml(count=1), Clock()
    agent = make_agent(fake, host_fs, clock, nvlink_counters_every_s=0)
    agent.sample()
    fake.gpus[0].nvlink_errors = {(5, 0): 3}
    clock.now += 2
    assert link_counters(agent.sample())[5] == (3, 0, 0, 0)
    agent.nvml.nvlink_counters_every_s = 600.0
    fake.gpus[0].nvlink_errors = {}
    clock.now += 2
    assert link_counters(agent.sample())[5] == (3, 0, 0, 0)


def test_a_clock_that_goes_back_reads_the_counters_again(host_fs):
    fake, clock = FakeNvml(count=1), Clock()
    agent = make_agent(fake, host_fs, clock)
    agent.sample()
    fake.gpus[0].nvlink_errors = {(1, 3): 2}
    clock.now -= 3600
    assert link_counters(agent.sample())[1] == (0, 0, 0, 2)


def test_one_field_values_call_per_gpu_reads_every_link_with_a_field_id(host_fs):
    fake = FakeNvml([FakeGpu(i, nvlinks=12) for i in range(8)])
    fake.gpus[2].nvlink_errors = {(11, 0): 5, (0, 3): 1}
    agent = make_agent(fake, host_fs, Clock())
    fake.counts.clear()  # after the inventory
    sample = agent.sample()
    assert fake.counts["nvmlDeviceGetNvLinkErrorCounter"] == 0
    # per GPU: one for the recovery action, one for all NVLink counters, one for link states
    assert fake.counts["nvmlDeviceGetFieldValues"] == 8 * 3
    assert link_counters(sample, 2)[11] == (5, 0, 0, 0)
    assert link_counters(sample, 2)[0] == (0, 0, 0, 1)
    assert link_counters(sample, 0)[3] == (0, 0, 7, 0)
    roundtrip(sample)


def test_links_beyond_nvml_field_ids_are_read_one_counter_at_a_time(host_fs):
    fake = FakeNvml(count=1)  # 18 links: field ids for 0-11, calls for 12-17
    fake.gpus[0].nvlink_errors = {(17, 2): 8, (11, 2): 6}
    sample = make_agent(fake, host_fs, Clock()).sample()
    assert fake.counts["nvmlDeviceGetNvLinkErrorCounter"] == 6 * 4
    assert link_counters(sample)[17] == (0, 0, 8, 0) and link_counters(sample)[11] == (0, 0, 6, 0)


@pytest.mark.parametrize("how", ["field_errors", "call_fails", "no_function"])
def test_field_values_that_fail_fall_back_to_per_link_calls(host_fs, how):
    fake = FakeNvml(count=1)
    if how == "field_errors":
        fake.gpus[0].nvlink_fields = False
    elif how == "call_fails":
        fake.fail("nvmlDeviceGetFieldValues", NotSupported)
    else:
        fake.missing = {"nvmlDeviceGetFieldValues"}
    sample = make_agent(fake, host_fs, Clock()).sample()
    assert fake.counts["nvmlDeviceGetNvLinkErrorCounter"] == 18 * 4
    assert link_counters(sample)[3] == (0, 0, 7, 0)
    assert link_counters(sample)[4] == (0, 0, 0, 0)
    assert sample["gpus"][0]["state"] == "ok"


def test_unread_counters_are_null_never_zero(host_fs):
    fake = FakeNvml(count=1)
    fake.gpus[0].nvlink_fields = False
    fake.fail("nvmlDeviceGetNvLinkErrorCounter", NotSupported)
    sample = make_agent(fake, host_fs, Clock()).sample()
    assert sample["gpus"][0]["nvlink"]["up"] == [True] * 18
    assert set(link_counters(sample)) == {(None, None, None, None)}
    decoded = roundtrip(sample).gpus[0].nvlink
    unread = [None] * 18  # nulls: "not read", not a healthy 0
    assert decoded == NvLinks([True] * 18, unread, unread, unread, unread)


def test_a_gpu_lost_while_reading_counters_is_lost_and_read_afresh_later(host_fs):
    fake, clock = FakeNvml(count=2), Clock()
    del fake.NVML_FI_DEV_NVLINK_GET_STATE  # link state one call per link, as before 535
    agent = make_agent(fake, host_fs, clock)
    agent.sample()
    fake.fail("nvmlDeviceGetNvLinkState", GpuIsLost, gpu=1)
    clock.now += 2
    assert [g["state"] for g in agent.sample()["gpus"]] == ["ok", "lost"]
    del fake.failures[("nvmlDeviceGetNvLinkState", 1)]
    fake.gpus[1].nvlink_errors = {(2, 1): 1}
    clock.now += 2
    sample = agent.sample()
    assert link_counters(sample, 1)[2] == (0, 1, 0, 0)  # not the counters cached before
    assert link_counters(sample, 0)[3] == (0, 0, 7, 0)


def test_links_go_out_column_wise_as_compact_json(host_fs):
    sample = make_agent(FakeNvml(count=1), host_fs, Clock()).sample()
    line = encode(sample)
    assert ", " not in line and ": " not in line
    assert '"nvlink":{"up":[true,true,' in line and '"replay_errors":[0,0,' in line
    assert '"crc_flit_errors":[0,0,0,7,0,' in line  # position = link number
    nvlink = sample["gpus"][0]["nvlink"]
    assert list(nvlink) == ["up", *COUNTERS] and {len(v) for v in nvlink.values()} == {18}
    assert roundtrip(sample).gpus[0].nvlink.crc_flit_errors[3] == 7


def test_a_link_count_past_the_protocol_bound_is_capped_so_the_line_stays_valid(host_fs):
    fake = FakeNvml([FakeGpu(0, nvlinks=100)])  # a confused driver
    sample = make_agent(fake, host_fs, Clock()).sample()
    assert {len(values) for values in sample["gpus"][0]["nvlink"].values()} == {64}
    assert roundtrip(sample).gpus[0].nvlink.up == [True] * 64
