"""The alert lifecycle in a real SQLite file: firing → acknowledged → resolved, re-open,
ack timeouts, withdrawn acknowledgements, silences, concurrent acknowledgement and
restart."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import sqlite_utils

from opsconsole.alerts import (
    Condition,
    PendingTracker,
    acknowledge,
    active_conditions,
    alert_history,
    apply_conditions,
    create_silence,
    evaluate,
    expire_silence,
    get_alert,
    list_alerts,
    resolve,
)
from opsconsole.alerts.store import unack
from opsconsole.errors import AlertError
from opsconsole.store import open_store
from tests.alerts.fleet import HOST, T0, feed, fleet_state, gpu, healthy, xid
from tests.alerts.workers import ack_worker

spawn = multiprocessing.get_context("spawn")
LABELS = {"site": "SG1", "rack": "sg1-r01", "host": HOST, "gpu": "0"}
HOT = Condition(
    rule="gpu_temp_high",
    severity="warning",
    kind="condition",
    labels=LABELS,
    summary=f"{HOST} GPU 0: hot",
)
XID79 = Condition(
    rule="xid_hardware",
    severity="critical",
    kind="event",
    labels=LABELS | {"event": "79@1"},
    summary="XID 79",
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "opsconsole.db"


@pytest.fixture
def db(path: Path) -> Iterator[sqlite_utils.Database]:
    db = open_store(path)
    yield db
    db.close()


def states(db, alert_id: int) -> list[str]:
    return [row[2] for row in alert_history(db, alert_id)]


def test_new_firing_is_notified_once(db):
    (alert,) = apply_conditions(db, [HOT], T0)
    assert (alert.state, alert.rule, alert.labels, alert.fire_count) == (
        "firing",
        "gpu_temp_high",
        LABELS,
        1,
    )
    assert alert.notified_ts == T0
    assert apply_conditions(db, [HOT], T0 + 2) == []
    assert get_alert(db, alert.id).last_seen_ts == T0 + 2
    assert len(apply_conditions(db, [XID79, XID79], T0 + 3)) == 1
    assert len({HOT, XID79, HOT}) == 2  # conditions are hashable by fingerprint


def test_ack_then_resolve_when_cleared_then_reopen(db):
    (alert,) = apply_conditions(db, [HOT], T0)
    acked = acknowledge(db, alert.id, "ana", "cooling ticket 42", now_ts=T0 + 5)
    assert (acked.state, acked.acked_by, acked.ack_comment) == (
        "acknowledged",
        "ana",
        "cooling ticket 42",
    )
    assert apply_conditions(db, [HOT], T0 + 6) == []
    assert apply_conditions(db, [], T0 + 8) == []
    resolved = get_alert(db, alert.id)
    assert (resolved.state, resolved.resolved_ts, resolved.resolved_by) == (
        "resolved",
        T0 + 8,
        None,
    )
    (again,) = apply_conditions(db, [HOT], T0 + 20)
    assert (again.id, again.state, again.fire_count, again.acked_by) == (
        alert.id,
        "firing",
        2,
        None,
    )
    assert states(db, alert.id) == ["firing", "acknowledged", "resolved", "firing"]
    resolve(db, alert.id, "ana", "fan replaced", now_ts=T0 + 21)
    with pytest.raises(AlertError, match="already resolved"):
        resolve(db, alert.id, "bo", "done", now_ts=T0 + 22)
    with pytest.raises(AlertError, match="already resolved"):
        acknowledge(db, alert.id, "bo", "late", now_ts=T0 + 22)


def test_event_alerts_resolve_only_by_hand_with_a_comment(db):
    (alert,) = apply_conditions(db, [XID79], T0)
    assert apply_conditions(db, [], T0 + 2) == []
    assert get_alert(db, alert.id).state == "firing"
    with pytest.raises(AlertError, match="comment"):
        resolve(db, alert.id, "ana", "  ", now_ts=T0 + 3)
    done = resolve(db, alert.id, "ana", "node rebooted, GPU back", now_ts=T0 + 3)
    assert (done.state, done.resolved_by, done.resolve_comment) == (
        "resolved",
        "ana",
        "node rebooted, GPU back",
    )
    assert apply_conditions(db, [XID79], T0 + 4) == []  # the replayed XID does not re-open
    assert get_alert(db, alert.id).state == "resolved"


def test_ack_timeout_fires_again_and_notifies(db):
    (alert,) = apply_conditions(db, [HOT], T0)
    acknowledge(db, alert.id, "ana", "looking", timeout_s=600, now_ts=T0 + 10)
    assert apply_conditions(db, [HOT], T0 + 300) == []
    (again,) = apply_conditions(db, [HOT], T0 + 610)
    assert (again.id, again.state, again.acked_by, again.fire_count) == (
        alert.id,
        "firing",
        None,
        1,
    )
    assert "timed out" in alert_history(db, alert.id)[-1][4]
    assert apply_conditions(db, [HOT], T0 + 612) == []
    with pytest.raises(AlertError, match="positive"):
        acknowledge(db, alert.id, "ana", "x", timeout_s=0, now_ts=T0 + 613)


def test_second_ack_names_the_first(db):
    (alert,) = apply_conditions(db, [HOT], T0)
    acknowledge(db, alert.id, "ana", "mine", now_ts=T0 + 1)
    with pytest.raises(AlertError, match="already acknowledged by ana"):
        acknowledge(db, alert.id, "bo", "mine too", now_ts=T0 + 2)
    with pytest.raises(AlertError, match="no alert 999"):
        acknowledge(db, 999, "bo", "?", now_ts=T0 + 2)


def test_unack_makes_it_firing_again_without_renotifying(db):
    (alert,) = apply_conditions(db, [HOT], T0)
    acknowledge(db, alert.id, "ana", "mine", timeout_s=600, now_ts=T0 + 5)
    back = unack(db, alert.id, "bo", "ana went home", now_ts=T0 + 10)
    assert (back.state, back.acked_by, back.ack_comment, back.ack_expires_ts) == (
        "firing",
        None,
        None,
        None,
    )
    assert (back.notified_ts, back.fire_count, back.fired_ts) == (T0, 1, T0)  # same firing
    assert alert_history(db, alert.id)[-1] == (
        T0 + 10,
        "acknowledged",
        "firing",
        "bo",
        "ana went home",
    )
    assert apply_conditions(db, [HOT], T0 + 12) == []  # already notified: nobody paged
    assert apply_conditions(db, [HOT], T0 + 700) == []  # the withdrawn ack's timeout is gone
    again = acknowledge(db, alert.id, "bo", "mine now", now_ts=T0 + 701)
    assert again.acked_by == "bo"
    assert states(db, alert.id) == ["firing", "acknowledged", "firing", "acknowledged"]


def test_unack_refusals_name_the_state_and_write_nothing(db):
    (hot, xid79) = apply_conditions(db, [HOT, XID79], T0)
    resolve(db, xid79.id, "ana", "node rebooted", now_ts=T0 + 1)
    rows = db.conn.execute("SELECT count(*) FROM alert_history").fetchone()
    with pytest.raises(AlertError, match="no alert 999"):
        unack(db, 999, "bo", "?", now_ts=T0 + 2)
    with pytest.raises(AlertError, match=r"alert \d+ is not acknowledged \(it is firing\)"):
        unack(db, hot.id, "bo", "?", now_ts=T0 + 2)
    with pytest.raises(AlertError, match=r"not acknowledged \(it is resolved\)"):
        unack(db, xid79.id, "bo", "?", now_ts=T0 + 2)
    assert db.conn.execute("SELECT count(*) FROM alert_history").fetchone() == rows
    assert get_alert(db, hot.id).state == "firing"


def test_unack_of_a_silenced_firing_notifies_once_its_silence_ends(db):
    """Never handed out (held by a silence) is not "already notified": the first
    notification still comes, once, when the silence ends."""
    create_silence(db, {"host": HOST}, start_ts=T0, end_ts=T0 + 100, created_by="ana",
                   comment="maintenance", now_ts=T0)  # fmt: skip
    apply_conditions(db, [HOT], T0 + 1)
    (alert,) = list_alerts(db)
    acknowledge(db, alert.id, "ana", "mine", now_ts=T0 + 2)
    unack(db, alert.id, "ana", "handing over", now_ts=T0 + 3)
    assert apply_conditions(db, [HOT], T0 + 50) == []
    assert [a.id for a in apply_conditions(db, [HOT], T0 + 100)] == [alert.id]
    assert apply_conditions(db, [HOT], T0 + 102) == []


def test_silence_records_but_does_not_notify_until_it_ends(db):
    sid = create_silence(db, {"host": HOST}, start_ts=T0, end_ts=T0 + 100, created_by="ana",
                         comment="maintenance", now_ts=T0)  # fmt: skip
    assert apply_conditions(db, [HOT], T0 + 1) == []
    (alert,) = list_alerts(db)
    assert (alert.state, alert.silenced_by, alert.notified_ts) == ("firing", sid, None)
    assert apply_conditions(db, [HOT], T0 + 50) == []
    (late,) = apply_conditions(db, [HOT], T0 + 100)  # silence over, still firing: tell now
    assert late.id == alert.id and late.notified_ts == T0 + 100
    assert apply_conditions(db, [HOT], T0 + 102) == []


def test_silence_matchers_rule_and_expiry(db):
    create_silence(db, {"rule": "xid_hardware"}, start_ts=T0, end_ts=T0 + 100, created_by="ana",
                   comment="", now_ts=T0)  # fmt: skip
    notified = apply_conditions(db, [HOT, XID79], T0 + 1)
    assert [a.rule for a in notified] == ["gpu_temp_high"]
    sid = create_silence(db, {"gpu": 0, "host": HOST}, start_ts=T0, end_ts=T0 + 100,
                         created_by="ana", comment="", now_ts=T0)  # fmt: skip
    expire_silence(db, sid, now_ts=T0 + 2)
    with pytest.raises(AlertError, match="already ended"):
        expire_silence(db, sid, now_ts=T0 + 3)


@pytest.mark.parametrize(
    ("matchers", "end", "message"),
    [({}, T0 + 10, "at least one matcher"), ({"host": ""}, T0 + 10, "at least one matcher"),
     ({"host": HOST}, T0, "end after"), ({"colour": "red"}, T0 + 10, "unknown silence matcher")],
)  # fmt: skip
def test_bad_silences_are_refused(db, matchers, end, message):
    with pytest.raises(AlertError, match=message):
        create_silence(db, matchers, start_ts=T0, end_ts=end, created_by="ana", comment="",
                       now_ts=T0)  # fmt: skip
    assert db.conn.execute("SELECT count(*) FROM silences").fetchone() == (0,)


@pytest.mark.slow
def test_concurrent_ack_from_two_processes_exactly_one_wins(db, path):
    (alert,) = apply_conditions(db, [HOT], T0)
    barrier, out = spawn.Barrier(2), spawn.Queue()
    procs = [
        spawn.Process(target=ack_worker, args=(str(path), alert.id, who, barrier, out))
        for who in ("ana", "bo")
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [who for who, r in results.items() if r == "won"]
    assert len(winners) == 1
    (loser,) = set(results) - set(winners)
    assert (
        results[loser].startswith("error: ") and f"acknowledged by {winners[0]}" in results[loser]
    )
    assert get_alert(db, alert.id).acked_by == winners[0]
    assert states(db, alert.id) == ["firing", "acknowledged"]


def test_restart_keeps_state_and_does_not_renotify(path):
    live, tracker = fleet_state(), PendingTracker()
    hot = healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)], events=[xid(79, T0 - 1)])
    db = open_store(path)
    for ts in (T0, T0 + 30, T0 + 60):  # gpu_temp_high has for_s = 60
        feed(live, ts, msgspec.structs.replace(hot, ts=ts))
        notified = apply_conditions(db, evaluate(live, ts, tracker), ts)
    assert sorted(a.rule for a in list_alerts(db)) == ["gpu_temp_high", "xid_hardware"]
    assert [a.rule for a in notified] == ["gpu_temp_high"]
    acknowledge(db, notified[0].id, "ana", "on it", now_ts=T0 + 61)
    db.close()

    db = open_store(path)  # a new console: fresh live state, fresh tracker
    state, tracker = fleet_state(), PendingTracker()
    tracker.resume(active_conditions(db), T0 + 100)
    assert apply_conditions(db, evaluate(state, T0 + 100, tracker), T0 + 100) == []  # pending hosts
    feed(state, T0 + 102, msgspec.structs.replace(hot, ts=T0 + 102))
    assert apply_conditions(db, evaluate(state, T0 + 102, tracker), T0 + 102) == []
    by_rule = {a.rule: a for a in list_alerts(db)}
    assert (
        by_rule["gpu_temp_high"].state == "acknowledged"
        and by_rule["gpu_temp_high"].fire_count == 1
    )
    assert by_rule["xid_hardware"].state == "firing"
    db.close()


def test_list_alerts_resolved_since_keeps_open_ones_and_recent_resolutions(db):
    other = Condition(
        rule="gpu_temp_high",
        severity="warning",
        kind="condition",
        labels=LABELS | {"gpu": "1"},
        summary="hot 1",
    )
    apply_conditions(db, [HOT, other], T0)
    apply_conditions(db, [other], T0 + 10)  # HOT resolves at T0 + 10
    apply_conditions(db, [], T0 + 100)  # other resolves at T0 + 100
    listed = lambda since: {a.summary for a in list_alerts(db, resolved_since_ts=since)}  # noqa: E731
    assert listed(T0 + 50) == {"hot 1"}
    assert listed(T0) == {HOT.summary, "hot 1"}
    apply_conditions(db, [HOT], T0 + 200)  # open again: listed whatever the cut-off
    assert listed(T0 + 150) == {HOT.summary}
