"""The poller against real SSH sockets: bad lines refused and counted, silence aged to
stale then down, channels restarted with backoff, one host never holding up another,
clean shutdown, and the store fed from one thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from opsconsole.collect.poller import Poller
from opsconsole.collect.session import MAX_CONSECUTIVE_BAD_LINES
from opsconsole.collect.state import FleetState
from tests.support.collect import FakeCommands, hello_line, sample_dict, sample_line, stream_samples
from tests.support.waiting import wait_for


def make_poller(fleet, **kwargs) -> tuple[Poller, FleetState]:
    state = FleetState.from_fleet(fleet, now_ts=time.time())
    return Poller(fleet, state, commands=FakeCommands(), **kwargs), state


async def until_eof(process) -> None:
    await process.stdin.read()


async def test_bad_lines_are_refused_counted_and_shown(farm):
    async def hostile(process):
        process.stdout.write(hello_line())
        process.stdout.write(sample_line(0, time.time()))
        process.stdout.write(b"this is not json\n")
        process.stdout.write(b"{" + b'"x":' * 100_000 + b"1}\n")  # 400 KB: over the cap
        process.stdout.write(b'{"type":"error","ts":1,"message":"\xc3\x28"}\n')  # bad UTF-8
        process.stdout.write(sample_line(1, time.time()))  # never 5 bad in a row
        process.stdout.write(b'{"type":"sample","seq":1,"ts":NaN}\n')
        bad = sample_dict(1, time.time())
        bad["ib"][0]["counters"]["port_rcv_errors"] = -4
        process.stdout.write(json.dumps(bad).encode() + b"\n")
        process.stdout.write(sample_line(2, time.time()))
        process.stdout.write(b"\x1b]0;pwned\x07garbage again\n")
        await until_eof(process)

    await farm.add("h1", hostile)
    poller, state = make_poller(farm.fleet())
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.protocol_errors == 6)
    finally:
        await poller.stop()
    assert hs.samples_received == 3 and hs.sample.seq == 2
    assert hs.status == "fresh"
    assert hs.reason == "protocol error"  # the latest line was bad: shown as the reason
    assert "\x1b" not in hs.detail and "pwned" not in hs.detail
    assert poller.sessions["h1"].connects == 1  # never 5 in a row: no reconnect


async def test_a_run_of_bad_lines_restarts_the_channel(farm):
    async def broken(process):
        for _ in range(MAX_CONSECUTIVE_BAD_LINES + 2):
            process.stdout.write(b"Traceback (most recent call last):\n")
        await until_eof(process)

    host = await farm.add("h1", broken)
    poller, state = make_poller(farm.fleet(reconnect_backoff_min_s=0.1))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(
            lambda: (
                len(host.connections) >= 2
                and hs.reason == "protocol error"
                and "bad lines in a row" in hs.detail
            )
        )
    finally:
        await poller.stop()
    assert hs.samples_received == 0


@pytest.mark.slow
async def test_silent_host_goes_stale_then_down_and_shows_no_live_numbers(farm):
    connections = []

    async def falls_silent(process):
        connections.append(process)
        process.stdout.write(hello_line())
        if len(connections) == 1:  # the restarted agent says nothing at all
            process.stdout.write(sample_line(0, time.time()))
        await until_eof(process)

    await farm.add("h1", falls_silent)
    poller, state = make_poller(farm.fleet(stale_after_s=0.4, down_after_s=1.2))
    statuses: list[str] = []
    state.add_listener(lambda h, change: change == "status" and statuses.append(h.status))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.status == "stale")
        assert hs.gpus()[0].readings["temp_c"].state == "stale"
        await wait_for(lambda: hs.status == "down")
        temp = hs.gpus()[0].readings["temp_c"]
        assert (temp.state, temp.value, temp.last_value) == ("unreachable", None, 60.0)
    finally:
        await poller.stop()
    assert [s for s in statuses if s in ("fresh", "stale", "down")][:3] == [
        "fresh",
        "stale",
        "down",
    ]


@pytest.mark.slow
async def test_closed_channel_is_reopened_with_backoff(farm):
    async def exits_after_two(process):
        # Its configured name: a hello under another name would make the reason "identity"
        # whenever the poller stops between a reconnect's hello and the agent's exit.
        process.stdout.write(hello_line(hostname="h1"))
        process.stdout.write(sample_line(0, time.time()))
        process.stdout.write(sample_line(1, time.time()))
        process.stderr.write(b"agent: bye\n")

    host = await farm.add("h1", exits_after_two)
    poller, state = make_poller(
        farm.fleet(reconnect_backoff_min_s=0.4, reconnect_backoff_max_s=0.8)
    )
    hs = state.hosts["h1"]
    await poller.start()
    try:
        # Stopped only once the third session has ended too: a stop between a reconnect's
        # hello and the agent's exit would leave no reason to check.
        await wait_for(lambda: len(host.connections) >= 3 and hs.reason == "agent error")
    finally:
        await poller.stop()
    gaps = [b - a for a, b in zip(host.connections, host.connections[1:], strict=False)]
    assert all(gap >= 0.2 for gap in gaps), gaps  # equal jitter: at least half of 0.4 s
    assert hs.samples_received >= 4
    assert "exited with status 0" in hs.detail and "agent: bye" in hs.detail


@pytest.mark.slow
async def test_one_bad_host_does_not_delay_another(farm):
    """A flooding host, a hung sshd and a refusing port next to a good host: the good
    host's samples all arrive, in order, none skipped."""
    stop_flood = asyncio.Event()

    async def flood(process):
        junk = b"not json at all\n" * 3 + sample_line(0, time.time())
        while not stop_flood.is_set():
            process.stdout.write(junk * 50)
            await process.stdout.drain()

    await farm.add("flood", flood)
    await farm.add_blackhole("hung")
    await farm.add("refused", None)
    await farm.add("good", lambda p: stream_samples(p, interval_s=0.1))
    poller, state = make_poller(farm.fleet())
    seqs: list[int] = []
    state.add_listener(
        lambda h, change: (
            h.name == "good"
            and change in ("sample", "status")
            and h.sample is not None
            and seqs.append(h.sample.seq)
        )
    )
    await poller.start()
    try:
        await wait_for(lambda: len(seqs) >= 20, timeout_s=30)
    finally:
        stop_flood.set()
        await poller.stop()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    flood = state.hosts["flood"]
    assert flood.protocol_errors >= 5  # a run of refused lines, the channel restarted
    assert state.hosts["refused"].reason == "refused"


