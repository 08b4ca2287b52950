"""A changed host key: refused, remembered across restarts and other failures, alerted
with both fingerprints until an operator trusts (audited) or rejects it; only then does
the poller use the new key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import asyncssh
import pytest

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import evaluate
from opsconsole.cli import main
from opsconsole.collect.host_keys import key_fingerprint, ledger_path_for, replace_host_key
from opsconsole.collect.poller import Poller
from opsconsole.collect.snapshot import fleet_snapshot
from opsconsole.collect.ssh import HOST_KEY_CHANGED, TIMEOUT
from opsconsole.collect.state import FleetState
from opsconsole.leases import audit_entries, verify_audit
from opsconsole.store import open_store
from tests.support.collect import FakeCommands, stream_samples
from tests.support.waiting import wait_for

FAST = {"reconnect_backoff_min_s": 0.2, "reconnect_backoff_max_s": 1.0}


def write_config(farm, path: Path) -> Path:
    """The farm's fleet as a config file, for the CLI."""
    hosts = "".join(
        f"""
[[hosts]]
names = "{h.name}"
address = "127.0.0.1"
port = {h.port}
rack = "t1-r01"
class = "g2"
"""
        for h in farm.hosts
    )
    path.write_text(
        f"""
operator = "alice"
[ssh]
known_hosts = "{farm.keys.known_hosts_path}"
identity_files = ["{farm.keys.client_key_path}"]
use_ssh_config = false
user = "tester"
[[sites]]
name = "T1"
[[racks]]
names = "t1-r01"
site = "T1"
[host_classes.g2]
gpus = 2
{hosts}"""
    )
    return path


def make_poller(fleet) -> tuple[Poller, FleetState]:
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    return Poller(fleet, state, commands=FakeCommands()), state


def key_alerts(state: FleetState, tracker: PendingTracker | None = None):
    conditions = evaluate(state, time.time(), tracker or PendingTracker())
    return [c for c in conditions if c.rule == "host_key_changed"]


@pytest.fixture
async def changed(farm, keys):
    """h1 now offers `other_host_key`; known_hosts trusts `host_key`. h2 is healthy."""
    host = await farm.add("h1", stream_samples, host_key=keys.other_host_key)
    await farm.add("h2", stream_samples)
    return host


@pytest.mark.slow
async def test_changed_key_is_refused_remembered_and_alerted_with_both_fingerprints(
    farm, keys, changed
):
    poller, state = make_poller(farm.fleet(**FAST))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.key_change is not None and state.hosts["h2"].status == "fresh")
        old, new = key_fingerprint(keys.host_key), key_fingerprint(keys.other_host_key)
        assert (hs.status, hs.reason) == ("down", HOST_KEY_CHANGED)
        assert old in hs.detail and new in hs.detail
        (alert,) = key_alerts(state)
        assert alert.severity == "critical" and old in alert.summary and new in alert.summary
        assert "trust-key h1" in alert.summary
        shown = fleet_snapshot(state, time.time())["hosts"]["h1"]["host_key_change"]
        assert (shown["old_fingerprints"], shown["new_fingerprint"]) == ([old], new)
        # A man in the middle that now just drops connections: the alert stays.
        tracker = PendingTracker()
        key_alerts(state, tracker)
        hs.mark_connect_failed(TIMEOUT, "", time.time())
        assert key_alerts(state, tracker)
        assert hs.samples_received == 0
    finally:
        await poller.stop()
    assert key_alerts(state)  # nor does shutting down clear it
    ledger = json.loads(ledger_path_for(keys.known_hosts_path).read_text())
    assert ledger["changes"]["h1"]["new_fingerprint"] == new

    # A restarted poller knows at once, before any connection attempt succeeds or fails.
    poller, state = make_poller(farm.fleet(**FAST))
    changed.server.close()  # the intruder is gone: connections are now refused
    await poller.start()
    try:
        assert state.hosts["h1"].key_change is not None
        assert key_alerts(state)
    finally:
        await poller.stop()


