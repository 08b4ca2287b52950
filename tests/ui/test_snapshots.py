"""What the operator sees, pixel for pixel: the fleet, host and lease views on deterministic
data (synthetic fleet, fixed clock, no polling, leases booked at that clock). Update with
`pytest tests/ui --snapshot-update` after an intended change, and look at the SVGs before
committing them."""

from __future__ import annotations

import pytest

from opsconsole.leases import LeaseRequest, allocate_lease
from opsconsole.store import open_store
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.leases import LeasesScreen
from tests.support.ui import OPERATOR, SIZE, FakeClock, add_tenants, wait_until
from tests.ui.synthetic import T0, feed_all, synthetic_fleet, warm_fleet, xid_event

pytestmark = pytest.mark.slow

STALE, DOWN, XID_HOST = "sg1-r01-n02", "sg1-r01-n05", "sg1-r01-n03"


def troubled_app(metric: str = "util"):
    """32 hosts: one stale, one down, one with a GPU that fell off the bus."""
    clock = FakeClock()
    fleet = synthetic_fleet(32)
    state = warm_fleet(fleet, samples=5, now_ts=clock())
    for seq in range(20):  # 40 s on: DOWN silent all along, STALE for the last 14 s
        silent = {DOWN} | ({STALE} if seq >= 13 else set())
        feed_all(state, clock.advance(2), 10 + seq, skip=silent)
        state.tick(clock())
    host = state.hosts[XID_HOST]
    host._note_events([xid_event(clock() - 20, gpu=5, code=79)])
    state.changed(host, "sample")
    return make_app(fleet, state, clock=clock, publish_interval_s=3600)


class TestFleetView:
    def test_overview(self, snap_compare):
        fleet = synthetic_fleet(32)
        app = make_app(fleet, warm_fleet(fleet, 5), clock=FakeClock(), publish_interval_s=3600)
        assert snap_compare(app, terminal_size=SIZE)

    def test_trouble_by_temperature(self, snap_compare):
        assert snap_compare(troubled_app(), press=["2", "down", "down", "down"], terminal_size=SIZE)

    def test_health_sorted_worst_first(self, snap_compare):
        async def sort_by_health(pilot):
            pilot.app.run_command("sort health")
            pilot.app.run_command("metric health")
            await pilot.pause()

        assert snap_compare(troubled_app(), run_before=sort_by_health, terminal_size=SIZE)


class TestHostView:
    @pytest.mark.parametrize("host", [XID_HOST, STALE, DOWN])
    def test_host(self, snap_compare, host):
        async def open_host(pilot):
            pilot.app.open_host(host)
            await pilot.pause()
            await pilot.pause()

        assert snap_compare(troubled_app(), run_before=open_host, terminal_size=SIZE)

    def test_host_reopened(self, snap_compare):
        """The host screen is reused, and not re-styled when it comes back: opened after
        another host it looks exactly as opened first (the same picture as
        test_host[XID_HOST])."""

        async def open_host_after_another(pilot):
            pilot.app.open_host(STALE)
            await pilot.pause()
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            pilot.app.open_host(XID_HOST)
            await pilot.pause()
            await pilot.pause()

        assert snap_compare(troubled_app(), run_before=open_host_after_another, terminal_size=SIZE)


class TestOverlays:
    def test_help(self, snap_compare):
        assert snap_compare(troubled_app(), press=["question_mark"], terminal_size=SIZE)


class TestLeasesView:
    def test_leases_table_and_calendar(self, snap_compare, tmp_path):
        """Two tenants, active and reserved leases, one released: fixed clock, fixed ids."""
        db = open_store(tmp_path / "leases.db")
        add_tenants(db)
        fleet = synthetic_fleet(32)
        day = 86_400
        for tenant, gpus, start_day, end_day in (
            ("aurora-labs", 16, 0, 10),
            ("kestrel-ai", 8, 2, 9),
            ("aurora-labs", 4, 0, 3),
            ("kestrel-ai", 16, 12, 20),
        ):
            request = LeaseRequest(tenant, T0 + start_day * day, T0 + end_day * day, gpus=gpus)
            allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=T0)
        app = make_app(
            fleet,
            warm_fleet(fleet, 5),
            clock=FakeClock(),
            publish_interval_s=3600,
            store=db,
            operator=OPERATOR,
        )

        async def open_leases(pilot):
            # The header counts hosts from the first batch: let it land first (was flaky).
            await wait_until(pilot, lambda: pilot.app.model.totals().hosts["fresh"] == 32)
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, LeasesScreen))
            await wait_until(pilot, lambda: pilot.app.leases.board is not None)
            # Opening the screen re-reads the board in a worker: let it land and paint.
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.pause()

        try:
            assert snap_compare(app, run_before=open_leases, terminal_size=SIZE)
        finally:
            db.close()