async def test_stop_closes_channels_so_agents_exit(farm):
    host = await farm.add("h1", stream_samples)
    poller, state = make_poller(farm.fleet())
    task = asyncio.create_task(poller.run())
    await wait_for(lambda: state.hosts["h1"].samples_received >= 2)
    await poller.stop()
    await asyncio.wait_for(task, 5)
    await wait_for(lambda: host.channels_closed == 1)


class FakeIngest:
    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args, **kwargs):
            self.calls.append((name, threading.get_ident()))
            return 0

        return record


async def test_store_is_fed_from_one_thread_and_flushed_on_stop(farm):
    async def with_event(process):
        event = {"kind": "xid", "code": 48, "ts": time.time(), "source": "nvml", "gpu": 0}
        process.stdout.write(hello_line())
        process.stdout.write(sample_line(0, time.time(), events=[event]))
        await stream_samples(process)

    await farm.add("h1", with_event)
    await farm.add("h2", None)
    ingest = FakeIngest()
    poller, state = make_poller(farm.fleet(), ingest=ingest)
    await poller.start()
    await wait_for(lambda: state.hosts["h1"].samples_received >= 3)
    await poller.stop()
    names = [name for name, _ in ingest.calls]
    threads = {thread for _, thread in ingest.calls}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert names[0] == "sync_inventory" and names[-1] == "flush"
    assert {"record_hello", "add_sample", "record_events", "record_host_event"} <= set(names)


@pytest.mark.slow
async def test_agentless_host_is_polled_on_ticks(farm):
    runs: list[str] = []

    async def nvidia_smi(process):
        runs.append(process.command)
        sample = sample_dict(0, 0.0)
        del sample["seq"], sample["ts"]
        process.stdout.write(json.dumps(sample).encode())

    await farm.add("h1", nvidia_smi, mode="agentless")
    poller, state = make_poller(farm.fleet(interval_s=0.2))
    await poller.start()
    try:
        hs = state.hosts["h1"]
        await wait_for(lambda: hs.samples_received >= 3)
    finally:
        await poller.stop()
    assert set(runs) == {"agentless"}
    assert hs.sample.seq >= 2 and hs.mode == "agentless"
    assert poller.sessions["h1"].connects == 1  # one connection, a command per tick
    assert round(hs.claimed_ts / 0.2, 6) == round(hs.claimed_ts / 0.2)  # on the tick grid


async def test_poll_once_reports_every_host_without_waiting_out_the_timeout(farm):
    await farm.add("good", stream_samples)
    await farm.add("refused", None)
    poller, _state = make_poller(farm.fleet())
    started = time.monotonic()
    snapshot = await poller.poll_once(20.0)
    assert time.monotonic() - started < 10
    json.dumps(snapshot)
    good, refused = snapshot["hosts"]["good"], snapshot["hosts"]["refused"]
    assert good["status"] == "fresh" and len(good["gpus"]) == 2
    assert good["gpus"][0]["readings"]["temp_c"] == {"state": "value", "value": 60.0}
    assert good["gpus"][0]["readings"]["fan_pct"] == {"state": "not_supported"}
    assert (refused["status"], refused["reason"]) == ("down", "refused")
    assert not poller.running
