"""Protocol v2, the lean wire: the real agent's v2 lines decode to what its v1 lines say
(within the deadbands), a full sample comes every N and heals a lost line, v1 is still
read, the console asks and the agent, simulator and relay answer, and malformed v2 lines
are refused with one-line reasons that leave the channel's values untouched."""

from __future__ import annotations

import copy
import json
import time

import msgspec
import pytest

from opsconsole.agent.lean import DEADBANDS, FULL_EVERY, LeanEncoder
from opsconsole.agent.process import _Requests
from opsconsole.collect.poller import Poller
from opsconsole.collect.relay import RelayFeed
from opsconsole.collect.state import FleetState
from opsconsole.config import load_fleet
from opsconsole.sim.backend import make_agent
from opsconsole.sim.server import SimServer
from opsconsole.sim.world import SimFleet
from opsconsole.wire import ChannelDecoder, Hello, ProtocolError, Sample, decode_line
from tests.collect.test_state import make_host
from tests.support.collect import hello_line, sample_line
from tests.support.waiting import wait_for

T0 = 1_767_225_600.0


def encode(message: dict) -> bytes:
    return msgspec.json.encode(message)


class Pair:
    """The same simulated host read by two agents: one on v1, one asked for v2."""

    def __init__(self, seed: int = 1):
        fleet = SimFleet(1, seed, "calm", 8, start_ts=T0 - 100)
        self.host = next(iter(fleet.hosts.values()))
        self.now = T0
        self.v1 = make_agent(self.host, lambda: self.now, None, 2.0)
        self.v2 = make_agent(self.host, lambda: self.now, None, 2.0)
        self.v2.request_wire(2)

    def tick(self) -> tuple[list[dict], list[dict]]:
        self.now += 2.0
        self.host.advance(self.now)
        return self.v1.tick(), self.v2.tick()


def builtins(sample: Sample) -> dict:
    out = msgspec.to_builtins(sample)
    out.pop("collect_ms", None)
    for gpu in out.get("gpus", []):
        gpu.setdefault("state", "ok")
    return out


def assert_within_deadbands(lean: Sample, full: Sample) -> None:
    a, b = builtins(lean), builtins(full)
    gpus_a, gpus_b = a.pop("gpus"), b.pop("gpus")
    assert a == b
    assert len(gpus_a) == len(gpus_b)
    for ga, gb in zip(gpus_a, gpus_b, strict=True):
        for field in set(ga) | set(gb):
            if ga.get(field) != gb.get(field):
                assert field in DEADBANDS, (field, ga.get(field), gb.get(field))
                assert abs(ga[field] - gb[field]) < DEADBANDS[field]


def test_v2_decodes_to_the_v1_sample_within_deadbands_and_is_small():
    pair, decoder = Pair(), ChannelDecoder()
    sizes = []
    for tick in range(2 * FULL_EVERY + 2):
        v1, v2 = pair.tick()
        reference = decode_line(encode(v1[-1]))
        lines = [encode(m) for m in v2]
        decoded = [decoder.decode(line) for line in lines]
        if tick == 0:
            assert [type(m) for m in decoded] == [Hello, Sample]
            assert decoded[0].proto == 2 and decoded[0].wire is not None
            assert len(decoded[0].wire.gpus) == 8 and decoded[0].wire.nvlinks == [18] * 8
        sample = decoded[-1]
        full = "f" in v2[-1]
        assert full == (tick % FULL_EVERY == 0)
        if full:
            assert builtins(sample) == builtins(reference)  # a full sample is exact
        else:
            assert_within_deadbands(sample, reference)
            sizes.append(len(lines[-1]))
    assert decoder.full_samples == 3 and decoder.delta_samples == 2 * FULL_EVERY - 1
    assert max(sizes) <= 2048, max(sizes)  # 8 GPUs x 18 NVLinks x 8 IB ports: <= 2 KB
    assert len(encode(v1[-1])) > 8 * max(sizes)


