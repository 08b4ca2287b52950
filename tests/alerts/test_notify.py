"""Notifiers hear every transition of a notified alert, whoever wrote it: firing,
acknowledged (by a console or the CLI, another connection), unacknowledged, re-fired after
the acknowledgement timed out, resolved."""

from __future__ import annotations

from opsconsole.alerts.engine import AlertEngine
from opsconsole.alerts.notify import TransitionKind
from opsconsole.alerts.silences import create_silence
from opsconsole.alerts.store import acknowledge, unack
from opsconsole.store import open_store
from tests.alerts.fleet import T0, feed, fleet_state, gpu, healthy
from tests.alerts.test_engine import INSTANT


class Heard(list):
    def alert_transitions(self, transitions):
        self.extend(transitions)


def test_every_transition_of_a_notified_alert_reaches_the_notifier(tmp_path):
    heard = Heard()
    engine = AlertEngine(tmp_path / "a.db", INSTANT, notifiers=[heard])
    engine.resume(T0)
    state = fleet_state()
    feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)]))
    (alert,) = engine.step(state, T0)
    other = open_store(tmp_path / "a.db")  # the operator's console: another connection
    acknowledge(other, alert.id, "alice", "on it", now_ts=T0 + 1)
    engine.step(state, T0 + 2)
    unack(other, alert.id, "alice", "wrong alert", now_ts=T0 + 3)
    engine.step(state, T0 + 4)
    acknowledge(other, alert.id, "bob", "mine", timeout_s=5, now_ts=T0 + 5)
    engine.step(state, T0 + 6)
    engine.step(state, T0 + 11)  # the acknowledgement timed out: fires again
    feed(state, T0 + 12)  # cooled down
    engine.step(state, T0 + 12)
    other.close()
    engine.close()
    assert [(t.kind, t.operator) for t in heard] == [
        (TransitionKind.FIRING, None),
        (TransitionKind.ACKNOWLEDGED, "alice"),
        (TransitionKind.UNACKNOWLEDGED, "alice"),
        (TransitionKind.ACKNOWLEDGED, "bob"),
        (TransitionKind.REFIRED, None),
        (TransitionKind.RESOLVED, None),
    ]
    assert {t.alert.fingerprint for t in heard} == {alert.fingerprint}
    assert heard[-1].alert.state == "resolved"


def test_a_silenced_firing_and_its_resolution_are_not_told(tmp_path):
    heard = Heard()
    path = tmp_path / "a.db"
    db = open_store(path)
    create_silence(db, {"rule": "gpu_temp_high"}, start_ts=T0 - 1, end_ts=T0 + 3600,
                   created_by="t", comment="maintenance", now_ts=T0 - 1)  # fmt: skip
    db.close()
    engine = AlertEngine(path, INSTANT, notifiers=[heard])
    engine.resume(T0)
    state = fleet_state()
    feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)]))
    engine.step(state, T0)
    feed(state, T0 + 2)
    engine.step(state, T0 + 2)
    engine.close()
    assert heard == []
