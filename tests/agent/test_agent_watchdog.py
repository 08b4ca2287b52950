"""A driver call that hangs: heartbeats continue, no new NVML calls, recovery after."""

from __future__ import annotations

from opsconsole.agent.agent import Agent
from tests.agent.wire import roundtrip


def test_hung_call_marks_driver_unresponsive_and_samples_keep_coming(fake_nvml, host_fs):
    agent = Agent(nvml=fake_nvml, fs=host_fs, watchdog_timeout_s=0.2)
    agent.tick()
    release = fake_nvml.hang("nvmlDeviceGetTemperature", gpu=3)

    first = agent.sample()
    assert first["driver"] == "unresponsive"
    assert [gpu["state"] for gpu in first["gpus"]] == ["ok"] * 3 + ["unresponsive"] * 5
    stuck = first["gpus"][5]
    assert stuck["temp_c"] is None and stuck["na"]["temp_c"] == "unresponsive"
    assert first["ib"] and first["load"]["load1"] == 12.52  # the rest of the host still reads
    roundtrip(first)

    calls = fake_nvml.calls
    for _ in range(3):  # heartbeats while the call is still stuck
        heartbeat = agent.sample()
        assert heartbeat["driver"] == "unresponsive" and heartbeat["gpu_count"] is None
        assert {gpu["state"] for gpu in heartbeat["gpus"]} == {"unresponsive"}
        assert "stuck" in heartbeat["driver_detail"]
        roundtrip(heartbeat)
    assert fake_nvml.calls == calls  # no new driver calls pile up behind the hung one

    release.set()
    assert agent.watchdog.wait_idle(10)
    del fake_nvml.hangs[("nvmlDeviceGetTemperature", 3)]
    recovered = agent.sample()
    assert recovered["driver"] == "ok" and recovered["driver_detail"] == ""
    assert {gpu["state"] for gpu in recovered["gpus"]} == {"ok"}
    assert recovered["seq"] == first["seq"] + 4


def test_nvml_init_that_hangs_is_retried_once_the_driver_answers(fake_nvml, host_fs):
    release = fake_nvml.hang("nvmlInit")
    agent = Agent(nvml=fake_nvml, fs=host_fs, watchdog_timeout_s=0.2)
    assert agent.mode == "nvml"
    hello, sample = agent.tick()
    assert hello["mode"] == "nvml" and hello["gpus"] == []
    assert sample["driver"] == "unresponsive" and sample["gpus"] == []
    roundtrip(hello), roundtrip(sample)

    release.set()
    assert agent.watchdog.wait_idle(10)
    fake_nvml.hangs.clear()
    hello, sample = agent.tick()
    assert hello["type"] == "hello" and len(hello["gpus"]) == 8
    assert sample["driver"] == "ok" and len(sample["gpus"]) == 8


def test_inline_watchdog_for_the_simulator(fake_nvml, host_fs):
    agent = Agent(nvml=fake_nvml, fs=host_fs, watchdog_timeout_s=None)
    assert agent.watchdog.timeout_s is None
    assert roundtrip(agent.sample()).driver == "ok"
