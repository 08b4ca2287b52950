"""Console-observed events go to the store once per change, not once per sample."""

from __future__ import annotations

import msgspec

from opsconsole.collect.host_events import HostEventRecorder
from opsconsole.collect.reasons import HOST_KEY_CHANGED
from opsconsole.collect.state import FleetState
from opsconsole.wire import decode_line
from tests.collect.test_state import make_host
from tests.support.collect import sample_dict


class Recording:
    def __init__(self):
        self.events: list[tuple] = []

    def record_host_event(self, host, kind, message, ts, *, gpu_index=None, code=None):
        self.events.append((kind, gpu_index))


def feed(state, host, raw, now):
    changed = host.apply_sample(decode_line(msgspec.json.encode(raw)), now)
    state.changed(host, "status" if changed else "sample")


def test_conditions_are_recorded_when_they_start_and_end():
    state = FleetState([make_host()], now_ts=0.0)
    host = state.hosts["h1"]
    writer = Recording()
    state.add_listener(HostEventRecorder(writer, clock=lambda: 1.0))

    feed(state, host, sample_dict(0, 1.0), 1.0)
    assert writer.events == []

    lost = sample_dict(1, 2.0)
    lost["gpus"][1].update(state="lost", temp_c=None)
    lost["ib"][0].update(state="DOWN", phys_state="Polling")
    lost["driver"] = "unresponsive"
    for i in range(3):  # the same condition on three samples: recorded once
        lost["seq"], lost["ts"] = 1 + i, 2.0 + i
        feed(state, host, lost, 2.0 + i)
    assert sorted(writer.events, key=str) == sorted(
        [("gpu_lost", 1), ("link_down", None), ("driver_unresponsive", None)], key=str
    )

    writer.events.clear()
    feed(state, host, sample_dict(9, 9.0, gpus=1), 9.0)
    assert sorted(writer.events, key=str) == [("gpu_missing", None), ("link_up", None)]

    writer.events.clear()
    state.tick(100.0)  # silent: down
    host.mark_connect_failed(HOST_KEY_CHANGED, "mismatch", 101.0)
    state.changed(host, "connection")
    state.changed(host, "connection")
    feed(state, host, sample_dict(10, 110.0), 110.0)
    assert writer.events == [("host_down", None), ("host_key_changed", None), ("host_up", None)]
