"""Alert retention: ended silences and long-resolved alerts (with their history) go,
open alerts never do, and the whole prune is one transaction."""

from __future__ import annotations

import pytest

from opsconsole.alerts import (
    Condition,
    acknowledge,
    apply_conditions,
    create_silence,
    get_alert,
    list_alerts,
    resolve,
)
from opsconsole.alerts.retention import prune_alerts
from opsconsole.errors import AlertError, StoreError
from tests.alerts.fleet import HOST, T0

DAY = 86_400.0
NOW = T0 + 400 * DAY
KEEP = {"silence_keep_s": 30 * DAY, "resolved_keep_s": 180 * DAY}


def cond(rule: str, gpu: str, kind: str = "event") -> Condition:
    labels = {"host": HOST, "gpu": gpu, "event": f"{rule}@{gpu}"}
    return Condition(
        rule=rule, severity="critical", kind=kind, labels=labels, summary=f"{rule} on GPU {gpu}"
    )  # type: ignore[arg-type]


def silence(db, end_ts: float, host: str = HOST) -> int:
    return create_silence(db, {"host": host}, start_ts=end_ts - DAY, end_ts=end_ts,
                          created_by="ana", comment="", now_ts=end_ts - DAY)  # fmt: skip


def ids(db, table: str) -> list[int]:
    column = "alert_id" if table == "alert_history" else "id"
    return sorted({r[0] for r in db.conn.execute(f"SELECT {column} FROM {table}")})


@pytest.fixture
def seeded(db):
    """Alerts 1-2 resolved 200 and 100 days ago; 3 firing and 4 acknowledged since 400
    days ago. Silences 1-3 ended 31 days ago, 29 days ago, and ending tomorrow (the
    highest ids, 4 and 3, are kept by every prune anyway)."""
    old, recent, firing, acked = (cond(n, str(i)) for i, n in enumerate("abcd"))
    apply_conditions(db, [old, recent, firing, acked], T0)
    resolve(db, 1, "ana", "replaced", now_ts=NOW - 200 * DAY)
    resolve(db, 2, "ana", "reseated", now_ts=NOW - 100 * DAY)
    acknowledge(db, 4, "ana", "RMA pending", now_ts=T0 + 1)
    for end in (NOW - 31 * DAY, NOW - 29 * DAY, NOW + DAY):
        silence(db, end)
    return db


def test_prunes_old_silences_and_resolved_alerts_with_history(seeded):
    db = seeded
    assert prune_alerts(db, NOW, **KEEP) == (1, 1)
    assert ids(db, "silences") == [2, 3]
    assert ids(db, "alerts") == [2, 3, 4]
    assert ids(db, "alert_history") == [2, 3, 4]
    assert prune_alerts(db, NOW, **KEEP) == (0, 0)  # nothing left that is old enough


def test_open_alerts_are_never_pruned(seeded):
    db = seeded
    assert prune_alerts(db, NOW + 1000 * DAY, silence_keep_s=0, resolved_keep_s=0) == (2, 2)
    assert [(a.id, a.state) for a in list_alerts(db, include_resolved=True)] == [
        (3, "firing"),
        (4, "acknowledged"),
    ]
    assert get_alert(db, 4).ack_comment == "RMA pending"
    assert ids(db, "alert_history") == [3, 4]


def test_a_pruned_condition_that_returns_is_a_new_alert_with_a_new_id(db):
    """The newest row is kept whatever its age, so SQLite's max(id) + 1 never hands a
    pruned id to another alert or silence."""
    hot = cond("gpu_temp_high", "0", kind="condition")
    apply_conditions(db, [hot, cond("gpu_temp_high", "1", kind="condition")], T0)
    apply_conditions(db, [], T0 + 60)
    for end_ts, host in ((T0, HOST), (T0 + 1, "sg1-r01-n02")):  # overlapping: two hosts
        silence(db, end_ts, host)
    assert prune_alerts(db, NOW, **KEEP) == (1, 1)
    assert ids(db, "alerts") == [2] and ids(db, "silences") == [2]
    (again,) = apply_conditions(db, [hot], NOW)
    assert (again.id, again.fire_count, again.first_fired_ts) == (3, 1, NOW)
    assert silence(db, NOW + DAY) == 3


def test_one_transaction_nothing_removed_when_a_delete_fails(seeded):
    db = seeded
    db.conn.execute(
        "CREATE TRIGGER keep_alerts BEFORE DELETE ON alerts"
        " BEGIN SELECT RAISE(ABORT, 'alerts are kept'); END"
    )
    with pytest.raises(StoreError, match="alerts are kept"):
        prune_alerts(db, NOW, **KEEP)
    assert ids(db, "silences") == [1, 2, 3]
    assert ids(db, "alert_history") == [1, 2, 3, 4]


def test_negative_keep_is_refused(db):
    with pytest.raises(AlertError, match="negative"):
        prune_alerts(db, NOW, silence_keep_s=-1, resolved_keep_s=0)
