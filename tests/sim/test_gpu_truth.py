"""The incident scenario's XID 79, end to end through the real agent and the console's
live state and alert rules (issue 12): the GPU is lost within one interval of falling off
and ok within one interval of its return, every XID names its GPU, none is sent twice,
and the per-GPU count goes on across cycles."""

from __future__ import annotations

import pytest

from opsconsole.agent.agent import encode
from opsconsole.alerts.rules import _xid_conditions
from opsconsole.alerts.settings import AlertSettings
from opsconsole.collect.state import FleetState
from opsconsole.sim.scenarios import INCIDENT_FAULTS, INCIDENT_PERIOD_S, ONSET_S
from opsconsole.sim.world import SimFleet
from opsconsole.wire import Hello, Sample, decode_line
from tests.collect.test_state import make_host
from tests.support.sim import T0, ManualClock, agent_for

INTERVAL_S = 2.0
HOST = "sg1-r01-n01"
GPU = 3
_, _, _, ON_S, OFF_S = next(f for f in INCIDENT_FAULTS if f[0] == HOST and f[1] == "xid79")


def run_incident(start_after_s: float = 0.0, cycles: int = 2):
    """(elapsed_s, sample) for every tick of `cycles` incident cycles, read by a console."""
    fleet = SimFleet(4, seed=0, scenario="incident", start_ts=T0)
    host = fleet.host(HOST)
    clock = ManualClock(T0 + start_after_s)
    host.advance(clock.now)
    agent = agent_for(host, clock)
    state = FleetState([make_host(HOST, gpus=8)], stale_after_s=10, down_after_s=30,
                       history_points=4, now_ts=clock.now)  # fmt: skip
    console = state.hosts[HOST]
    samples = []
    end = ONSET_S + cycles * INCIDENT_PERIOD_S
    while clock.now + INTERVAL_S - T0 < end:
        clock.now += INTERVAL_S
        host.advance(clock.now)
        for message in agent.tick():
            decoded = decode_line(encode(message).encode())
            if isinstance(decoded, Hello):
                console.apply_hello(decoded, clock.now)
            else:
                assert isinstance(decoded, Sample)
                console.apply_sample(decoded, clock.now)
                samples.append((clock.now - T0, decoded))
    return samples, console, clock.now


def lost_spans(samples):
    """[(first tick lost, first tick ok again)] of GPU 3, in elapsed seconds."""
    spans, since = [], None
    for elapsed, sample in samples:
        lost = sample.gpus[GPU].state == "lost"
        if lost and since is None:
            since = elapsed
        elif not lost and since is not None:
            spans.append((since, elapsed))
            since = None
    return spans


@pytest.mark.slow
def test_lost_within_one_interval_ok_within_one_interval_of_return():
    samples, console, _ = run_incident()
    onsets = [ONSET_S + k * INCIDENT_PERIOD_S + ON_S for k in range(2)]
    spans = lost_spans(samples)
    assert len(spans) == 2
    for (lost_at, ok_at), onset in zip(spans, onsets, strict=True):
        assert onset <= lost_at <= onset + INTERVAL_S
        assert onset + (OFF_S - ON_S) <= ok_at <= onset + (OFF_S - ON_S) + INTERVAL_S
    assert len({sample.gpus[GPU].pci_bus_id for _, sample in samples} - {None}) == 1
    assert console.hello is not None and console.hello.gpus[GPU].uuid is not None


@pytest.mark.slow
def test_every_xid_names_its_gpu_once_and_the_count_goes_on():
    samples, console, now = run_incident()
    xids = [event for _, sample in samples for event in sample.events if event.kind == "xid"]
    assert [x.code for x in xids] == [79, 79]  # one per cycle: the plain line is no second
    assert {(x.gpu, x.pci_bus_id) for x in xids} == {(GPU, samples[-1][1].gpus[GPU].pci_bus_id)}
    identities = [(x.code, round(x.ts), x.pci_bus_id) for x in xids]
    assert len(set(identities)) == len(identities)
    conditions = list(_xid_conditions(console, now, AlertSettings()))
    assert [(c.labels["gpu"], c.labels["count"]) for c in conditions] == [("3", "1"), ("3", "2")]


@pytest.mark.slow
def test_an_agent_started_while_the_gpu_is_lost_shows_it_ok_within_one_interval():
    lost_from = ONSET_S + ON_S + 10.0  # the console connects while GPU 3 is off the bus
    samples, _, _ = run_incident(start_after_s=lost_from, cycles=1)
    assert samples[0][1].gpus[GPU].state == "lost"
    back_at = ONSET_S + OFF_S
    (_, ok_at), *_ = lost_spans(samples)
    assert back_at <= ok_at <= back_at + INTERVAL_S
    xids = [e for _, s in samples for e in s.events if e.kind == "xid"]
    bus = samples[-1][1].gpus[GPU].pci_bus_id
    assert xids and {(x.gpu, x.pci_bus_id) for x in xids} == {(GPU, bus)}  # sysfs named it
    assert samples[0][1].gpus[GPU].pci_bus_id == bus