def test_deadband_holds_small_moves_back_and_counters_go_on_any_change():
    encoder = LeanEncoder(full_every=100)
    gpu = {"index": 0, "state": "ok", "temp_c": 60.0, "power_w": 300.0, "pcie_replay": 5}
    sample = {"seq": 1, "ts": T0, "gpus": [gpu], "ib": [], "eth": []}
    changed, first = encoder.encode(sample)
    assert changed and "f" in first
    fields = encoder.schema["gpu_fields"]
    later = copy.deepcopy(sample)
    later["gpus"][0].update(temp_c=60.5, power_w=304.0, pcie_replay=6)
    changed, delta = encoder.encode(later)
    assert not changed
    assert delta["d"] == [[fields.index("pcie_replay"), 0, 6]]  # 0.5 °C, 4 W: held back
    later["gpus"][0].update(temp_c=61.0, power_w=306.0)  # 1 °C, 6 W from what was sent
    _, delta = encoder.encode(later)
    assert sorted(delta["d"]) == sorted(
        [[fields.index("temp_c"), 0, 61.0], [fields.index("power_w"), 0, 306.0]]
    )
    _, same = encoder.encode(later)
    assert "d" not in same and "f" not in same


def test_a_lost_line_heals_at_the_next_full_sample():
    pair, decoder = Pair(seed=2), ChannelDecoder()
    pair.host.inject("ib_port_down")  # a counter-and-state change mid-stream
    lost_at = 3
    healed = False
    for tick in range(FULL_EVERY + 1):
        v1, v2 = pair.tick()
        if tick == lost_at:
            continue  # this line never reached the console
        sample = [decoder.decode(encode(m)) for m in v2][-1]
        reference = decode_line(encode(v1[-1]))
        if tick == FULL_EVERY:
            assert builtins(sample) == builtins(reference)
            healed = True
    assert healed


def test_a_v1_agent_is_still_read_on_a_v2_channel():
    decoder = ChannelDecoder()
    hello = decoder.decode(hello_line())
    assert isinstance(hello, Hello) and hello.proto == 1 and decoder.plan is None
    sample = decoder.decode(sample_line(0, T0))
    assert isinstance(sample, Sample) and len(sample.gpus) == 2
    with pytest.raises(ProtocolError, match="v2 sample before a v2 hello"):
        decoder.decode(b'{"type":"s","seq":1,"ts":1.0,"d":[]}')


def test_the_agent_speaks_v1_until_the_console_asks():
    pair = Pair()
    v1, _ = pair.tick()
    assert [m["type"] for m in v1] == ["hello", "sample"] and v1[0]["proto"] == 1
    pair.v1.request_wire(7)  # a version it does not know: ignored
    assert [m["type"] for m in pair.tick()[0]] == ["sample"]
    pair.v1.request_wire(2)
    switched, _ = pair.tick()
    assert [m["type"] for m in switched] == ["hello", "s"] and switched[0]["proto"] == 2


def test_a_request_that_comes_before_the_agent_exists_is_kept():
    class Agent:
        wire = None

        def request_wire(self, version):
            self.wire = version

    early, late = _Requests(), _Requests()
    early(b"wire 2")
    early(b"nonsense here")
    agent = Agent()
    early.attach(agent)
    assert agent.wire == 2
    other = Agent()
    late.attach(other)
    late(b"wire 2")
    assert other.wire == 2


# --- malformed v2 ---------------------------------------------------------------------
def lean_channel() -> tuple[ChannelDecoder, dict, list[list]]:
    """A decoder that took a real agent's v2 hello and first full sample."""
    pair, decoder = Pair(), ChannelDecoder()
    _, v2 = pair.tick()
    for message in v2:
        decoder.decode(encode(message))
    return decoder, v2[0], v2[-1]["f"]


