"""`G` on the host view: the extra-GPU dialog shows the counts and UUIDs, will not accept
without a comment, writes the audit row and the GPU ledger, and read-only refuses it."""

from __future__ import annotations

import sqlite3

import pytest

from opsconsole.collect.gpu_ledger import ExtraGpus, GpuLedger
from opsconsole.config import Fleet
from opsconsole.leases import verify_audit
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.host_gpus import AcceptGpusScreen
from tests.support.ui import OPERATOR, SIZE, type_text, wait_until
from tests.ui.screen_text import screen_text


@pytest.fixture
def upgraded(fleet, tmp_path):
    """The fleet with its store in tmp_path and two extra GPUs noted on its first host."""
    moved = Fleet(fleet.config, tmp_path / "c.toml", fleet.hosts, fleet.racks)
    host = fleet.hosts[0]
    ledger = GpuLedger.for_fleet(moved)
    configured = host.expected_gpus
    uuids = ("GPU-EXTRA-A", "GPU-EXTRA-B")
    ledger.note(
        ExtraGpus(host.name, configured, configured, configured + 2, uuids, 1.0), host.name, 1.0
    )
    return moved, host.name, configured


async def open_dialog(pilot, app, name):
    app.open_host(name)
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
    await pilot.press("G")


@pytest.mark.slow
async def test_accept_gpus_from_the_host_view(upgraded, state, clock, lease_store, store_path):
    fleet, name, configured = upgraded
    assert fleet.store_path == store_path
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator=OPERATOR
    )
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, app, name)
        await wait_until(pilot, lambda: isinstance(app.screen, AcceptGpusScreen))
        text = screen_text(app)
        assert "GPU-EXTRA-A" in text and f"reports {configured + 2}" in text
        await pilot.press("enter")  # no comment: refused in the dialog
        await wait_until(pilot, lambda: "comment is required" in screen_text(app))
        await type_text(pilot, "chassis upgraded, ticket 42")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
    with sqlite3.connect(store_path) as conn:
        ((action, subject, after),) = conn.execute(
            "SELECT action, subject, after FROM audit_log WHERE subject LIKE 'host:%'"
        ).fetchall()
    assert (action, subject) == ("host.accept_gpus", f"host:{name}")
    assert "ticket 42" in after and "GPU-EXTRA-B" in after
    assert verify_audit(lease_store).ok
    ledger = GpuLedger.for_fleet(fleet)
    ledger.refresh()
    assert ledger.accepted_count(name) == configured + 2 and name not in ledger.pending


@pytest.mark.slow
async def test_read_only_console_refuses_to_accept_gpus(upgraded, state, clock, lease_store):
    fleet, name, _ = upgraded
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store,
        operator=OPERATOR, read_only=True,
    )  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, app, name)
        await wait_until(pilot, lambda: app.refusals == ["accept extra GPUs"])
        assert not isinstance(app.screen, AcceptGpusScreen)
    ledger = GpuLedger.for_fleet(fleet)
    ledger.refresh()
    assert ledger.accepted_count(name) is None and name in ledger.pending
