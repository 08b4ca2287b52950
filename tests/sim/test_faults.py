"""Every fault as the real agent reports it from the simulated host."""

from __future__ import annotations

import threading

import pytest

from opsconsole.errors import SimError
from opsconsole.sim.world import SimFleet, SimHost
from tests.support.sim import T0, ManualClock, agent_for, step


@pytest.fixture
def fleet() -> SimFleet:
    return SimFleet(8, seed=21, start_ts=T0)


@pytest.fixture
def host(fleet) -> SimHost:
    return next(h for h in fleet.hosts.values() if h.gpus[0].workload == "training")


@pytest.fixture
def watched(host):
    """(host, agent, clock) with the agent's first hello already taken."""
    clock = ManualClock()
    agent = agent_for(host, clock)
    agent.hello()
    step(host, agent, clock)
    return host, agent, clock


def _codes(sample: dict) -> list[tuple[int, str, int | None]]:
    return sorted((e["code"], e["source"], e["gpu"]) for e in sample["events"])


def test_a_calm_host_reads_like_an_h200_box(watched):
    host, agent, clock = watched
    sample = step(host, agent, clock)
    assert sample["driver"] == "ok" and sample["gpu_count"] == 8
    gpu = sample["gpus"][0]
    assert gpu["state"] == "ok" and gpu["mem_total_mib"] == 143_771
    assert gpu["power_limit_w"] == 700 and len(gpu["nvlink"]["up"]) == 18
    assert gpu["processes"][0]["name"] == "python3"
    # An SXM H200 has no fan of its own and no page retirement: never a fake 0.
    assert gpu["fan_pct"] is None and gpu["na"]["fan_pct"] == "not_supported"
    assert gpu["na"]["retired_pages_dbe"] == "not_supported"
    assert [(p["state"], p["rate_gbps"]) for p in sample["ib"]] == [("ACTIVE", 400.0)] * 8
    assert [i["name"] for i in sample["eth"]] == ["eno1", "ens21f0np0"]  # not lo, docker0
    assert sample["events"] == []
    hello = agent.hello()
    assert hello["host"]["hostname"] == host.name and hello["mode"] == "nvml"
    assert {"nvml", "events", "kmsg", "ib", "eth"} <= set(hello["capabilities"])


def test_xid79_loses_one_gpu_and_logs_xid_79(watched):
    host, agent, clock = watched
    host.inject("xid79", gpu=3)
    sample = step(host, agent, clock)
    states = [g["state"] for g in sample["gpus"]]
    assert states == ["ok"] * 3 + ["lost"] + ["ok"] * 4
    assert sample["gpus"][3]["na"]["power_w"] == "lost"
    # One event, though the kernel logs both the Xid line and the plain "fallen off" line.
    assert _codes(sample) == [(79, "kmsg", 3)]
    assert sample["events"][0]["pci_bus_id"] == "0000:5d:00.0"
    # NVML still counts a GPU that fell off until the driver is reloaded.
    assert sample["gpu_count"] == 8
    host.clear("xid79")
    assert step(host, agent, clock)["gpus"][3]["state"] == "ok"


def test_xid48_counts_a_double_bit_error_and_asks_for_a_reset(watched):
    host, agent, clock = watched
    host.inject("xid48", gpu=1)
    gpu = step(host, agent, clock)["gpus"][1]
    assert gpu["ecc_aggregate_uncorrected"] == 1 and gpu["ecc_volatile_uncorrected"] == 1
    assert gpu["recovery_action"] == 1  # NVML_GPU_RECOVERY_ACTION_GPU_RESET


def test_xid48_from_nvml_events_and_the_kernel_log_is_reported_once(watched):
    host, agent, clock = watched
    host.inject("xid48", gpu=1)
    sample = step(host, agent, clock)
    # NVML's copy and the kernel line are one XID: sent as the kernel line (its time
    # survives an agent restart, its text says more).
    assert _codes(sample) == [(48, "kmsg", 1)]
    assert sample["events"][0]["message"].startswith("pid=")
    host.inject("xid48", gpu=1)  # an event, not a condition: it fires again
    sample = step(host, agent, clock)
    assert sample["gpus"][1]["ecc_aggregate_uncorrected"] == 2
    assert _codes(sample) == [(48, "kmsg", 1)]
    assert [step(host, agent, clock)["events"] for _ in range(3)] == [[], [], []]


def test_ecc_dbe_changes_counters_only(watched):
    host, agent, clock = watched
    host.inject("ecc_dbe", gpu=2)
    sample = step(host, agent, clock)
    assert sample["gpus"][2]["ecc_aggregate_uncorrected"] == 1 and sample["events"] == []


