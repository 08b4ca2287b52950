"""A host's XID events are capped per interval before the store: a tenant writing the
kernel log cannot fill the events table, and the drops are counted where the operator
sees them."""

from __future__ import annotations

from opsconsole.collect.budget import BURST_INTERVALS, EVENTS_PER_INTERVAL, HostBudget
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.wire import Hello, HostFacts
from tests.alerts.fleet import HOST, T0, fleet_state, healthy, xid

OTHER_HOST = "sg1-r01-n02"

INTERVAL_S = 2.0


def hello(hostname: str, uuids: list) -> Hello:
    return Hello(proto=1, agent_version="t", mode="nvml", ts=T0, host=HostFacts(hostname=hostname))


def test_events_beyond_the_budget_never_reach_the_store(tmp_path):
    state = fleet_state()
    host, honest = state.hosts[HOST], state.hosts[OTHER_HOST]
    clock = [0.0]
    for hs in (host, honest):
        hs.budget = HostBudget(INTERVAL_S, clock=lambda: clock[0])
    ingest = TelemetryIngest(open_store(tmp_path / "ops.db"))
    samples, passed, offered = 30, 0, set()
    for n in range(samples):
        clock[0] = n * INTERVAL_S
        now = T0 + clock[0]
        flood = healthy(now, events=[xid(13 + i % 3, now - 600 - i) for i in range(40)])
        offered |= {(e.code, round(e.ts)) for e in flood.events}
        host.apply_sample(flood, now)
        passed += len(flood.events)
        ingest.record_events(HOST, flood.events)  # what the session hands the store
        calm = healthy(now, events=[xid(79, T0 - 5, 1)])  # the same XID replayed
        honest.apply_sample(calm, now)
        ingest.record_events(OTHER_HOST, calm.events)

    stored = dict(ingest.db.conn.execute("SELECT host, count(*) FROM events GROUP BY host"))
    allowed = EVENTS_PER_INTERVAL * (BURST_INTERVALS + samples)
    assert 0 < stored[HOST] <= allowed < 40 * samples
    assert stored[HOST] == passed  # only what the budget let through left the sample
    assert host.budget.dropped_events >= len(offered) - passed > 0
    assert stored[OTHER_HOST] == 1 and honest.budget.dropped_events == 0
    assert any("events dropped" in note for note in host.distrust_notes())
    assert host.reason == "over budget" and "events dropped" in host.detail
    assert not any("over budget" in note for note in honest.distrust_notes())
    newest = max(e.ts for e in host.events)
    assert newest == T0 + clock[0] - 600  # the newest of each sample are the ones kept


def test_the_kernel_log_replay_after_a_hello_is_not_a_flood_but_only_once():
    state = fleet_state()
    host = state.hosts[HOST]
    clock = [0.0]
    host.budget = HostBudget(INTERVAL_S, clock=lambda: clock[0])
    host.apply_hello(hello(HOST, []), T0)
    boot_log = healthy(T0, events=[xid(79, T0 - 9000 + i, i % 2) for i in range(100)])
    host.apply_sample(boot_log, T0)  # a console restart: the whole log is new to it
    assert len(boot_log.events) == 100 and host.budget.dropped_events == 0
    assert host.over_budget == ""

    clock[0] = INTERVAL_S  # hello again at once, with another hundred: a flood now
    host.apply_hello(hello(HOST, []), T0 + clock[0])
    again = healthy(T0 + 2, events=[xid(13, T0 - 500 + i, 0) for i in range(100)])
    host.apply_sample(again, T0 + clock[0])
    assert len(again.events) <= EVENTS_PER_INTERVAL
    assert host.budget.dropped_events == 100 - len(again.events)
    assert "events dropped" in host.over_budget
