"""What a host behind a site relay costs the console, against the same host polled directly.

    .venv/bin/python bench/relay.py [--hosts 200] [--ticks 20]

No network: the recorded fleet of bench/poll.py --replay (real agent samples, 8 GPUs,
~16 KB) is fed line by line to the console's own code paths, so the figure is the
console's decode-and-apply work per host-sample:

* direct  - what a HostSession does with each line from a host's channel: decode_line
            (strict msgspec decode, checks) then apply (live state, history, rates).
* relayed - what a RelaySession does with the relay's envelope line for the same sample:
            decode the envelope, decode_line the inner message, apply it to the host.

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
    parser.add_argument("--ticks", type=int, default=20)
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

    # direct
    direct = sessions()
    for name, hello, _, _ in recorded:
        direct[name].new_channel()
        direct[name].apply(decode_line(hello.strip()))
    started = time.process_time()
    for seq in range(args.ticks):
        for name, _, head, tail in recorded:
            direct[name].apply(decode_line(sample(head, tail, seq)))
    direct_ms = (time.process_time() - started) * 1000 / (args.ticks * len(recorded))

    # relayed
    relayed = sessions()
    relay = relayed["relay"]
    for member in relay.members.values():
        member.new_channel()

    def envelope(name, message):
        return b'{"type":"host","host":"%s","msg":%s}' % (name.encode(), message)

    for name, hello, _, _ in recorded:
        relay._dispatch(envelope(name, hello.strip()))
    started = time.process_time()
    for seq in range(args.ticks):
        for name, _, head, tail in recorded:
            relay._dispatch(envelope(name, sample(head, tail, seq)))
    relayed_ms = (time.process_time() - started) * 1000 / (args.ticks * len(recorded))
    fresh = sum(relayed[n].host_state.samples_received == args.ticks for n in names)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(recorded)} hosts x {args.ticks} samples; load {load}")
    print(f"direct : {direct_ms:.3f} ms console CPU per host-sample (decode + apply)")
    print(f"relayed: {relayed_ms:.3f} ms ({relayed_ms / direct_ms:.2f}x direct); {fresh} hosts fed")


if __name__ == "__main__":
    main()
