"""Connecting: options built once, host keys always checked, failures classified into the
reasons an operator acts on, security failures not retried fast, one shared bastion."""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import asyncssh
import pytest

from opsconsole.collect.poller import Poller
from opsconsole.collect.ssh import (
    AUTH_REFUSED,
    HOST_KEY_CHANGED,
    HOST_KEY_UNKNOWN,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    SshConnector,
    classify_failure,
)
from opsconsole.collect.state import FleetState
from opsconsole.errors import CollectError
from tests.support.collect import FakeCommands, stream_samples
from tests.support.waiting import wait_for


def make_poller(fleet) -> tuple[Poller, FleetState]:
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    return Poller(fleet, state, commands=FakeCommands()), state


async def down_then_left_alone(
    poller: Poller, state: FleetState, reason: str, quiet_s: float
) -> None:
    """Run until h1 is down for `reason` (a wait with a deadline), then `quiet_s` more: the
    window in which retries at the configured minimum backoff would have shown."""
    hs = state.hosts["h1"]
    await poller.start()
    try:
        await wait_for(lambda: (hs.status, hs.reason) == ("down", reason), what=reason)
        await asyncio.sleep(quiet_s)
    finally:
        await poller.stop()


@pytest.mark.slow
async def test_host_key_changed_is_down_and_not_retried_fast(farm, keys):
    host = await farm.add("h1", stream_samples, host_key=keys.other_host_key)
    poller, state = make_poller(farm.fleet(reconnect_backoff_min_s=0.2, reconnect_backoff_max_s=60))
    await down_then_left_alone(poller, state, HOST_KEY_CHANGED, quiet_s=1.5)  # retries at 0.2 s
    hs = state.hosts["h1"]
    assert (hs.status, hs.reason) == ("down", HOST_KEY_CHANGED)
    assert len(host.connections) == 1  # no retry storm against a possibly hijacked address
    assert hs.samples_received == 0


async def test_unknown_host_key_is_refused_too(farm):
    await farm.add("h1", stream_samples, trusted=False)
    poller, _state = make_poller(farm.fleet())
    snapshot = await poller.poll_once(5.0)
    assert (snapshot["hosts"]["h1"]["status"], snapshot["hosts"]["h1"]["reason"]) == (
        "down",
        HOST_KEY_UNKNOWN,
    )


@pytest.mark.slow
async def test_auth_refused(farm):
    host = await farm.add("h1", stream_samples, authorized=False)
    poller, state = make_poller(farm.fleet(reconnect_backoff_min_s=0.1, reconnect_backoff_max_s=60))
    await down_then_left_alone(poller, state, AUTH_REFUSED, quiet_s=1.0)  # several retries at 0.1 s
    assert (state.hosts["h1"].status, state.hosts["h1"].reason) == ("down", AUTH_REFUSED)
    assert len(host.connections) == 1


async def test_connection_refused_is_retried_with_backoff(farm):
    await farm.add("h1", None)
    poller, state = make_poller(
        farm.fleet(reconnect_backoff_min_s=0.1, reconnect_backoff_max_s=0.4)
    )
    await poller.start()
    try:
        await wait_for(lambda: poller.sessions["h1"].failures >= 3)
    finally:
        await poller.stop()
    assert (state.hosts["h1"].status, state.hosts["h1"].reason) == ("down", REFUSED)


@pytest.mark.slow
async def test_silent_sshd_times_out(farm):
    await farm.add_blackhole("h1")
    poller, _state = make_poller(farm.fleet(ssh={"connect_timeout_s": 0.5}))
    snapshot = await poller.poll_once(5.0)
    assert snapshot["hosts"]["h1"]["reason"] == TIMEOUT


def test_classify_failures():
    assert classify_failure(OSError(errno.EHOSTUNREACH, "No route to host")).reason == UNREACHABLE
    assert classify_failure(socket.gaierror(-2, "Name or service not known")).reason == UNREACHABLE
    assert classify_failure(ConnectionRefusedError(111, "refused")).reason == REFUSED
    assert classify_failure(TimeoutError()).reason == TIMEOUT
    assert classify_failure(asyncssh.ChannelOpenError(2, "Connection refused")).reason == REFUSED
    assert classify_failure(asyncssh.PermissionDenied("no")).reason == AUTH_REFUSED
    both = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 22, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 22)"
    )
    assert classify_failure(both).reason == REFUSED