@pytest.mark.parametrize(("fault", "code"), [("xid63", [63]), ("row_remap_pending", [])])
def test_row_remap_pending(watched, fault, code):
    host, agent, clock = watched
    host.inject(fault, gpu=5)
    sample = step(host, agent, clock)
    gpu = sample["gpus"][5]
    assert gpu["remap_pending"] is True and gpu["remap_uncorrected"] == 1
    assert [e["code"] for e in sample["events"] if e["source"] == "kmsg"] == code
    host.clear(fault)
    assert step(host, agent, clock)["gpus"][5]["remap_pending"] is False


def test_xid64_marks_remapping_failed(watched):
    host, agent, clock = watched
    host.inject("xid64", gpu=0)
    sample = step(host, agent, clock)
    assert sample["gpus"][0]["remap_failed"] is True and sample["gpus"][0]["recovery_action"] == 4
    assert (64, "kmsg", 0) in _codes(sample)


@pytest.mark.parametrize("link", [11, 17])  # with NVML field ids (0-11), and without
def test_nvlink_down_takes_one_link_down(watched, link):
    host, agent, clock = watched
    host.inject("nvlink_down", gpu=6, link=link)
    nvlink = step(host, agent, clock)["gpus"][6]["nvlink"]
    assert [n for n, up in enumerate(nvlink["up"]) if not up] == [link]  # every sample
    # Error counters are re-read every 30 s (agent.nvml.nvlink_counters_every_s).
    nvlink = step(host, agent, clock, 30)["gpus"][6]["nvlink"]
    assert nvlink["recovery_errors"][link] >= 1 and nvlink["recovery_errors"][10] == 0
    assert [n for n, up in enumerate(nvlink["up"]) if not up] == [link]


def test_ib_port_down(watched):
    host, agent, clock = watched
    host.inject("ib_port_down", port="mlx5_3")
    port = step(host, agent, clock)["ib"][3]
    assert (port["device"], port["state"], port["phys_state"]) == ("mlx5_3", "DOWN", "Polling")
    assert port["counters"]["link_downed"] == 1
    host.clear("ib_port_down")
    assert step(host, agent, clock)["ib"][3]["state"] == "ACTIVE"


def test_ib_degraded_halves_the_rate_and_symbol_errors_keep_rising(watched):
    host, agent, clock = watched
    host.inject("ib_degraded", port="mlx5_5")
    first = step(host, agent, clock)["ib"][5]
    second = step(host, agent, clock, 10)["ib"][5]
    assert first["state"] == "ACTIVE" and first["rate_gbps"] == 200.0
    assert second["counters"]["symbol_error"] > first["counters"]["symbol_error"] > 0


def test_driver_hang_makes_the_agent_report_unresponsive_until_cleared(host):
    clock = ManualClock()
    agent = agent_for(host, clock, watchdog_timeout_s=0.05)
    step(host, agent, clock)
    host.inject("driver_hang")
    try:
        sample = step(host, agent, clock)
        assert sample["driver"] == "unresponsive"
        assert {g["state"] for g in sample["gpus"]} == {"unresponsive"}
        assert sample["ib"] and sample["load"]["load1"] is not None  # the rest still flows
    finally:
        host.clear("driver_hang")
    returned = threading.Event()
    while agent.watchdog.busy:  # the stuck call returns once the driver is released
        returned.wait(0.01)
    assert step(host, agent, clock)["driver"] == "ok"


def test_host_unreachable_is_a_flag_the_server_acts_on(fleet, host):
    seen = []
    fleet.listeners.append(lambda h, fault, active: seen.append((fault, active)))
    host.inject("host_unreachable")
    assert host.reachable is False
    host.clear("host_unreachable")
    assert host.reachable is True
    assert seen == [("host_unreachable", True), ("host_unreachable", False)]


def test_default_targets_are_seeded():
    picks = [SimFleet(2, seed=8, start_ts=T0).host("sg1-r01-n01").inject("xid79") for _ in range(2)]
    assert picks[0] == picks[1] and set(picks[0]) == {"gpu"}


@pytest.mark.parametrize(
    ("fault", "kw", "message"),
    [
        ("meteor", {}, "unknown fault"),
        ("xid79", {"gpu": 8}, "no GPU 8"),
        ("ib_port_down", {"port": "mlx5_9"}, "no InfiniBand device"),
        ("driver_hang", {"gpu": 1}, "takes no gpu argument"),
    ],
)
def test_bad_faults_are_sim_errors(host, fault, kw, message):
    with pytest.raises(SimError, match=message):
        host.inject(fault, **kw)
