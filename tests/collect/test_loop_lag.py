"""Round trips measured honestly: the console's own loop lateness is measured, taken out
of a probe, and a starved console blames no host."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import AlertSettings, evaluate
from opsconsole.collect.loop_lag import LoopLagMonitor, honest_rtt_ms
from tests.alerts.fleet import HOST, T0, feed, fleet_state, healthy

INSTANT = AlertSettings(
    rules={
        n: dataclasses.replace(r, for_s=0.0, keep_firing_for_s=0.0)
        for n, r in AlertSettings().rules.items()
    }
)


async def test_a_blocked_loop_is_measured_and_reported_as_starved():
    monitor = LoopLagMonitor(period_s=0.02)
    task = asyncio.create_task(monitor.run())
    try:
        await monitor.settle()
        start = time.perf_counter()
        time.sleep(0.3)  # the console's own loop blocked (a long callback, no CPU)
        end = time.perf_counter()
        await monitor.settle()
        assert monitor.lag_between_ms(start, end) >= 200
        assert monitor.starved and monitor.recent_max_ms() >= 200
        assert monitor.lag_between_ms(end + 1.0, end + 2.0) == 0.0
    finally:
        task.cancel()


def test_lateness_is_subtracted_and_a_probe_made_of_it_is_dropped():
    assert honest_rtt_ms(12.0, 0.0) == 12.0
    assert honest_rtt_ms(500.0, 100.0) == 400.0
    assert honest_rtt_ms(600.0, 590.0) is None  # the wait was ours, not the network's
    assert honest_rtt_ms(None, 0.0) is None


def test_rtt_rule_compares_with_the_hosts_own_baseline():
    state, tracker = fleet_state(), PendingTracker()
    host = state.hosts[HOST]
    for rtt_ms in (150.0, 152.0, 149.0, 151.0):  # a far site: 150 ms is its normal
        host.record_rtt_probe(rtt_ms)
    for name in state.hosts:
        state.hosts[name].apply_sample(healthy(T0), T0)
    assert evaluate(state, T0, tracker, INSTANT) == []
    host.record_rtt_probe(260.0)
    (cond,) = evaluate(state, T0, tracker, INSTANT)
    assert cond.rule == "net_rtt_high" and "149.0 ms baseline" in cond.summary


def test_skipped_probe_is_neither_rtt_nor_loss():
    host = fleet_state().hosts[HOST]
    host.skip_rtt_probe(450.0)
    assert host.rtt_ms is None and len(host.rtt_probes) == 0
    assert host.rtt_probes_skipped == 1 and host.rtt_console_lag_ms == 450.0


def test_skipped_probe_lowers_a_slower_rtt_but_never_raises_one():
    host = fleet_state().hosts[HOST]
    host.record_rtt_probe(300.0)  # the path was slow
    host.skip_rtt_probe(4.0, raw_ms=6.0)  # healed, timed while the console was late
    assert host.rtt_ms == 6.0 and list(host.rtt_history) == [300.0]
    host.skip_rtt_probe(400.0, raw_ms=450.0)  # the console's own wait: not the host's
    assert host.rtt_ms == 6.0
    assert host.rtt_probes_skipped == 2 and list(host.rtt_probes) == [True]


def test_a_late_console_gives_hosts_its_own_lateness_before_calling_them_stale():
    state = fleet_state()  # stale after 10 s, down after 30 s
    feed(state, T0)
    state.tick(T0 + 12)
    assert state.hosts[HOST].status == "stale"  # no monitor: no grace

    state = fleet_state()
    state.loop_lag = LoopLagMonitor()
    state.loop_lag.record(time.perf_counter(), 4000.0)  # this loop just woke 4 s late
    feed(state, T0)
    state.tick(T0 + 12)
    assert state.hosts[HOST].status == "fresh"  # the 2 s past the delay were ours
    state.tick(T0 + 15)
    assert state.hosts[HOST].status == "stale"  # beyond our lateness: the host's silence
