"""What a host behind a site relay costs the console, against the same host polled directly.

    .venv/bin/python bench/relay.py [--hosts 200] [--ticks 20]

No network: the recorded fleet of bench/poll.py --replay (real agent samples, 8 GPUs,
~16 KB in v1; the v2 cycle of a full sample and deltas) is fed line by line to the
console's own code paths, so the figure is the console's decode-and-apply work per
host-sample:

* direct v1 - what a HostSession does with each v1 line from a host's channel: strict
              msgspec decode and checks, then apply (live state, history, rates).
* direct v2 - the same for the lean wire: the channel decoder applies each v2 line.
* relayed   - what a RelaySession does with the relay's envelope line for the same v2
              sample: decode the envelope, the host's channel decoder, apply it.
* batched   - the same samples as one batch line per interval for all the hosts (a
              console that asks `batch N`); building the line is not counted.

SSH's own cost is not in either figure: direct polling pays it per host channel, a relay
once for all its hosts (see BENCHMARKS.md for the SSH figures). Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def fleet_for(names: list[str], tmp: Path):
    from opsconsole.config import fleet_from_dict

    hosts = [
        {"names": n, "address": f"h{i}", "rack": "r1", "class": "h8"} for i, n in enumerate(names)
    ]
    hosts.append({"names": "relay", "rack": "r1", "class": "none", "mode": "relay"})
    raw = {
        "sites": [{"name": "S", "relay": "relay"}],
        "racks": [{"names": "r1", "site": "S"}],
        "host_classes": {"h8": {"gpus": 8}, "none": {"gpus": 0}},
        "hosts": hosts,
    }
    return fleet_from_dict(raw, tmp / "bench.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=30)
    args = parser.parse_args()

    from opsconsole.cli import quiet_third_party_warnings

    quiet_third_party_warnings()
    from poll import record_fleet

    from opsconsole.collect.relay import plan_sessions
    from opsconsole.collect.session import SessionContext
    from opsconsole.collect.state import FleetState
    from opsconsole.wire import decode_line

    recorded = record_fleet(args.hosts, 2.0)
    names = [r[0] for r in recorded]
    fleet = fleet_for(names, Path("/tmp"))

    def sessions():
        state = FleetState.from_fleet(fleet, now_ts=time.time())
        ctx = SessionContext(
            connector=None, state=state, polling=fleet.config.polling, commands=None,
            clock=time.time, connect_slots=asyncio.Semaphore(1),
        )  # fmt: skip
        all_sessions, _ = plan_sessions(state, ctx, fleet)
        return all_sessions

    def sample(head, tail, seq):
        return b'%s"seq":%d,"ts":%.3f,%s' % (head, seq, time.time(), tail)

    def lean(cycle, seq):
        return (cycle[seq % len(cycle)] % (seq, time.time())).strip()

    def timed(feed) -> float:
        started = time.process_time()
        for seq in range(args.ticks):
            for record in recorded:
                feed(record, seq)
        return (time.process_time() - started) * 1000 / (args.ticks * len(recorded))

    # direct, v1 then v2
    direct = sessions()
    for name, hello, *_ in recorded:
        direct[name].new_channel()
        direct[name].apply(direct[name].decoder.decode(hello.strip()))
    v1_ms = timed(lambda r, seq: direct[r[0]].apply(decode_line(sample(r[2], r[3], seq))))
    direct = sessions()
    for name, _, _, _, hello2, _ in recorded:
        direct[name].new_channel()
        direct[name].apply(direct[name].decoder.decode(hello2.strip()))

    def direct_v2(record, seq):
        session = direct[record[0]]
        session.apply(session.decoder.decode(lean(record[5], seq)))

    direct_ms = timed(direct_v2)

    # relayed (v2 inside the relay's envelopes)
    relayed = sessions()
    relay = relayed["relay"]
    for member in relay.members.values():
        member.new_channel()

    def envelope(name, message):
        return b'{"type":"host","host":"%s","msg":%s}' % (name.encode(), message)

    for name, _, _, _, hello2, _ in recorded:
        relay._dispatch(envelope(name, hello2.strip()))
    relayed_ms = timed(lambda r, seq: relay._dispatch(envelope(r[0], lean(r[5], seq))))
    fresh = sum(relayed[n].host_state.samples_received == args.ticks for n in names)

    # batched: one line per interval for the whole site (`batch N`)
    batched = sessions()
    relay = batched["relay"]
    for member in relay.members.values():
        member.new_channel()
    relay._dispatch(
        b'{"type":"batch","items":[%s]}'
        % b",".join(envelope(name, hello2.strip()) for name, _, _, _, hello2, _ in recorded)
    )
    started = time.process_time()
    for seq in range(args.ticks):
        items = b",".join(envelope(r[0], lean(r[5], seq)) for r in recorded)
        relay._dispatch(b'{"type":"batch","items":[%s]}' % items)
    batch_ms = (time.process_time() - started) * 1000 / (args.ticks * len(recorded))
    fed = sum(batched[n].host_state.samples_received == args.ticks for n in names)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(recorded)} hosts x {args.ticks} samples; load {load}")
    print(f"direct v1: {v1_ms:.3f} ms console CPU per host-sample (decode + apply)")
    print(f"direct v2: {direct_ms:.3f} ms ({direct_ms / v1_ms:.2f}x v1)")
    print(f"relayed  : {relayed_ms:.3f} ms ({relayed_ms / direct_ms:.2f}x direct v2); {fresh} fed")
    print(f"batched  : {batch_ms:.3f} ms ({batch_ms / direct_ms:.2f}x direct v2); {fed} fed")


if __name__ == "__main__":
    main()
