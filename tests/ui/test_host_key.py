"""`K` on the host view: the changed-key dialog shows both fingerprints, will not trust
without a comment, writes the audit row and known_hosts, and read-only refuses it."""

from __future__ import annotations

import sqlite3

import asyncssh
import pytest

from opsconsole.collect.host_keys import KeyLedger, key_fingerprint, ledger_path_for
from opsconsole.config import Fleet
from opsconsole.leases import verify_audit
from opsconsole.ui.app import make_app
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.host_key import HostKeyScreen
from tests.support.ui import OPERATOR, SIZE, type_text, wait_until
from tests.ui.screen_text import screen_text


@pytest.fixture
def keyed(fleet, tmp_path):
    """The fleet with known_hosts in tmp_path, and a changed key waiting on its first host."""
    known = tmp_path / "known_hosts"
    host = fleet.hosts[0]
    old = asyncssh.generate_private_key("ssh-ed25519")
    new = asyncssh.generate_private_key("ssh-ed25519")
    known.write_text(f"[{host.address}]:{host.port} {old.export_public_key().decode()}")
    ssh = fleet.config.ssh.model_copy(update={"known_hosts": str(known)})
    keyed_fleet = Fleet(
        fleet.config.model_copy(update={"ssh": ssh}), tmp_path / "c.toml", fleet.hosts, fleet.racks
    )
    ledger = KeyLedger(ledger_path_for(known), known)
    ledger.note(host.name, host.address, host.port, new, [key_fingerprint(old)], 1.0)
    return keyed_fleet, host.name, key_fingerprint(old), key_fingerprint(new), known


async def open_dialog(pilot, app, name):
    app.open_host(name)
    await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
    await pilot.press("K")


@pytest.mark.slow
async def test_trust_key_from_the_host_view(keyed, state, clock, lease_store, store_path):
    fleet, name, old_fp, new_fp, known = keyed
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator=OPERATOR
    )
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, app, name)
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        text = screen_text(app)
        assert old_fp in text and new_fp in text
        await pilot.press("enter")  # no comment: refused in the dialog
        await wait_until(pilot, lambda: "comment is required" in screen_text(app))
        await type_text(pilot, "checked on the BMC console")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
    with sqlite3.connect(store_path) as conn:
        ((action, subject, after),) = conn.execute(
            "SELECT action, subject, after FROM audit_log WHERE subject LIKE 'host:%'"
        ).fetchall()
    assert (action, subject) == ("host.trust_key", f"host:{name}")
    assert "checked on the BMC console" in after and new_fp in after
    assert verify_audit(lease_store).ok
    ledger = KeyLedger(ledger_path_for(known), known)
    ledger.refresh()
    assert ledger.get(name) is None
    assert len(known.read_text().splitlines()) == 1


@pytest.mark.slow
async def test_read_only_console_refuses_to_trust_a_key(keyed, state, clock, lease_store):
    fleet, name, *_, known = keyed
    before = known.read_text()
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store,
        operator=OPERATOR, read_only=True,
    )  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await open_dialog(pilot, app, name)
        await wait_until(pilot, lambda: app.refusals == ["trust a changed host key"])
        assert not isinstance(app.screen, HostKeyScreen)
    assert known.read_text() == before