def test_malformed_v2_lines_are_refused_and_leave_the_values_alone():
    decoder, hello, full = lean_channel()
    before = builtins(decoder.decode(encode({"type": "s", "seq": 2, "ts": T0})))
    columns = len(full)
    fields = hello["wire"]["gpu_fields"]
    temp = fields.index("temp_c")
    uuid = fields.index("uuid")
    cases = [
        ({"d": [[columns, 0, 1]]}, f"unknown column {columns}"),
        ({"d": [["temp_c", 0, 1]]}, "unknown column"),
        ({"d": [[temp, 8, 50.0]]}, "position 8 outside 0..7"),
        ({"d": [[temp, 0]]}, "an index without a value"),
        ({"d": [[temp, 0, -1.0]]}, "not a non-negative finite number"),
        ({"d": [[temp, 0, "hot"]]}, "str where a number belongs"),
        ({"d": [[fields.index("pcie_replay"), 0, 1.5]]}, "not a non-negative integer"),
        ({"d": [[temp, 0, 50.0, 1, True]]}, "bool where a number belongs"),
        ({"f": full[:-1]}, f"{columns - 1} columns, the hello says {columns}"),
        ({"f": [full[0][:-1], *full[1:]]}, "7 values, the hello says 8"),
        ({"processes": [[8, []]]}, "processes: GPU row 8 of 8"),
        ({"na": [[9, {}]]}, "na: GPU row 9 of 8"),
    ]
    for seq, (body, reason) in enumerate(cases, start=3):
        line = encode({"type": "s", "seq": seq, "ts": T0, **body})
        with pytest.raises(ProtocolError, match=reason):
            decoder.decode(line)
    after = decoder.decode(encode({"type": "s", "seq": 99, "ts": T0}))
    assert builtins(after) | {"seq": 2} == before  # nothing of the refused lines was taken
    hostile = decoder.decode(
        encode({"type": "s", "seq": 100, "ts": T0, "d": [[uuid, 0, "GPU-\x1b[31mX\u202e"]]})
    )
    assert hostile.gpus[0].uuid == "GPU-X"


def test_a_delta_before_a_full_sample_is_refused():
    decoder, hello, _ = lean_channel()
    decoder.decode(encode(hello))  # a hello starts over: a full sample must come first
    with pytest.raises(ProtocolError, match="delta sample before a full one"):
        decoder.decode(encode({"type": "s", "seq": 5, "ts": T0, "d": []}))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"gpus": list(range(65)), "nvlinks": [0] * 65}, "65 GPU rows, at most 64"),
        ({"nvlinks": [65] * 8}, "a GPU with 65 NVLinks"),
        ({"nvlinks": [18] * 7}, "NVLink counts for 7 of 8 GPUs"),
        ({"gpu_fields": ["temp_c", "temp_c"]}, "GPU fields repeat a name"),
        ({"gpu_fields": ["index"]}, "not columns"),
        ({"ib_counters": []}, "IB ports, 0 name lists"),
        ({"ib_counters": [["c"] * 257] * 8}, "257 IB counters, at most 256"),
        ({"full_every": 0}, "full_every 0 outside"),
        ({"v": 3}, "wire schema version 3"),
    ],
)
def test_hostile_schemas_are_refused(change, reason):
    _, hello, _ = lean_channel()
    hello["wire"].update(change)
    with pytest.raises(ProtocolError, match=reason):
        ChannelDecoder().decode(encode(hello))


def test_a_schema_names_what_it_may_not_and_mismatched_versions_are_refused():
    _, hello, _ = lean_channel()
    no_schema = dict(hello, wire=None)
    with pytest.raises(ProtocolError, match="protocol 2 hello without a wire schema"):
        ChannelDecoder().decode(encode(no_schema))
    with pytest.raises(ProtocolError, match="protocol 1 hello with a wire schema"):
        ChannelDecoder().decode(encode(dict(hello, proto=1)))
    big = dict(hello)
    big["wire"] = dict(hello["wire"], eth=["x\x1b[2J"] * 2)
    decoded = ChannelDecoder().decode(encode(big))
    assert decoded.wire.eth == ["x", "x"]


# --- the relay and the whole chain ----------------------------------------------------
class Lines:
    def __init__(self):
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.extend(data.splitlines())

    async def drain(self) -> None:
        pass


