"""A site relay that goes down alerts once, on its own row: the hosts behind it are
"relay down" (health unknown), not 500 host_down alerts."""

from __future__ import annotations

import dataclasses

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import AlertSettings, evaluate
from opsconsole.collect.reasons import RELAY_DOWN
from tests.alerts.fleet import HOST, T0, feed, fleet_state

INSTANT = AlertSettings(
    rules={
        n: dataclasses.replace(r, for_s=0.0, keep_firing_for_s=0.0)
        for n, r in AlertSettings().rules.items()
    }
)


def test_hosts_behind_a_down_relay_raise_no_host_down_of_their_own():
    state, tracker = fleet_state(), PendingTracker()
    feed(state, T0)
    state.hosts[HOST].mark_connect_failed(RELAY_DOWN, "sg1-collector: refused", T0 + 1)
    assert state.hosts[HOST].status == "down"
    assert "host_down" not in {c.rule for c in evaluate(state, T0 + 1, tracker, INSTANT)}
    # The same host down for its own reason does alert.
    state.hosts[HOST].mark_connect_failed("refused", "via relay sg1-collector", T0 + 2)
    assert "host_down" in {c.rule for c in evaluate(state, T0 + 2, tracker, INSTANT)}