@pytest.mark.slow
async def test_trust_key_is_audited_and_only_then_the_poller_connects(
    farm, keys, changed, tmp_path, capsys
):
    config = write_config(farm, tmp_path / "opsconsole.toml")
    poller, state = make_poller(farm.fleet(**FAST))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.key_change is not None)
        # Adding the key by hand does not let the poller use it: only an audited decision does.
        replace_host_key(
            keys.known_hosts_path,
            "127.0.0.1",
            changed.port,
            keys.other_host_key.export_public_key().decode().strip(),
        )
        poller.reconnect("h1")
        attempts = len(changed.connections)
        await wait_for(lambda: len(changed.connections) > attempts)
        # The poller refused the hand-added key on that attempt: it says so, with no sample.
        await wait_for(lambda: "not trusted by an operator yet" in hs.detail)
        assert hs.samples_received == 0 and hs.key_change is not None

        # Refused without a comment, and without --yes when not on a terminal.
        assert main(["hosts", "trust-key", "h1", "--config", str(config), "--yes"]) == 4
        assert "comment is required" in capsys.readouterr().err
        assert main(["hosts", "trust-key", "h1", "--config", str(config), "--comment", "x"]) == 4
        assert "--yes" in capsys.readouterr().err
        assert hs.key_change is not None

        assert main(["hosts", "keys", "--config", str(config)]) == 0
        assert key_fingerprint(keys.other_host_key) in capsys.readouterr().out
        assert main(["hosts", "list", "--config", str(config), "--json"]) == 0
        listed = {h["host"]: h for h in json.loads(capsys.readouterr().out)}
        assert listed["h1"]["offered_fingerprint"] == key_fingerprint(keys.other_host_key)
        assert listed["h2"]["trusted_fingerprints"] == [key_fingerprint(keys.host_key)]
        assert listed["h2"]["offered_fingerprint"] is None
        code = main(
            ["hosts", "trust-key", "h1", "--config", str(config), "--yes",
             "--comment", "re-imaged by DC ticket 4411, key read on the console"]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
        # The running poller picks the decision up from the files and connects at once.
        await wait_for(lambda: hs.status == "fresh" and hs.key_change is None)
        assert key_alerts(state) == []
    finally:
        await poller.stop()
    db = open_store(tmp_path / "opsconsole.db")
    (entry,) = audit_entries(db, subject="host:h1")
    assert entry["action"] == "host.trust_key" and entry["operator"] == "alice"
    assert "ticket 4411" in entry["after"]["comment"]
    assert entry["after"]["fingerprint"] == key_fingerprint(keys.other_host_key)
    assert entry["before"]["fingerprints"] == [key_fingerprint(keys.host_key)]
    assert verify_audit(db).ok
    db.close()
    lines = keys.known_hosts_path.read_text().splitlines()
    mine = [ln for ln in lines if ln.startswith(f"[127.0.0.1]:{changed.port} ")]
    assert len(mine) == 1 and keys.other_host_key.export_public_key().decode().split()[1] in mine[0]


@pytest.mark.slow
async def test_reject_key_keeps_the_known_key_and_clears_the_alert(farm, keys, changed, tmp_path):
    """The intruder leaves and the real host (old key) answers again: collection resumes
    with the known key, but the alert waits for an operator to say the change is over."""
    config = write_config(farm, tmp_path / "opsconsole.toml")
    poller, state = make_poller(farm.fleet(**FAST))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.key_change is not None)
        changed.server.close()
        await changed.server.wait_closed()
        real = await asyncssh.listen(
            "127.0.0.1",
            changed.port,
            server_host_keys=[keys.host_key],
            authorized_client_keys=keys.authorized,
            process_factory=stream_samples,
            encoding=None,
        )
        try:
            poller.reconnect("h1")
            await wait_for(lambda: hs.status == "fresh")
            assert key_alerts(state)  # still firing: nobody has looked at it yet
            before = keys.known_hosts_path.read_text()
            args = ["hosts", "reject-key", "h1", "--config", str(config), "--yes"]
            assert main([*args, "--comment", "not ours: the switch port was moved back"]) == 0
            await wait_for(lambda: hs.key_change is None)
            assert key_alerts(state) == []
            assert keys.known_hosts_path.read_text() == before
            assert main([*args, "--comment", "again"]) == 1  # nothing waits any more
        finally:
            real.close()
    finally:
        await poller.stop()


