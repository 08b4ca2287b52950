"""Silences as an operator lists them (in force, scheduled, ended and still kept) and the
tenant matcher against a label naming several tenants."""

from __future__ import annotations

import pytest

from opsconsole.alerts import Condition, apply_conditions, create_silence, expire_silence
from opsconsole.alerts.silences import Silence, label_names, list_silences
from tests.alerts.fleet import HOST, T0

HOUR = 3600.0


def silence(db, start: float, end: float, created: float, **matchers: str) -> int:
    return create_silence(db, matchers, start_ts=start, end_ts=end, created_by="ana",
                          comment=f"{matchers}", now_ts=created)  # fmt: skip


def test_list_silences_in_force_scheduled_and_kept_ended(db):
    ended = silence(db, T0 - 3 * HOUR, T0 - 2 * HOUR, T0 - 4 * HOUR, host=HOST)
    later = silence(db, T0 + HOUR, T0 + 2 * HOUR, T0 - 60, rack="sg1-r01")
    now = silence(db, T0 - HOUR, T0 + HOUR, T0 - HOUR, rule="gpu_temp_high")
    stopped = silence(db, T0 - HOUR, T0 + HOUR, T0 - HOUR, site="SG1")
    expire_silence(db, stopped, now_ts=T0 - 1)

    current = list_silences(db, now_ts=T0)
    assert [s.id for s in current] == [now, later]  # earliest start first
    assert [s.state_at(T0) for s in current] == ["in force", "scheduled"]
    assert current[0] == Silence(now, {"rule": "gpu_temp_high"}, T0 - HOUR, T0 + HOUR, "ana",
                                 "{'rule': 'gpu_temp_high'}", T0 - HOUR)  # fmt: skip
    everything = list_silences(db, now_ts=T0, include_expired=True)
    assert [s.id for s in everything] == [ended, now, stopped, later]
    assert [s.state_at(T0) for s in everything] == ["ended", "in force", "ended", "scheduled"]
    assert everything[2].end_ts == T0 - 1 and everything[0].created_ts == T0 - 4 * HOUR
    assert list_silences(db, now_ts=T0 + 3 * HOUR) == []


@pytest.mark.parametrize(
    ("label", "matched"),
    [("acme", True), ("globex,acme", True), ("acme, globex", True), ("acmecorp", False),
     ("", False), (None, False)],
)  # fmt: skip
def test_tenant_matcher_matches_one_of_several_tenants(label, matched):
    labels = {"host": HOST} | ({} if label is None else {"tenant": label})
    rule = Silence(1, {"tenant": "acme"}, T0, T0 + 1, "ana", "", T0)
    assert rule.matches("xid_hardware", labels) is matched
    assert (
        Silence(2, {"host": HOST, "tenant": "acme"}, T0, T0 + 1, "ana", "", T0).matches(
            "xid_hardware", labels
        )
        is matched
    )


def xid_on(gpu: str, tenant: str) -> Condition:
    labels = {"host": HOST, "gpu": gpu, "event": f"79@{gpu}", "tenant": tenant}
    return Condition(
        rule="xid_hardware", severity="critical", kind="event", labels=labels, summary="XID 79"
    )


def test_a_tenant_silence_holds_back_a_shared_gpus_alert(db):
    silence(db, T0, T0 + HOUR, T0, tenant="globex")
    notified = apply_conditions(db, [xid_on("0", "acme,globex"), xid_on("1", "acme")], T0 + 1)
    assert [a.labels["gpu"] for a in notified] == ["1"]


def test_label_names():
    assert label_names(" acme , globex,,") == ["acme", "globex"]
    assert label_names(None) == [] and label_names("") == []
