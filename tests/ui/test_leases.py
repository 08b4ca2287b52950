"""The Leases screen and its dialogs, from keys to rows in the SQLite file: allocate with a
preview, extend, release, cancel, read-only refusals, refusals from the leases layer and
a locked store. Rows are read through a fresh connection, so what is asserted is what
was committed to the file."""

from __future__ import annotations

import sqlite3

import pytest

from opsconsole.leases import GpuSlot, LeaseRequest, allocate_lease, create_tenant
from opsconsole.ui.app import make_app
from opsconsole.ui.gateway import lease_desk
from opsconsole.ui.screens.allocate import AllocateScreen
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.screens.extend import ExtendScreen
from opsconsole.ui.screens.fleet import FleetScreen
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.leases import LeasesScreen
from tests.support.ui import OPERATOR, SIZE, notices, record_notifications, type_text, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0

pytestmark = pytest.mark.slow

DAY = 86_400.0


def rows(store_path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(store_path) as conn:
        return conn.execute(sql, params).fetchall()


def spy_requests(monkeypatch) -> list[LeaseRequest]:
    """Every request the console hands to preview_lease / allocate_lease."""
    seen: list[LeaseRequest] = []
    for name in ("preview_lease", "allocate_lease"):
        real = getattr(lease_desk, name)

        def spy(db, fleet, request, *args, _real=real, **kwargs):
            seen.append(request)
            return _real(db, fleet, request, *args, **kwargs)

        monkeypatch.setattr(lease_desk, name, spy)
    return seen


def book(db, fleet, tenant: str, gpus: int, start_ts: float = T0, days: float = 7):
    request = LeaseRequest(tenant, start_ts, start_ts + days * DAY, gpus=gpus)
    return allocate_lease(db, fleet, request, operator=OPERATOR, now_ts=T0)


async def open_leases(pilot, app) -> LeasesScreen:
    await pilot.press("l")
    await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
    await wait_until(pilot, lambda: app.leases.board is not None and not app.leases.trouble)
    await pilot.pause()
    return app.screen


async def open_allocate(pilot, app) -> AllocateScreen:
    await open_leases(pilot, app)
    await pilot.press("a")
    await wait_until(pilot, lambda: isinstance(app.screen, AllocateScreen))
    return app.screen


async def fill(pilot, tenant: str, amount: str, end: str = "") -> None:
    """Tenant, amount and (when given) end, moving with Tab; start stays "now"."""
    await type_text(pilot, tenant)
    await pilot.press("tab")
    await type_text(pilot, amount)  # the field's text is selected on focus: replaced
    if end:
        await pilot.press("tab", "tab")
        await type_text(pilot, end)


class TestAllocate:
    async def test_keys_to_lease_rows(self, lease_app, store_path):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_allocate(pilot, app)
            await fill(pilot, "aurora-labs", "16", "+3d")
            await pilot.press("enter")
            await wait_until(pilot, lambda: dialog.placement is not None)
            text = screen_text(app)
            assert "sg1-r01-n[01-02]:0-7" in text
            assert "in rack sg1-r01" in text  # the leases layer's one-line why
            assert rows(store_path, "SELECT count(*) FROM leases") == [(0,)]  # preview only

            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
            assert rows(
                store_path, "SELECT tenant, gpu_count, request, start_ts, end_ts, created_by"
                " FROM leases"
            ) == [("aurora-labs", 16, "gpus", T0, T0 + 3 * DAY, OPERATOR)]  # fmt: skip
            slots = rows(store_path, "SELECT host, gpu_index FROM lease_slots ORDER BY 1, 2")
            assert slots == [(f"sg1-r01-n0{n}", i) for n in (1, 2) for i in range(8)]
            await wait_until(pilot, lambda: len(app.leases.board.listed) == 1)
            assert "aurora-labs" in screen_text(app)

            await pilot.press("escape")  # the fleet shows the tenant and the counts
            await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.pause()
            text = screen_text(app)
            assert "16 leased · 240 free" in text
            line = next(line for line in text.splitlines() if "sg1-r01-n02" in line)
            assert "aurora-labs 8" in line
            line = next(line for line in text.splitlines() if "sg1-r01-n03" in line)
            assert "free" in line

    async def test_whole_nodes_in_one_site(self, lease_app, store_path, monkeypatch):
        app = lease_app
        requests = spy_requests(monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_allocate(pilot, app)
            await fill(pilot, "kestrel-ai", "2 nodes")
            await pilot.press("tab", "tab", "tab")
            await type_text(pilot, "sg1")
            await pilot.press("tab")
            await type_text(pilot, "rack")
            await pilot.press("enter")
            await wait_until(pilot, lambda: dialog.placement is not None)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
            assert rows(store_path, "SELECT request, gpu_count FROM leases") == [("nodes", 16)]
            # the dialog hands the constraints to the leases layer, which applies them
            assert {(r.site, r.locality) for r in requests} == {("SG1", "rack")}
            racks = rows(store_path, "SELECT DISTINCT substr(host, 1, 7) FROM lease_slots")
            assert len(racks) == 1

    async def test_one_rack_on_more_nodes_than_the_fewest(
        self, lease_app, lease_store, fleet, store_path
    ):
        """12 GPUs fit on 2 nodes only across racks (6 + 6), and in one rack on 3 (6 + 4 +
        2 of 4): placement searches per rack, so the rack constraint finds the fit."""
        create_tenant(lease_store, "bulk", gpu_quota=1000, operator=OPERATOR, now_ts=T0 - DAY)
        held = [
            GpuSlot(h.name, i)
            for h in fleet.hosts
            for i in range(2 if h.name.endswith("-n01") else 4)
        ]
        request = LeaseRequest("bulk", T0, T0 + 30 * DAY, slots=tuple(held))
        allocate_lease(lease_store, fleet, request, operator=OPERATOR, now_ts=T0)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_allocate(pilot, app)
            await fill(pilot, "aurora-labs", "12")
            await pilot.press("tab", "tab", "tab")
            await type_text(pilot, "SG1")
            await pilot.press("tab")
            await type_text(pilot, "rack")
            await pilot.press("enter")
            await wait_until(pilot, lambda: dialog.placement is not None)
            assert len(dialog.placement.hosts) == 3
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
        hosts = rows(
            store_path, "SELECT DISTINCT host FROM lease_slots WHERE lease_id = 2 ORDER BY host"
        )
        assert len(hosts) == 3 and len({h[:7] for (h,) in hosts}) == 1

    async def test_an_edit_after_the_preview_previews_again(self, lease_app, store_path):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_allocate(pilot, app)
            await fill(pilot, "aurora-labs", "8")
            await pilot.press("enter")
            await wait_until(pilot, lambda: dialog.placement is not None)
            await type_text(pilot, "0")  # 80 GPUs now: over aurora-labs' quota of 64
            assert "changed since the preview" in screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "quota exceeded" in screen_text(app))
            assert isinstance(app.screen, AllocateScreen)
            assert rows(store_path, "SELECT count(*) FROM leases") == [(0,)]


class TestRefusals:
    @pytest.mark.parametrize(
        ("tenant", "amount", "end", "expected"),
        [
            ("kestrel-ai", "24", "", "quota exceeded: kestrel-ai may hold 16 GPUs"),
            ("nobody", "8", "", 'unknown tenant "nobody"'),
            ("aurora-labs", "8", "next tuesday", '"next tuesday" is not a time'),
        ],
    )
    async def test_a_lease_error_shows_in_the_dialog_and_writes_nothing(
        self, lease_app, store_path, tenant, amount, end, expected
    ):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_allocate(pilot, app)
            await fill(pilot, tenant, amount, end)
            await pilot.press("enter")
            await wait_until(pilot, lambda: expected in screen_text(app))
            await pilot.press("enter")  # no preview to confirm: it asks again, still refused
            await pilot.pause()
            assert isinstance(app.screen, AllocateScreen)
        assert rows(store_path, "SELECT count(*) FROM leases") == [(0,)]
        assert rows(store_path, "SELECT count(*) FROM lease_slots") == [(0,)]

    async def test_a_locked_store_is_one_line_and_writes_nothing(self, lease_app, store_path):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            dialog = await open_allocate(pilot, app)
            await fill(pilot, "aurora-labs", "8")
            await pilot.press("enter")
            await wait_until(pilot, lambda: dialog.placement is not None)
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
            try:
                await pilot.press("enter")
                await wait_until(pilot, lambda: "locked by another process" in screen_text(app))
                assert isinstance(app.screen, AllocateScreen)
            finally:
                other.execute("ROLLBACK")
                other.close()
        assert rows(store_path, "SELECT count(*) FROM leases") == [(0,)]

    async def test_an_unreadable_store_is_a_state(self, lease_app, lease_store):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.leases.board is not None)
            # the connection is gone: every read now fails. Closed under the desk's lock,
            # so no worker is inside a call (the alerts board reads on it too): closing a
            # connection another thread is using crashes sqlite3.
            with app.gateway.lock:
                lease_store.close()
            app.leases.refresh()
            await wait_until(pilot, lambda: app.leases.trouble != "")
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
            assert "⚠ leases: store" in screen_text(app)

    async def test_read_only_refuses_every_change(
        self, fleet, state, clock, lease_store, store_path
    ):
        book(lease_store, fleet, "aurora-labs", 8)
        app = make_app(
            fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, read_only=True
        )
        record_notifications(app)
        async with app.run_test(size=SIZE) as pilot:
            await open_leases(pilot, app)
            await pilot.press("a", "e", "x", "c")
            app.run_command("allocate kestrel-ai")
            await pilot.pause()
            assert app.refusals == [
                "allocate lease",
                "extend lease",
                "release lease",
                "cancel lease",
                "allocate lease",
            ]
            assert isinstance(app.screen, LeasesScreen)
            assert "read-only" in " ".join(n.message for n in notices(app))
        assert rows(store_path, "SELECT count(*) FROM leases WHERE released_ts IS NULL") == [(1,)]
        assert rows(store_path, "SELECT action FROM audit_log WHERE action LIKE 'lease.%'") == [
            ("lease.allocate",)
        ]