@pytest.mark.slow
async def test_a_host_that_accepts_tcp_but_never_speaks_ssh_says_so(farm):
    await farm.add_blackhole("mute")
    poller, state = make_poller(farm.fleet(ssh={"connect_timeout_s": 0.5}, **FAST))
    await poller.start()
    try:
        hs = state.hosts["mute"]
        await wait_for(lambda: hs.status == "down")
        assert (hs.reason, hs.detail) == (TIMEOUT, "TCP connected, no SSH banner in 0.5 s")
    finally:
        await poller.stop()


@pytest.mark.slow
async def test_the_recorded_alert_survives_other_failures_and_restarts(
    farm, keys, changed, tmp_path
):
    """Through the alert engine and its store: fired once, never resolved by a later
    timeout, a shutdown or a restart; resolved by the operator's decision."""
    from opsconsole.alerts.engine import AlertEngine
    from opsconsole.alerts.store import alert_history, list_alerts

    store = tmp_path / "opsconsole.db"
    config = write_config(farm, tmp_path / "opsconsole.toml")

    def key_alert(engine):
        return [a for a in engine.open_alerts() if a.rule == "host_key_changed"]

    poller, state = make_poller(farm.fleet(**FAST))
    engine = AlertEngine(store)
    engine.resume(time.time())
    await poller.start()
    try:
        await wait_for(lambda: state.hosts["h1"].key_change is not None)
        engine.step(state)
        (alert,) = key_alert(engine)
        changed.server.close()  # the man in the middle now only refuses connections
        await wait_for(lambda: state.hosts["h1"].reason != HOST_KEY_CHANGED)
        engine.step(state)
        assert [a.id for a in key_alert(engine)] == [alert.id]
    finally:
        await poller.stop()
    engine.step(state)
    engine.close()

    poller, state = make_poller(farm.fleet(**FAST))  # a restarted poll or console
    engine = AlertEngine(store)
    engine.resume(time.time())
    await poller.start()
    try:
        engine.step(state)
        assert [a.id for a in key_alert(engine)] == [alert.id]
        args = ["hosts", "reject-key", "h1", "--config", str(config), "--yes"]
        assert main([*args, "--comment", "intruder gone, port moved back"]) == 0
        await wait_for(lambda: state.hosts["h1"].key_change is None)
        engine.step(state)
        assert key_alert(engine) == []
        transitions = [row[2] for row in alert_history(engine._store(), alert.id)]
        assert transitions.count("resolved") == 1 and transitions[-1] == "resolved"
        assert list_alerts(engine._store(), include_resolved=True)
    finally:
        await poller.stop()
        engine.close()


@pytest.mark.slow
def test_hosts_keys_as_a_command(tmp_path, keys):
    """The command group end to end, in a process of its own (one smoke test)."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from opsconsole.collect.host_keys import KeyLedger

    farmish = SimpleNamespace(keys=keys, hosts=[SimpleNamespace(name="h1", port=2222)])
    config = write_config(farmish, tmp_path / "opsconsole.toml")
    ledger = KeyLedger(ledger_path_for(keys.known_hosts_path), keys.known_hosts_path)
    ledger.note("h1", "127.0.0.1", 2222, keys.other_host_key, ["SHA256:old"], 1.0)
    out = subprocess.run(
        [sys.executable, "-m", "opsconsole", "hosts", "keys", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)
    assert entry["host"] == "h1" and entry["old_fingerprints"] == ["SHA256:old"]
    assert entry["new_fingerprint"] == key_fingerprint(keys.other_host_key)


def test_a_key_refused_again_updates_last_seen_at_most_once_a_minute(tmp_path, keys):
    from opsconsole.collect.host_keys import KeyLedger

    ledger = KeyLedger(ledger_path_for(keys.known_hosts_path), keys.known_hosts_path)
    first = ledger.note("h1", "127.0.0.1", 22, keys.other_host_key, ["SHA256:old"], 100.0)
    assert ledger.note("h1", "127.0.0.1", 22, keys.other_host_key, [], 130.0) == first
    later = ledger.note("h1", "127.0.0.1", 22, keys.other_host_key, [], 170.0)
    assert (later.first_seen_ts, later.last_seen_ts, later.old_fingerprints) == (
        100.0,
        170.0,
        ("SHA256:old",),
    )
    reread = KeyLedger(ledger.path, keys.known_hosts_path)
    reread.refresh()
    assert reread.get("h1") == later
