"""How much the store costs the poll loop: add_sample for one poll cycle of 1,000 hosts x
8 GPUs, and the flush of one minute of it (8,000 rollup rows) to a real SQLite file.

    .venv/bin/python bench/store_ingest.py [--hosts 1000] [--gpus 8] [--minutes 3]

Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from opsconsole.config import fleet_from_dict
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.wire import GpuSample, Sample

T0 = 1_750_000_020  # a minute boundary
INTERVAL_S = 2


def make_fleet(hosts: int, gpus: int, path: Path):
    per_rack = 20
    racks = (hosts + per_rack - 1) // per_rack
    groups = []
    for r in range(racks):
        first, last = r * per_rack + 1, min(hosts, (r + 1) * per_rack)
        groups.append(
            {"names": f"n[{first:04d}-{last:04d}]", "rack": f"r{r + 1:03d}", "class": "c"}
        )
    return fleet_from_dict(
        {
            "sites": [{"name": "SG1"}],
            "racks": [{"names": f"r[001-{racks:03d}]", "site": "SG1", "power_budget_kw": 48.0}],
            "host_classes": {"c": {"gpus": gpus}},
            "hosts": groups,
        },
        path,
    )


def cycle_samples(host_names: list[str], gpus: int, seq: int) -> list[Sample]:
    """One poll cycle: a sample per host, every reading present, some throttling."""
    ts = T0 + seq * INTERVAL_S
    return [
        Sample(
            seq=seq,
            ts=ts,
            gpus=[
                GpuSample(
                    index=i,
                    uuid=f"GPU-{h:04d}-{i}",
                    util_gpu_pct=float((seq * 7 + i * 13 + h) % 101),
                    util_mem_pct=35.0,
                    mem_used_mib=60_000.0 + (seq + i) % 500,
                    mem_total_mib=141_000.0,
                    temp_c=float(45 + (seq + i + h) % 35),
                    power_w=float(350 + (seq * 11 + i + h) % 350),
                    power_limit_w=700.0,
                    sm_clock_mhz=1980.0,
                    clock_event_reasons=0x4 if (seq + i + h) % 7 == 0 else 0,
                )
                for i in range(gpus)
            ],
        )
        for h in range(len(host_names))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--minutes", type=int, default=3)
    args = parser.parse_args()
    cycles_per_minute = 60 // INTERVAL_S

    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(args.hosts, args.gpus, Path(tmp) / "opsconsole.toml")
        names = [host.name for host in fleet.hosts]
        db = open_store(Path(tmp) / "bench.db")
        ingest = TelemetryIngest(db)
        ingest.sync_inventory(fleet)
        print(f"{args.hosts} hosts x {args.gpus} GPUs, {args.minutes} minute(s), 2 s interval")

        # Samples are built outside the timings; 30 distinct cycles reused per minute.
        cycles = [cycle_samples(names, args.gpus, seq) for seq in range(cycles_per_minute)]
        add_ms: list[float] = []
        flush_ms: list[float] = []
        rows_written: list[int] = []
        for minute in range(args.minutes):
            for c, samples in enumerate(cycles):
                shift = minute * 60
                for sample in samples:
                    sample.ts = T0 + shift + c * INTERVAL_S
                started = time.perf_counter()
                for name, sample in zip(names, samples, strict=True):
                    ingest.add_sample(name, sample)
                add_ms.append((time.perf_counter() - started) * 1000)
            # The minute just filled is finished; the next flush comes after its grace.
            now = T0 + (minute + 1) * 60 + ingest.late_grace_s
            started = time.perf_counter()
            rows_written.append(ingest.flush(now_ts=now, force=minute == args.minutes - 1))
            flush_ms.append((time.perf_counter() - started) * 1000)

        per_cycle = statistics.median(add_ms)
        print(
            f"add_sample: {per_cycle:.1f} ms per poll cycle (median of {len(add_ms)}, "
            f"max {max(add_ms):.1f}), {per_cycle * 1000 / args.hosts:.1f} us per host sample, "
            f"{per_cycle * 1e6 / (args.hosts * args.gpus):.0f} ns per GPU reading"
        )
        print(
            f"add_sample share of the poll interval: {per_cycle / (INTERVAL_S * 1000) * 100:.2f} %"
        )
        for minute, (ms, rows) in enumerate(zip(flush_ms, rows_written, strict=True)):
            per_row_us = ms * 1000 / rows
            print(
                f"flush minute {minute + 1}: {rows} rows in {ms:.1f} ms ({per_row_us:.1f} us/row)"
            )
        size_mib = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*")) / 2**20
        print(f"database + WAL after {args.minutes} minute(s): {size_mib:.1f} MiB")
        db.close()


if __name__ == "__main__":
    main()