class TestChanges:
    async def test_extend_from_the_keyboard(self, lease_app, lease_store, fleet, store_path):
        lease = book(lease_store, fleet, "aurora-labs", 8)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_leases(pilot, app)
            await pilot.press("e")
            await wait_until(pilot, lambda: isinstance(app.screen, ExtendScreen))
            await type_text(pilot, "2d")
            assert "new end: 2025-06-24 15:06Z" in screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
        new_end = lease.end_ts + 2 * DAY
        assert rows(store_path, "SELECT end_ts FROM leases") == [(new_end,)]
        assert set(rows(store_path, "SELECT end_ts FROM lease_slots")) == {(new_end,)}

    async def test_release_and_cancel_from_the_keyboard(
        self, lease_app, lease_store, fleet, store_path
    ):
        active = book(lease_store, fleet, "aurora-labs", 8)
        reserved = book(lease_store, fleet, "kestrel-ai", 8, start_ts=T0 + 2 * DAY)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_leases(pilot, app)
            await pilot.press("x")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(
                pilot, lambda: rows(store_path, "SELECT released_ts FROM leases WHERE id = ?",
                                    active.id) == [(T0,)]
            )  # fmt: skip
            await wait_until(pilot, lambda: [lease.id for lease in app.leases.board.listed] == [2])
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda: app.leases.board.listed == ())
        assert rows(store_path, "SELECT cancelled_ts FROM leases WHERE id = ?", reserved.id) == [
            (T0,)
        ]
        # released: booked until now; cancelled: an empty booking
        assert rows(store_path, "SELECT lease_id, max(end_ts - start_ts) FROM lease_slots"
                    " GROUP BY lease_id ORDER BY 1") == [(1, 0.0), (2, 0.0)]  # fmt: skip

    async def test_release_of_a_reservation_says_cancel(self, lease_app, lease_store, fleet):
        book(lease_store, fleet, "kestrel-ai", 8, start_ts=T0 + DAY)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_leases(pilot, app)
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, LeasesScreen)
            assert any("cancelled: c" in n.message for n in notices(app))