def test_connector_parses_known_hosts_once_and_refuses_to_guess(farm, keys, tmp_path):
    fleet = farm.fleet()
    connector = SshConnector(fleet.config.ssh, tmp_path)
    assert isinstance(connector.known_hosts, asyncssh.SSHKnownHosts)
    assert connector.options.known_hosts is connector.known_hosts
    assert connector.config_paths == []  # use_ssh_config = false: ~/.ssh/config stays out
    assert connector.options.agent_forward_path is None
    assert connector.options.keepalive_interval == 15.0

    missing = fleet.config.ssh.model_copy(update={"known_hosts": str(tmp_path / "nope")})
    with pytest.raises(CollectError, match="does not exist"):
        SshConnector(missing, tmp_path)

    insecure = fleet.config.ssh.model_copy(update={"accept_unknown_host_keys_insecure": True})
    assert SshConnector(insecure, tmp_path).options.known_hosts is None


async def test_insecure_opt_out_connects_to_unknown_host(farm):
    await farm.add("h1", stream_samples, trusted=False)
    poller, _state = make_poller(farm.fleet(ssh={"accept_unknown_host_keys_insecure": True}))
    snapshot = await poller.poll_once(5.0)
    assert snapshot["hosts"]["h1"]["status"] == "fresh"


async def test_ssh_config_is_evaluated_per_host(farm, tmp_path):
    """The user comes from a `Host` block matching this host, not from a host-less read."""
    users: list[str] = []

    class Recording(asyncssh.SSHServer):
        def begin_auth(self, username):
            users.append(username)
            return True

    host = await farm.add("h1", stream_samples, server_factory=Recording)
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host 127.0.0.1\n  User from-config\nHost *\n  User from-star\n")
    fleet = farm.fleet(
        ssh={"user": None, "use_ssh_config": True, "ssh_config_path": str(ssh_config)}
    )
    poller, _state = make_poller(fleet)
    snapshot = await poller.poll_once(5.0)
    assert snapshot["hosts"]["h1"]["status"] == "fresh"
    assert users == ["from-config"]
    assert host.connections


@pytest.mark.slow
async def test_one_bastion_connection_carries_every_host(farm, keys):
    forwarded: list[tuple[str, int]] = []

    class Bastion(asyncssh.SSHServer):
        def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
            forwarded.append((dest_host, dest_port))
            return True

    async def no_shell(process):
        await process.stdin.read()

    bastion = await farm.add("bastion", no_shell, server_factory=Bastion, in_fleet=False)
    await farm.add("h1", stream_samples)
    await farm.add("h2", stream_samples)
    fleet = farm.fleet(ssh={"proxy_jump": f"tester@127.0.0.1:{bastion.port}"})
    poller, state = make_poller(fleet)
    await poller.start()
    try:
        await wait_for(lambda: all(h.samples_received >= 2 for h in state.hosts.values()))
        assert len(bastion.connections) == 1
        assert sorted(port for _, port in forwarded) == sorted(h.port for h in farm.hosts)

        # The bastion drops: every host loses its channel, one new tunnel comes back.
        for conn in bastion.live:
            conn.close()
        seen = {name: h.samples_received for name, h in state.hosts.items()}
        await wait_for(
            lambda: all(h.samples_received > seen[n] + 2 for n, h in state.hosts.items())
        )
        assert len(bastion.connections) == 2
    finally:
        await poller.stop()


async def test_operator_reconnect_rereads_known_hosts_and_skips_backoff(farm, keys):
    # (A *changed* key needs `hosts trust-key`, audited: tests/collect/test_host_key_trust.py.)
    host = await farm.add("h1", stream_samples, trusted=False)
    poller, state = make_poller(farm.fleet(reconnect_backoff_max_s=60))
    await poller.start()
    try:
        await wait_for(lambda: state.hosts["h1"].reason == HOST_KEY_UNKNOWN)
        keys.trust(host.port)  # the operator verified the new host's key and added it
        poller.reconnect("h1")
        await wait_for(lambda: state.hosts["h1"].status == "fresh", timeout_s=5)
    finally:
        await poller.stop()
    assert len(host.connections) == 2
