"""The alert engine's own duties, apart from the rules: notify once through the callback
and the log, survive a broken notifier and an unusable store, pick up new leases, and
run beside a poller on its loop (`AlertingPoller`)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing

import pytest

from opsconsole.alerts import engine as engine_module
from opsconsole.alerts.engine import CONTEXT_EVERY_S, AlertEngine
from opsconsole.alerts.rules import AlertSettings
from opsconsole.alerts.runner import AlertingPoller
from opsconsole.alerts.store import list_alerts
from opsconsole.config import fleet_from_dict
from opsconsole.leases.allocate import LeaseRequest, allocate_lease
from opsconsole.leases.model import GpuSlot
from opsconsole.leases.tenants import create_tenant
from opsconsole.store import open_store
from tests.alerts.fleet import HOST, RAW, T0, feed, fleet_state, gpu, healthy
from tests.alerts.workers import lead_worker


class Told(list):
    """A notifier that keeps each batch's notified firings."""

    def alert_transitions(self, transitions):
        self.append([t.alert for t in transitions])


INSTANT = AlertSettings().with_rule("gpu_temp_high", for_s=0.0, keep_firing_for_s=0.0)


def hot_state():
    state = fleet_state()
    feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)]))
    return state


def test_notifies_once_through_callback_and_log(tmp_path, caplog):
    told = Told()
    engine = AlertEngine(tmp_path / "a.db", INSTANT, notifiers=[told])
    engine.resume(T0)
    state = hot_state()
    with caplog.at_level(logging.WARNING, logger="opsconsole.alerts"):
        engine.step(state, T0)
        engine.step(state, T0 + 2)
    assert [[a.rule for a in batch] for batch in told] == [["gpu_temp_high"]]
    lines = [r.getMessage() for r in caplog.records if "ALERT" in r.getMessage()]
    assert len(lines) == 1 and "WARNING gpu_temp_high" in lines[0] and HOST in lines[0]
    assert engine.notified_total == 1
    engine.close()


def test_a_broken_notifier_does_not_stop_recording(tmp_path):
    class Broken:
        def alert_transitions(self, transitions):
            raise RuntimeError("pager down")

    engine = AlertEngine(tmp_path / "a.db", INSTANT, notifiers=[Broken()])
    engine.resume(T0)
    assert [a.rule for a in engine.step(hot_state(), T0)] == ["gpu_temp_high"]
    assert engine.last_error == ""
    engine.close()


def test_an_unusable_store_is_reported_not_raised(tmp_path):
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    engine = AlertEngine(not_a_db, INSTANT)
    assert engine.step(hot_state(), T0) == []
    assert "garbage.db" in engine.last_error
    engine.close()


def test_a_lease_made_after_start_labels_the_next_alert_recording(tmp_path, monkeypatch):
    path = tmp_path / "a.db"
    engine = AlertEngine(path, INSTANT)
    engine.resume(T0)
    state = hot_state()
    (first,) = engine.step(state, T0)
    assert "tenant" not in first.labels
    fleet = fleet_from_dict(RAW, tmp_path / "x.toml")
    db = open_store(path)
    create_tenant(db, "acme", gpu_quota=8, operator="t", now_ts=T0)
    request = LeaseRequest("acme", T0 + 1, T0 + 86400 * 7, slots=(GpuSlot(HOST, 0),))
    allocate_lease(db, fleet, request, operator="t", now_ts=T0 + 1)

    engine.step(state, T0 + 2)  # the lease changed: re-read at once, not in 30 s
    assert list_alerts(db)[0].labels["tenant"] == "acme"
    reads = []
    real = engine_module.build_context
    monkeypatch.setattr(
        engine_module, "build_context", lambda *a, **k: reads.append(1) or real(*a, **k)
    )
    engine.step(state, T0 + 4)  # nothing changed since: no re-read this poll
    assert reads == []
    engine.step(state, T0 + 4 + CONTEXT_EVERY_S)  # but still every 30 s (the clock)
    assert reads == [1]
    engine.close()
    db.close()


class IdlePoller:
    """The shape of a Poller that AlertingPoller relies on, collecting nothing."""

    def __init__(self, state):
        self.state = state
        self.writer = None
        self.running = False
        self._stopped = asyncio.Event()

    async def start(self):
        self.running = True

    async def run(self):
        await self.start()
        await self._stopped.wait()

    async def stop(self):
        self.running = False
        self._stopped.set()

    def reconnect(self, name):
        return f"reconnecting {name}"


async def test_alerting_poller_runs_the_engine_beside_the_poller_and_stops_with_it(tmp_path):
    state = hot_state()
    engine = AlertEngine(tmp_path / "a.db", INSTANT, clock=lambda: T0, interval_s=0.05)
    poller = AlertingPoller(IdlePoller(state), engine)
    task = asyncio.create_task(poller.run())
    for _ in range(200):
        if engine.notified_total:
            break
        await asyncio.sleep(0.05)
    assert engine.notified_total == 1
    assert poller.reconnect(HOST) == f"reconnecting {HOST}"
    await poller.stop()
    await asyncio.wait_for(task, 10)
    db = open_store(tmp_path / "a.db")
    assert [a.rule for a in list_alerts(db)] == ["gpu_temp_high"]
    db.close()


def test_one_engine_records_per_store_the_other_stands_by_and_takes_over(tmp_path):
    path = tmp_path / "a.db"
    told_first = Told()
    told_second = Told()
    first = AlertEngine(path, INSTANT, notifiers=[told_first], role="opsconsole poll")
    second = AlertEngine(path, INSTANT, notifiers=[told_second], role="console")
    state = hot_state()
    first.step(state, T0)
    assert second.step(state, T0 + 1) == []  # evaluated, not recorded
    assert second.standby_for == first.identity and "opsconsole poll" in first.identity
    assert len(told_first) == 1 and told_second == []

    # the leader crashes (no clean release): its heartbeat goes stale, the other takes over
    assert second.step(state, T0 + first.stale_s - 1) == []
    assert second.step(state, T0 + 1 + first.stale_s) == []  # took over; nothing new to tell
    assert second.standby_for is None
    db = open_store(path)
    (alert,) = list_alerts(db)
    assert alert.fire_count == 1 and alert.state == "firing"  # not resolved and re-opened
    assert first.step(state, T0 + 2 + first.stale_s) == []  # the old leader now stands by
    assert first.standby_for == second.identity

    second.close()  # a clean stop hands the lead over at once
    cool = fleet_state()
    feed(cool, T0, healthy(T0))
    assert first.step(cool, T0 + 3 + first.stale_s) == []
    assert first.standby_for is None
    assert list_alerts(db) == []  # the new leader recorded the cooled GPU: resolved
    first.close()
    db.close()


@pytest.mark.slow
def test_two_processes_racing_for_the_lead_one_gets_it_the_other_is_told_who(tmp_path):
    path = tmp_path / "a.db"
    open_store(path).close()
    spawn = multiprocessing.get_context("spawn")
    barrier, out = spawn.Barrier(2), spawn.Queue()
    procs = [
        spawn.Process(target=lead_worker, args=(str(path), who, barrier, out))
        for who in ("poll", "console")
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    leaders = [who for who, holder in results.items() if holder is None]
    assert len(leaders) == 1
    (other,) = set(results) - set(leaders)
    assert results[other] == leaders[0]