class TestViews:
    async def test_filters_by_state_and_tenant(self, lease_app, lease_store, fleet):
        book(lease_store, fleet, "aurora-labs", 8)
        book(lease_store, fleet, "kestrel-ai", 8, start_ts=T0 + DAY)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await open_leases(pilot, app)
            assert len(app.leases.board.listed) == 2
            await pilot.press("s")  # reserved only
            await wait_until(pilot, lambda: [le.id for le in app.leases.board.listed] == [2])
            await pilot.press("s")  # active only
            await wait_until(pilot, lambda: [le.id for le in app.leases.board.listed] == [1])
            app.run_command("leases kestrel-ai")
            await wait_until(pilot, lambda: app.leases.board.lease_filter.tenant == "kestrel-ai")
            assert app.leases.board.listed == ()  # kestrel-ai has no active lease
            app.run_command("leases all")
            await wait_until(pilot, lambda: len(app.leases.board.listed) == 1)

    async def test_host_view_lists_the_tenant_per_gpu(self, lease_app, lease_store, fleet):
        book(lease_store, fleet, "aurora-labs", 4)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.leases.board is not None)
            app.open_host("sg1-r01-n01")
            await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
            await wait_until(pilot, lambda: "aurora-labs · lease 1" in screen_text(app))
            text = screen_text(app)
            assert "GPU 0-3 aurora-labs · lease 1 · active until 06-22 15:06Z" in text
            assert "GPU 4-7 free now" in text

    async def test_fleet_cells_coloured_by_tenant(self, lease_app, lease_store, fleet):
        book(lease_store, fleet, "aurora-labs", 4)
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.leases.board is not None)
            await pilot.press("6")

            def host_line() -> str:
                lines = screen_text(app).splitlines()
                return next((t for t in lines if "sg1-r01-n01 " in t), "")

            await wait_until(pilot, lambda: " AL" in host_line())
            assert "metric tenant" in screen_text(app)
            assert host_line().count(" AL") == 4  # GPUs 0-3 held by aurora-labs
            assert host_line().count(" · ") == 4  # GPUs 4-7 free

    async def test_the_palette_opens_leases(self, lease_app):
        app = lease_app
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+p")
            await pilot.pause()
            await type_text(pilot, "Allocate GPUs")
            await wait_until(pilot, lambda: "book GPUs for a tenant" in screen_text(app))
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AllocateScreen))
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))

    async def test_without_a_store_the_screen_says_why(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("l")  # no store: the key is off
            await pilot.pause()
            assert isinstance(app.screen, FleetScreen)
            app.run_command("leases")
            await wait_until(pilot, lambda: "no lease store" in screen_text(app))
            assert isinstance(app.screen, LeasesScreen)