def test_a_relay_forwards_v2_once_asked_and_the_console_reads_it():
    host = make_host()
    state = FleetState([host], now_ts=T0)
    hs = state.hosts[host.name]
    out = Lines()
    feed = RelayFeed(out)
    state.add_listener(feed)
    pair = Pair()

    def feed_tick(now):
        v1, _ = pair.tick()
        for message in v1:
            decoded = decode_line(encode(message))
            if isinstance(decoded, Hello):
                hs.apply_hello(decoded, now)
                state.changed(hs, "hello")
            else:
                hs.apply_sample(decoded, now)
                state.changed(hs, "sample")

    feed_tick(T0)
    assert [json.loads(x)["msg"]["type"] for x in out.lines] == ["hello", "sample"]
    feed.request(b"wire 2\n")
    out.lines.clear()
    decoder = ChannelDecoder()
    for tick in range(5):
        feed_tick(T0 + tick)
        for line in out.lines:
            envelope = json.loads(line)
            if envelope.get("type") != "host":
                continue
            message = decoder.decode(encode(envelope["msg"]))
            if isinstance(message, Sample):
                assert_within_deadbands(message, hs.sample)
        kinds = [json.loads(x)["msg"]["type"] for x in out.lines if b'"host"' in x]
        assert kinds == (["hello", "s"] if tick == 0 else ["s"])
        out.lines.clear()
    assert decoder.full_samples == 1 and decoder.delta_samples == 4


async def test_the_poller_and_the_simulator_agree_on_v2(tmp_path):
    async with SimServer(3, seed=4) as server:
        fleet = load_fleet(server.write_files(tmp_path, interval_s=0.2))
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        poller = Poller(fleet, state)
        await poller.start()
        try:
            sessions = poller.sessions.values()
            await wait_for(lambda: all(s.decoder.delta_samples >= 2 for s in sessions), 20.0)
        finally:
            await poller.stop()
    for hs in state.hosts.values():
        assert hs.hello is not None and hs.hello.proto == 2
        assert hs.status == "fresh" and len(hs.sample.gpus) == 8
        assert all(g.power_w is not None for g in hs.sample.gpus)


def test_a_relay_not_asked_forwards_a_v2_host_as_v1_for_an_older_console():
    host = make_host()
    state = FleetState([host], now_ts=T0)
    hs = state.hosts[host.name]
    out = Lines()
    state.add_listener(RelayFeed(out))
    pair, decoder = Pair(), ChannelDecoder()
    for message in pair.tick()[1]:  # the host speaks v2 to the relay
        decoded = decoder.decode(encode(message))
        if isinstance(decoded, Hello):
            hs.apply_hello(decoded, T0)
            state.changed(hs, "hello")
        else:
            hs.apply_sample(decoded, T0)
            state.changed(hs, "sample")
    forwarded = [json.loads(line)["msg"] for line in out.lines if b'"host"' in line]
    assert [m["type"] for m in forwarded] == ["hello", "sample"]
    assert forwarded[0]["proto"] == 1 and "wire" not in forwarded[0]
    for message in forwarded:  # what a console that knows only v1 reads
        decode_line(encode(message))


def test_a_refused_reading_the_host_leaves_unchanged_stays_refused():
    pair, decoder = Pair(), ChannelDecoder()
    hello, full = pair.tick()[1]
    power = hello["wire"]["gpu_fields"].index("power_w")
    full["f"][power][0] = 6000.0  # beyond any GPU's draw: refused by the bounds
    state = FleetState([make_host(pair.host.name, gpus=8)], now_ts=T0)
    hs = state.hosts[pair.host.name]
    hs.apply_hello(decoder.decode(encode(hello)), T0)
    hs.apply_sample(decoder.decode(encode(full)), T0)
    assert hs.reason == "invalid readings" and hs.sample.gpus[0].power_w is None
    for seq in range(2, 5):  # nothing changes: every row is the previous sample's
        sample = decoder.decode(encode({"type": "s", "seq": seq, "ts": T0 + seq}))
        hs.apply_sample(sample, T0 + seq)
        assert hs.reason == "invalid readings", seq
        assert "power_w" in hs.last_invalid and hs.sample.gpus[0].power_w is None
