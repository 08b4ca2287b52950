"""Alerts end to end on the simulated fleet: real SSH servers, the real agent, the poller,
the live state, the engine and the store — with a tenant leasing the faulty GPU.

The engine is stepped by hand after each poll (`AlertEngine.step`), which is what its
background loop does every interval; the clock is passed explicitly where a test needs
time to pass (an acknowledgement timeout), so no test waits on the wall clock."""

from __future__ import annotations

import time

import pytest

from opsconsole.alerts.engine import AlertEngine
from opsconsole.alerts.silences import create_silence
from opsconsole.alerts.store import acknowledge, alert_history, list_alerts
from opsconsole.collect.poller import Poller
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.leases.allocate import LeaseRequest, allocate_lease
from opsconsole.leases.model import GpuSlot
from opsconsole.leases.tenants import create_tenant
from opsconsole.sim.server import SimServer
from opsconsole.store import open_store

pytestmark = pytest.mark.timeout(120)


def lease_host(db, fleet, host: str, tenant: str, now: float) -> int:
    create_tenant(db, tenant, gpu_quota=64, operator="test", now_ts=now)
    request = LeaseRequest(
        tenant,
        now - 60,
        now + 7 * 86400,
        slots=tuple(GpuSlot(host, i) for i in range(8)),
    )
    return allocate_lease(db, fleet, request, operator="test", now_ts=now - 60).id


async def poll(fleet, state) -> None:
    await Poller(fleet, state).poll_once(30.0)


def by_rule(alerts, rule: str, host: str):
    return [a for a in alerts if a.rule == rule and a.labels.get("host") == host]


@pytest.mark.slow
async def test_xid79_fires_within_one_poll_names_the_tenant_and_resolves_on_clear(tmp_path):
    async with SimServer(4, seed=11) as server:
        host = list(server.hosts)[1]
        fleet = load_fleet(server.write_files(tmp_path, interval_s=0.5))
        store = tmp_path / "alerts.db"
        db = open_store(store)
        now = time.time()
        lease_id = lease_host(db, fleet, host, "acme", now)
        engine = AlertEngine(store)
        engine.resume(now)
        state = FleetState.from_fleet(fleet, now_ts=now)
        await server.inject(host, "xid79", gpu=2)

        await poll(fleet, state)
        notified = engine.step(state, time.time())

        lost = by_rule(notified, "gpu_lost", host)
        xid = [a for a in notified if a.labels.get("code") == "79"]
        assert len(lost) == 1 and lost[0].labels["gpu"] == "2"
        assert len(xid) == 1 and xid[0].kind == "event"
        for alert in lost + xid:
            assert alert.labels["tenant"] == "acme"
            assert str(lease_id) in alert.labels["leases"].split(",")
            assert "acme" in alert.summary
        assert "79" in xid[0].summary and "GPU" in xid[0].summary

        await server.clear(host, "xid79", gpu=2)
        await poll(fleet, state)
        assert engine.step(state, time.time()) == []

        after = {a.id: a for a in list_alerts(db, include_resolved=True)}
        assert after[lost[0].id].state == "resolved"
        assert after[lost[0].id].resolved_by is None  # cleared by itself
        assert after[xid[0].id].state == "firing"  # an XID waits for a person
        history = [row[2] for row in alert_history(db, lost[0].id)]
        assert history == ["firing", "resolved"]
        engine.close()
        db.close()


@pytest.mark.slow
async def test_ack_timeout_refires_silence_holds_notification_and_restart_keeps_state(tmp_path):
    async with SimServer(3, seed=12) as server:
        hot, other = list(server.hosts)[:2]
        fleet = load_fleet(server.write_files(tmp_path, interval_s=0.5))
        store = tmp_path / "alerts.db"
        db = open_store(store)
        now = time.time()
        engine = AlertEngine(store)
        engine.resume(now)
        state = FleetState.from_fleet(fleet, now_ts=now)
        await server.inject(hot, "ib_port_down")
        await server.inject(other, "ib_port_down")
        create_silence(
            db, {"host": other}, start_ts=now - 1, end_ts=now + 3600,
            created_by="bob", comment="cabling work", now_ts=now,
        )  # fmt: skip
        await poll(fleet, state)

        # ib_port_down has a 30 s `for`: the first sight starts it, 30 s later it fires.
        assert engine.step(state, now) == []
        fired = engine.step(state, now + 31)
        notified_hosts = {a.labels["host"] for a in fired}
        assert hot in notified_hosts and other not in notified_hosts  # silenced: no one told
        recorded = list_alerts(db)
        silenced = by_rule(recorded, "ib_port_down", other)
        assert silenced and silenced[0].silenced_by is not None  # ...but on record
        alert = by_rule(fired, "ib_port_down", hot)[0]

        acknowledge(db, alert.id, "alice", "reseating the cable", timeout_s=600, now_ts=now + 40)
        assert engine.step(state, now + 300) == []  # acknowledged: quiet
        engine.close()

        restarted = AlertEngine(store)
        restarted.resume(now + 301)
        assert restarted.step(state, now + 302) == []  # nothing notified twice
        assert by_rule(list_alerts(db), "ib_port_down", hot)[0].acked_by == "alice"

        refired = restarted.step(state, now + 641)  # the acknowledgement timed out
        assert [a.id for a in refired if a.rule == "ib_port_down"] == [alert.id]
        assert refired[0].state == "firing" and refired[0].acked_by is None
        restarted.close()
        db.close()
