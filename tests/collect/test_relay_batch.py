"""Batched relays (`batch N`): a relay writes its site's news once per interval as one
line and forwards each host's sample every N intervals, at once when it carries events or
changed the host's status; the console reads batches and single lines alike, and a
batch naming a host not behind the relay is the relay's fault, not its hosts'."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from opsconsole.collect.relay import (
    RelayFeed,
    RelaySession,
    plan_sessions,
    relay_every,
    site_fleet,
)
from opsconsole.collect.session import HostSession, SessionContext
from opsconsole.collect.ssh import ConnectFailure
from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet, PollingSettings, fleet_from_dict
from opsconsole.wire import decode_line
from tests.support.collect import hello_line, sample_line

T0 = 1_767_225_600.0
HOSTS = ("n0", "n1", "n2")


def _fleet(tmp_path: Path) -> Fleet:
    hosts: list[dict[str, object]] = [
        {"names": n, "address": f"10.0.0.{i}", "rack": "r1", "class": "g2"}
        for i, n in enumerate(HOSTS)
    ]
    hosts.append({"names": "relay", "rack": "r1", "class": "none", "mode": "relay"})
    raw = {
        "sites": [{"name": "S", "relay": "relay"}],
        "racks": [{"names": "r1", "site": "S"}],
        "host_classes": {"g2": {"gpus": 2, "ib_ports": 1}, "none": {"gpus": 0}},
        "hosts": hosts,
    }
    return fleet_from_dict(raw, tmp_path / "c.toml")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _sessions(fleet: Fleet, clock: Clock) -> tuple[FleetState, dict[str, HostSession]]:
    state = FleetState.from_fleet(fleet, now_ts=clock.now)
    ctx = SessionContext(
        connector=None,  # type: ignore[arg-type]  # nothing connects here
        state=state,
        polling=fleet.config.polling,
        commands=None,  # type: ignore[arg-type]
        clock=clock,
        connect_slots=asyncio.Semaphore(1),
    )
    return state, plan_sessions(state, ctx, fleet)[0]


class Lines:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.extend(data.splitlines())

    async def drain(self) -> None:
        pass


class Site:
    """A relay's side (its hosts' sessions feeding a RelayFeed) and a console's side (a
    RelaySession reading what the feed wrote), on one clock."""

    def __init__(self, tmp_path: Path, *requests: bytes) -> None:
        fleet = _fleet(tmp_path)
        self.clock = Clock()
        self.relay_state, self.relay_hosts = _sessions(site_fleet(fleet, "S"), self.clock)
        self.out = Lines()
        self.feed = RelayFeed(self.out)
        for request in requests:
            self.feed.request(request)
        self.relay_state.add_listener(self.feed)
        self.state, sessions = _sessions(fleet, self.clock)
        relay = sessions["relay"]
        assert isinstance(relay, RelaySession)
        self.relay = relay
        for member in relay.members.values():
            member.new_channel()
        self.seq = 0
        for name in HOSTS:
            self.send(name, hello_line(hostname=name))

    def send(self, name: str, line: bytes) -> None:
        """A line from host `name` (its own GPU UUIDs) reaches the relay."""
        line = line.replace(b'"GPU-', b'"GPU-%s-' % name.encode())
        self.relay_hosts[name].apply(decode_line(line))

    def tick(self, **extra: dict[str, object]) -> list[bytes]:
        """One interval: every host samples (`extra` per host name), the relay flushes,
        the console reads what it wrote; returns those lines."""
        self.clock.now += 2.0
        self.seq += 1
        for name in HOSTS:
            self.send(name, sample_line(self.seq, self.clock.now, **extra.get(name, {})))
        self.feed.flush()
        lines, self.out.lines = self.out.lines, []
        for line in lines:
            assert self.relay._dispatch(line)
        return lines

    def received(self, name: str) -> int:
        return self.state.hosts[name].samples_received


def test_a_batched_relay_writes_one_line_per_interval_and_each_host_every_n(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n", b"batch 3\n")
    site.tick()  # a host's first sample turns it fresh: forwarded at once
    assert [site.received(n) for n in HOSTS] == [1, 1, 1]
    for _ in range(9):
        lines = site.tick()
        assert len(lines) == 1 and json.loads(lines[0])["type"] == "batch"
    # then each host's sample every third interval, spread over the three
    assert [site.received(n) for n in HOSTS] == [4, 4, 4]
    ticks = [site.state.hosts[n].last_sample_ts for n in HOSTS]
    assert len(set(ticks)) == 3
    for name in HOSTS:  # the latest sample is the one forwarded, values as sent
        console, relayed = site.state.hosts[name], site.relay_hosts[name].host_state
        assert console.hello is not None and console.hello.proto == 2
        assert console.status == "fresh"
        if console.last_sample_ts == site.clock.now:
            assert console.sample is not None and relayed.sample is not None
            assert console.sample.ib[0].counters == relayed.sample.ib[0].counters


def test_a_held_samples_events_are_forwarded_at_once_and_none_is_lost(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n", b"batch 5\n")
    site.tick()
    before = site.received("n1")
    event = {"kind": "xid", "code": 79, "ts": T0, "source": "kmsg", "gpu": 0}
    # n1's sample with the event is held in the relay's interval, then another comes
    site.clock.now += 1.0
    site.send("n1", sample_line(100, site.clock.now, events=[event]))
    site.tick()
    assert site.received("n1") == before + 1  # urgent: forwarded at this flush
    assert [e.code for e in site.state.hosts["n1"].events] == [79]


def test_a_disconnect_follows_the_sample_held_before_it(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n", b"batch 5\n")
    for _ in range(5):
        site.tick()
    site.clock.now += 2.0
    site.send("n0", sample_line(200, site.clock.now))
    site.relay_hosts["n0"].failed(ConnectFailure("connection lost", "reset"), connect=False)
    site.feed.flush()
    for line in site.out.lines:
        assert site.relay._dispatch(line)
    n0 = site.state.hosts["n0"]
    assert n0.reason == "connection lost" and "via relay relay" in n0.detail
    assert n0.sample is not None and n0.sample.seq == 200


def test_an_older_console_gets_one_line_per_message(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n")  # never asks for batches
    lines = site.tick()
    assert len(lines) == 2 * len(HOSTS)  # each host's v2 hello and full sample
    assert {json.loads(line)["type"] for line in lines} == {"host"}
    assert [site.received(n) for n in HOSTS] == [1, 1, 1]


def test_a_batch_naming_a_host_not_behind_the_relay_is_the_relays_fault(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n", b"batch 1\n")
    site.tick()
    fine = json.loads(site.tick()[0])["items"][0]
    stranger = dict(fine, host="elsewhere")
    site.relay._dispatch(json.dumps({"type": "batch", "items": [stranger]}).encode())
    relay_row = site.state.hosts["relay"]
    assert "'elsewhere', not one behind it" in relay_row.last_protocol_error
    assert all(site.state.hosts[n].protocol_errors == 0 for n in HOSTS)


def test_a_console_asks_no_more_than_its_stale_window_allows() -> None:
    polling = PollingSettings(interval_s=2.0, stale_after_s=10.0)
    assert relay_every(1, polling) == 1
    assert relay_every(10, polling) == 4  # 8 s between a host's samples: not stale at 10
    assert relay_every(0, polling) == 0  # an older console's behaviour: ask nothing
    assert relay_every(3, PollingSettings(interval_s=2.0, stale_after_s=3.0)) == 1


def test_a_host_whose_driver_stops_answering_is_forwarded_at_once(tmp_path: Path) -> None:
    site = Site(tmp_path, b"wire 2\n", b"batch 5\n")
    site.tick()
    before = site.received("n2")
    hung: dict[str, object] = {"driver": "unresponsive", "driver_detail": "nvidia-smi timed out"}
    site.tick(n2=hung)
    assert site.received("n2") == before + 1
    assert site.state.hosts["n2"].reason == "driver unresponsive"
