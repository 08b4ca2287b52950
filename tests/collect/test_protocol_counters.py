"""IB / Ethernet counters on the wire: negative ones refused, names made fit for the
screen, and an interface the agent could read no counters from still a valid line."""

from __future__ import annotations

import json

import pytest

from opsconsole.wire import ProtocolError, decode_line
from opsconsole.wire import messages as protocol


def line_with(ib_counters=None, eth_counters=None) -> bytes:
    sample = {"type": "sample", "seq": 1, "ts": 100.0}
    if ib_counters is not None:
        sample["ib"] = [{"device": "mlx5_0", "port": 1, "counters": ib_counters}]
    if eth_counters is not None:
        sample["eth"] = [{"name": "eth0", "counters": eth_counters}]
    return json.dumps(sample).encode()


def test_ports_and_interfaces_without_counters_decode():
    sample = decode_line(line_with(ib_counters={}, eth_counters={}))
    assert sample.ib[0].counters == {} and sample.eth[0].counters == {}
    bare = (
        b'{"type":"sample","seq":1,"ts":1,"eth":[{"name":"eth0"}],"ib":[{"device":"d","port":1}]}'
    )
    assert decode_line(bare).eth[0].counters == {}


def test_names_are_cleaned_every_time_even_after_clean_ones_were_seen():
    clean = {"rx_errors": 1, "tx_errors": 2}
    for _ in range(3):
        assert decode_line(line_with(eth_counters=clean)).eth[0].counters == clean
        dirty = decode_line(line_with(eth_counters={"rx_\x1b[2Jerrors": 1, "x" * 80: 2}))
        assert dirty.eth[0].counters == {"rx_errors": 1, "x" * 64: 2}


def test_a_negative_counter_is_refused_whatever_its_names():
    decode_line(line_with(ib_counters={"symbol_error": 0, "link_downed": 1}))  # names known
    with pytest.raises(ProtocolError, match=r"ib\.mlx5_0/1\.link_downed: negative counter -1"):
        decode_line(line_with(ib_counters={"symbol_error": 0, "link_downed": -1}))


def test_the_cache_of_clean_name_sets_stays_bounded():
    for n in range(3 * protocol.MAX_CLEAN_NAME_SETS):
        decode_line(line_with(eth_counters={f"counter_{n}": n}))
        assert len(protocol._CLEAN_NAME_SETS) <= protocol.MAX_CLEAN_NAME_SETS
