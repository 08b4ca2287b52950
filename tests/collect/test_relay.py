"""Site relays on loopback: three relays, each polling its own simulated hosts over SSH,
under one console's Poller. Hosts behind a relay look polled directly; a killed relay
makes its hosts "relay down" (not their own fault) and leaves the other sites alone."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsconsole.cli import main
from opsconsole.collect.poller import Poller
from opsconsole.collect.relay import RELAY_DOWN, relay_routes, serve_relay
from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet, fleet_from_dict
from opsconsole.errors import ConfigError
from opsconsole.wire import Hello, Sample, decode_line
from tests.support.collect import FakeCommands, stream_samples
from tests.support.waiting import wait_for

SITES = ("T1", "T2", "T3")
HOSTS_PER_SITE = 2


def _fleet_dict(farm, members: dict[str, list], relays: dict[str, object], refused) -> dict:
    polling = {
        "interval_s": 0.2,
        "connect_jitter_s": 0.0,
        "stale_after_s": 2.0,
        "down_after_s": 5.0,
        "reconnect_backoff_min_s": 0.2,
        "reconnect_backoff_max_s": 1.0,
        "history_points": 10,
    }
    hosts = []
    for site in SITES:
        for entry in [*members[site], *([refused] if site == "T3" else [])]:
            hosts.append(_host(entry, site, "g8"))
        hosts.append({**_host(relays[site], site, "collector"), "mode": "relay"})
    return {
        "ssh": {
            "known_hosts": str(farm.keys.known_hosts_path),
            "identity_files": [str(farm.keys.client_key_path)],
            "use_ssh_config": False,
            "user": "tester",
            "connect_timeout_s": 3.0,
        },
        "polling": polling,
        "sites": [{"name": site, "relay": f"relay-{site.lower()}"} for site in SITES],
        "racks": [{"names": f"{site.lower()}-r01", "site": site} for site in SITES],
        "host_classes": {"g8": {"gpus": 2, "ib_ports": 1}, "collector": {"gpus": 0}},
        "hosts": hosts,
    }


def _host(entry, site: str, host_class: str) -> dict:
    return {
        "names": entry.name,
        "address": "127.0.0.1",
        "port": entry.port,
        "rack": f"{site.lower()}-r01",
        "class": host_class,
    }


@pytest.mark.slow
@pytest.mark.parametrize("relay_every", [2, 0], ids=["batched", "line-per-message"])
async def test_three_relays_under_one_console_and_one_killed(farm, tmp_path, relay_every):
    fleet_box: list[Fleet] = []
    relay_runs: dict[str, int] = {}

    def relay_handler(site: str):
        async def handler(process) -> None:
            relay_runs[site] = relay_runs.get(site, 0) + 1
            await serve_relay(
                fleet_box[0], site, process.stdout, requests=process.stdin, commands=FakeCommands()
            )

        return handler

    members = {
        site: [
            await farm.add(f"{site.lower()}-n{i}", stream_samples, in_fleet=False)
            for i in range(HOSTS_PER_SITE)
        ]
        for site in SITES
    }
    refused = await farm.add("t3-gone", None, in_fleet=False)  # nothing listens there
    relays = {
        site: await farm.add(f"relay-{site.lower()}", relay_handler(site), in_fleet=False)
        for site in SITES
    }
    config = _fleet_dict(farm, members, relays, refused)
    config.setdefault("polling", {})["relay_every"] = relay_every  # as an operator sets it
    fleet = fleet_from_dict(config, tmp_path / "opsconsole.toml")
    fleet_box.append(fleet)  # the relays read the same config, as a site would copy it
    assert sorted(relay_routes(fleet)["relay-t3"]) == ["t3-gone", "t3-n0", "t3-n1"]

    state = FleetState.from_fleet(fleet, now_ts=0.0)
    poller = Poller(fleet, state, commands=FakeCommands())
    assert poller.relay_every == relay_every  # [polling] relay_every reaches the poller
    await poller.start()
    try:
        polled = [h.name for site in SITES for h in members[site]]
        await wait_for(
            lambda: (
                all(state.hosts[n].status == "fresh" for n in polled)
                and all(state.hosts[f"relay-{s.lower()}"].status == "fresh" for s in SITES)
                and state.hosts["t3-gone"].status == "down"
            ),
            timeout_s=20,
        )
        # Polled by the relays, not by the console: only relay connections on its side.
        for name in polled:
            assert poller.sessions[name].connects == 0
            assert state.hosts[name].gpu_count == 2
            assert state.hosts[name].hello is not None
        assert all(len(h.connections) >= 1 for site in SITES for h in members[site])
        gone = state.hosts["t3-gone"]
        assert gone.reason == "refused" and "via relay relay-t3" in gone.detail

        # Kill relay T1: its server stops listening and its live connections drop.
        t1 = relays["T1"]
        t1.server.close()
        for conn in t1.live:
            conn.abort()
        t1_hosts = [h.name for h in members["T1"]]
        await wait_for(
            lambda: all(
                state.hosts[n].status == "down" and state.hosts[n].reason == RELAY_DOWN
                for n in t1_hosts
            ),
            timeout_s=15,
        )
        relay_row = state.hosts["relay-t1"]
        await wait_for(lambda: relay_row.status == "down")
        assert relay_row.reason in ("refused", "connection lost"), relay_row.reason
        # The other sites carry on: fresh samples keep arriving through their relays.
        before = {
            n: state.hosts[n].samples_received for s in ("T2", "T3") for n in _names(members[s])
        }
        await wait_for(lambda: all(state.hosts[n].samples_received > before[n] + 2 for n in before))
        assert all(state.hosts[n].status == "fresh" for n in before)
        # The killed relay stopped polling its hosts once the console's channel closed.
        await wait_for(lambda: all(h.channels_closed >= 1 for h in members["T1"]))
    finally:
        await poller.stop()


def _names(entries) -> list[str]:
    return [e.name for e in entries]


def test_config_refuses_a_relay_that_is_not_one(tmp_path):
    raw = {
        "sites": [{"name": "A", "relay": "a-n1"}],
        "racks": [{"names": "a-r1", "site": "A"}],
        "host_classes": {"g": {"gpus": 8}},
        "hosts": [{"names": "a-n[1-2]", "rack": "a-r1", "class": "g"}],
    }
    with pytest.raises(ConfigError, match=r'sites\[0\].relay: host "a-n1" needs mode = "relay"'):
        fleet_from_dict(raw, tmp_path / "c.toml")
    raw["sites"] = [{"name": "A"}]
    raw["hosts"].append({"names": "a-relay", "rack": "a-r1", "class": "g", "mode": "relay"})
    with pytest.raises(ConfigError, match="is the relay of no site"):
        fleet_from_dict(raw, tmp_path / "c.toml")


def test_relay_cli_names_an_unknown_site(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[[sites]]\nname = "A"\n')
    assert main(["poll", "--config", str(config), "--relay", "--site", "B"]) == 1
    assert "--site: unknown site 'B'" in capsys.readouterr().err
    assert main(["poll", "--config", str(config), "--relay"]) == 1
    assert "--relay needs --site" in capsys.readouterr().err


@pytest.mark.slow
def test_relay_command_serves_stdout_until_stdin_closes(tmp_path):
    """The command the console runs on a relay host: a hello and heartbeats on stdout,
    nothing else there, and a clean exit when the console closes the channel."""
    config = tmp_path / "c.toml"
    (tmp_path / "known_hosts").write_text("")
    config.write_text(
        '[ssh]\nknown_hosts = "known_hosts"\n'
        '[polling]\ninterval_s = 0.2\n[[sites]]\nname = "A"\n'
        '[[racks]]\nnames = "a-r1"\nsite = "A"\n'
    )
    command = [sys.executable, "-m", "opsconsole", "poll", "--relay", "--site", "A"]
    with subprocess.Popen(
        [*command, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            first = decode_line(process.stdout.readline())
            second = decode_line(process.stdout.readline())
            assert isinstance(first, Hello) and first.capabilities == ["relay"]
            assert isinstance(second, Sample) and second.gpu_count == 0
            process.stdin.close()
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.interop
def test_documented_remote_write_example_is_a_valid_prometheus_config():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian prometheus) is not installed")
    example = Path(__file__).parents[2] / "examples" / "site-history" / "prometheus.yml"
    checked = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


class _Sink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.extend(data.splitlines())

    async def drain(self) -> None:
        return None


async def test_a_relay_runs_its_poller_inside_the_given_runner(tmp_path):
    """Exporter plugins ride on the relay's poller (cli/relay.py wraps it in PluginPoller):
    the runner is started and stopped around the stream."""
    (tmp_path / "known_hosts").write_text("")
    raw = {
        "ssh": {"known_hosts": "known_hosts", "use_ssh_config": False},
        "polling": {"interval_s": 0.2},
        "sites": [{"name": "A"}],
        "racks": [{"names": "a-r1", "site": "A"}],
    }
    fleet = fleet_from_dict(raw, tmp_path / "c.toml")
    calls: list[str] = []

    class Runner:
        def __init__(self, poller) -> None:
            self.poller = poller

        async def start(self) -> None:
            calls.append("start")
            await self.poller.start()

        async def stop(self) -> None:
            calls.append("stop")
            await self.poller.stop()

    sink = _Sink()
    stop = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(serve_relay(fleet, "A", sink, stop, wrap=Runner))
    await wait_for(lambda: len(sink.lines) >= 3)  # hello, then heartbeats
    stop.set_result(None)
    await serving
    assert calls == ["start", "stop"]
    assert [decode_line(line).__class__.__name__ for line in sink.lines[:3]] == [
        "Hello",
        "Sample",
        "Sample",
    ]
