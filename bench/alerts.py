"""What the alert engine costs per evaluation interval on a large fleet: 1,000 hosts x 8
GPUs (18 NVLinks each) x 8 IB ports, every host fresh with a full sample, in four shapes:

* calm      - nothing firing;
* bad day   - ~20 conditions on ~20 hosts (hot GPUs, ECC, NVLink, IB, XIDs, a host down);
* storm     - a whole leaf (64 hosts) down;
* storm     - every GPU of 100 hosts hot (temperature + thermal clock events + rack power).

    .venv/bin/python bench/alerts.py [--runs 10]

Measured, each as the engine runs it:

1. `AlertEngine.evaluate(state, now)` (the poller's thread), steady state: the tracker has
   already seen every condition for its `for_s`, the lease context is loaded (its idle
   GPUs are looked up, but live utilisation is >= 30 % everywhere, so none fires).
2. `AlertEngine.record(conditions, now)` (the worker thread): `label_impact` +
   `apply_conditions` in one BEGIN IMMEDIATE transaction on a real WAL file holding 180
   days of resolved alerts; "steady" is the refresh path (every alert already open),
   "first firing" inserts every alert with its history and notifies it. The 30 s
   context refresh and the hourly prune are not due in these runs (measured in 3.).
3. `build_context`: the lease view (every 30 s) and lease view + idle query (every 5 min)
   with ~50 % of GPUs leased and 4 h of `gpu_minute` rollups, 5 % of leased GPUs idle,
   on the store as it runs (never ANALYZEd; at most FULL_CONTEXT_RUNS runs of the idle
   query, which is slow there), then once more after ANALYZE for comparison.

Log lines go to a NullHandler (the console's default without --log). Prints figures only;
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from opsconsole.alerts.engine import CONTEXT_EVERY_S, IDLE_EVERY_S, AlertEngine
from opsconsole.alerts.impact import build_context
from opsconsole.alerts.settings import alert_settings
from opsconsole.collect.reasons import TIMEOUT
from opsconsole.collect.state import FleetState
from opsconsole.config import fleet_from_dict
from opsconsole.counters import IB_ERROR_COUNTERS
from opsconsole.leases import create_tenant
from opsconsole.store import open_store
from opsconsole.store.inventory import sync_inventory
from opsconsole.store.transaction import write_transaction
from opsconsole.wire import GpuEvent, GpuSample, IbPort, NvLinks, Sample

NOW = 1_800_000_000.0  # a minute boundary
DAY = 86_400.0
HOUR = 3_600.0
HOSTS = 1000
GPUS = 8
NVLINKS = 18
IB_PORTS = 8
PER_RACK = 16
RACKS_PER_LEAF = 4  # 64 hosts a leaf
IDLE_HOURS = 4
IDLE_SHARE = 0.05
RESOLVED_ALERTS = 20_000  # ~110 a day kept for resolved_keep_days (180)
FULL_CONTEXT_RUNS = 3  # the idle query took 12 s here before its join order was fixed
FEED_STEPS = (-30.0, -20.0, -10.0, 0.0)  # samples fed before NOW: fills the 30 s IB rate window

IB_COUNTERS = (
    *IB_ERROR_COUNTERS,
    "port_xmit_data",
    "port_rcv_data",
    "port_xmit_packets",
    "port_rcv_packets",
    "port_xmit_wait",
)


def make_fleet(path: Path):
    racks = HOSTS // PER_RACK + (1 if HOSTS % PER_RACK else 0)
    rack_groups, host_groups = [], []
    for r in range(racks):
        rack_groups.append(
            {
                "names": f"r{r:03d}",
                "site": "SG1" if r < racks // 2 else "MY1",
                "leaf": f"leaf{r // RACKS_PER_LEAF:02d}",
                "power_budget_kw": 130.0,
                "host_overhead_w": 2000.0,
            }
        )
        first, last = r * PER_RACK, min(HOSTS, (r + 1) * PER_RACK) - 1
        host_groups.append(
            {"names": f"r{r:03d}-n[{first:04d}-{last:04d}]", "rack": f"r{r:03d}", "class": "h200"}
        )
    host_class = {"gpus": GPUS, "gpu_model": "H200", "ib_ports": IB_PORTS, "ib_rate_gbps": 400}
    return fleet_from_dict(
        {
            "sites": [{"name": "SG1"}, {"name": "MY1"}],
            "racks": rack_groups,
            "host_classes": {"h200": host_class},
            "hosts": host_groups,
        },
        path,
    )


# --- the store: leases, rollups, resolved alerts -----------------------------------


def seed_leases(db, names: list[str], tenants: list[str], rng: random.Random) -> int:
    """9,200 ended leases in non-overlapping 10-day bands per host, and the active set:
    300 whole nodes, 500 part-used nodes, 200 free (~52 % of GPUs leased)."""
    leases, slots = [], []

    def add(host: str, count: int, start: float, end: float) -> None:
        lease_id = len(leases) + 1
        kind = "nodes" if count == GPUS else "gpus"
        leases.append(
            (lease_id, rng.choice(tenants), start, end, count, kind, NOW - 100 * DAY, "seed")
        )
        slots.extend((lease_id, host, i, start, end) for i in range(count))

    for k in range(9200):
        start = NOW - (k // HOSTS + 1) * 10 * DAY
        count = GPUS if rng.random() < 0.5 else rng.randint(1, 4)
        add(names[k % HOSTS], count, start, start + rng.uniform(1, 9) * DAY)
    for h, name in enumerate(names):
        if h % 10 < 3:
            add(name, GPUS, NOW - DAY, NOW + 30 * DAY)
        elif h % 10 < 8:
            add(name, rng.randint(1, 6), NOW - DAY, NOW + 30 * DAY)
    with write_transaction(db, "seeding leases") as tx:
        tx.executemany(
            "INSERT INTO leases (id, tenant, start_ts, end_ts, gpu_count, request, created_ts,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            leases,
        )
        tx.executemany(
            "INSERT INTO lease_slots (lease_id, host, gpu_index, start_ts, end_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            slots,
        )
    return len(leases)


_ROLLUPS = """
WITH RECURSIVE
  m(ts) AS (SELECT :first UNION ALL SELECT ts + 60 FROM m WHERE ts + 60 < :now),
  g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < :gpus)
INSERT INTO gpu_minute
SELECT host, gpu_index, minute_ts, 30, 30, u * 0.8, u, min(100.0, u * 1.2),
       30, t - 1, t, t + 1, 30, p - 20, p, p + 20, 30, 60000.0, 61000.0,
       30, 0.0, 0.0
FROM (
  SELECT h.name AS host, g.i AS gpu_index, m.ts AS minute_ts,
         CASE WHEN q.host IS NULL
              THEN 40.0 + ((h.rowid * 131 + g.i * 17 + m.ts / 60 * 7) % 6000) / 100.0
              ELSE ((h.rowid * 13 + g.i * 7 + m.ts / 60) % 300) / 100.0 END AS u,
         45.0 + (h.rowid + g.i + m.ts / 60) % 25 AS t,
         350.0 + (h.rowid * 3 + g.i * 11 + m.ts / 60) % 250 AS p
  FROM hosts h CROSS JOIN g CROSS JOIN m
  LEFT JOIN quiet q ON q.host = h.name AND q.gpu_index = g.i
)
"""


def seed_rollups(db, names: list[str], rng: random.Random) -> tuple[int, int, int]:
    """IDLE_HOURS of minute rollups for every GPU, generated inside SQLite: leased GPUs
    busy (40-100 %) except IDLE_SHARE of them, unleased GPUs quiet (0-3 %)."""
    leased = set(
        db.conn.execute(
            "SELECT host, gpu_index FROM lease_slots WHERE start_ts <= ? AND end_ts > ?",
            (NOW, NOW),
        ).fetchall()
    )
    idle = {slot for slot in sorted(leased) if rng.random() < IDLE_SHARE}
    quiet = idle | {(h, g) for h in names for g in range(GPUS) if (h, g) not in leased}
    first = int(NOW - IDLE_HOURS * HOUR)
    with write_transaction(db, "seeding rollups") as tx:
        tx.execute(
            "CREATE TEMP TABLE quiet (host TEXT, gpu_index INTEGER, PRIMARY KEY (host, gpu_index))"
        )
        tx.executemany("INSERT INTO quiet VALUES (?, ?)", sorted(quiet))
        tx.execute(_ROLLUPS, {"first": first, "now": int(NOW), "gpus": GPUS})
        tx.execute("DROP TABLE temp.quiet")
    rows = db.conn.execute("SELECT count(*) FROM gpu_minute").fetchone()[0]
    return len(leased), len(idle), rows


def seed_resolved_alerts(db, names: list[str], rng: random.Random) -> int:
    """RESOLVED_ALERTS resolved condition alerts spread over 180 days, two history rows
    each: what `_resolve_cleared` and the fingerprint lookups run beside."""
    rules = ("gpu_temp_high", "ib_errors_rising", "host_down", "gpu_nvlink_down", "net_rtt_high")
    alerts, history = [], []
    for i in range(RESOLVED_ALERTS):
        fired = NOW - rng.uniform(1, 180) * DAY
        host = rng.choice(names)
        alerts.append(
            (i + 1, f"seed{i:020d}", rng.choice(rules), "condition", "warning",
             f'{{"host": "{host}"}}', f"{host}: resolved long ago", "resolved",
             fired, fired, fired + 600, fired + 600)
        )  # fmt: skip
        history.append((i + 1, fired, None, "firing", "seed"))
        history.append((i + 1, fired + 600, "firing", "resolved", "condition cleared"))
    with write_transaction(db, "seeding resolved alerts") as tx:
        tx.executemany(
            "INSERT INTO alerts (id, fingerprint, rule, kind, severity, labels, summary, state,"
            " first_fired_ts, fired_ts, last_seen_ts, resolved_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            alerts,
        )
        tx.executemany(
            "INSERT INTO alert_history (alert_id, ts, from_state, to_state, comment)"
            " VALUES (?, ?, ?, ?, ?)",
            history,
        )
    return len(alerts)


# --- the live state ------------------------------------------------------------------


def nvlinks(down: tuple[int, ...] = ()) -> NvLinks:
    return NvLinks(
        up=[link not in down for link in range(NVLINKS)],
        replay_errors=[0] * NVLINKS,
        recovery_errors=[0] * NVLINKS,
        crc_flit_errors=[0] * NVLINKS,
        crc_data_errors=[0] * NVLINKS,
    )


def gpu(h: int, i: int, **changes: object) -> GpuSample:
    """A busy, healthy H200 reading; `changes` override fields."""
    util = 30.0 + (h * 7 + i * 13) % 70
    fields: dict = {
        "uuid": f"GPU-{h:04d}-{i}",
        "util_gpu_pct": util,
        "util_mem_pct": util / 2,
        "mem_used_mib": 60_000.0 + (h + i) % 500,
        "mem_total_mib": 143_771.0,
        "temp_c": 45.0 + (h + i) % 30,
        "power_w": 350.0 + (h * 3 + i * 11) % 250,
        "power_limit_w": 700.0,
        "sm_clock_mhz": 1980.0,
        "mem_clock_mhz": 3201.0,
        "clock_event_reasons": 0,
        "ecc_volatile_corrected": 0,
        "ecc_volatile_uncorrected": 0,
        "ecc_aggregate_corrected": 3,
        "ecc_aggregate_uncorrected": 0,
        "remap_corrected": 0,
        "remap_uncorrected": 0,
        "remap_pending": False,
        "remap_failed": False,
        "retired_pages_sbe": 0,
        "retired_pages_dbe": 0,
        "retired_pages_pending": False,
        "pcie_replay": 0,
        "nvlink": nvlinks(),
    }
    return GpuSample(index=i, **(fields | changes))


def ib_ports(step: int, port_changes: dict[int, dict]) -> list[IbPort]:
    """8 ACTIVE 400 Gb/s ports; data counters grow, error counters stand still unless a
    port's changes say `rising` (errors added per step)."""
    ports = []
    for p in range(IB_PORTS):
        change = dict(port_changes.get(p, {}))
        rising = change.pop("rising", None)
        counters = {name: 0 for name in IB_COUNTERS}
        counters["symbol_error"] = 2
        counters["port_xmit_data"] = counters["port_rcv_data"] = 10**12 + step * 10**10
        counters["port_xmit_packets"] = counters["port_rcv_packets"] = 10**9 + step * 10**7
        counters["port_xmit_wait"] = 10**6 + step * 1000
        if rising:
            counters[rising] += 40 * (step + 1)  # 4 errors/s at 10 s steps
        fields: dict = {"state": "ACTIVE", "phys_state": "LinkUp", "rate_gbps": 400.0}
        ports.append(
            IbPort(
                device=f"mlx5_{p}", port=1, link_layer="InfiniBand", counters=counters,
                **(fields | change),
            )
        )  # fmt: skip
    return ports


class Shape:
    """Per-host departures from a healthy sample, and hosts down or stale."""

    def __init__(self) -> None:
        self.gpus: dict[int, dict[int, dict]] = {}  # host -> gpu -> field changes
        self.ports: dict[int, dict[int, dict]] = {}  # host -> port -> field changes
        self.sample: dict[int, dict] = {}  # host -> Sample field changes
        self.rtt_ms: dict[int, float] = {}
        self.lost_probes: dict[int, int] = {}
        self.down: set[int] = set()
        self.stale: set[int] = set()


def calm() -> Shape:
    return Shape()


def bad_day() -> Shape:
    s = Shape()
    s.gpus[10] = {3: {"temp_c": 88.0, "clock_event_reasons": 0x40}}
    s.gpus[11] = {5: {"temp_c": 87.0, "clock_event_reasons": 0x20}}
    s.gpus[12] = {0: {"ecc_volatile_uncorrected": 2, "remap_pending": True}}
    s.gpus[13] = {6: {"nvlink": nvlinks(down=(4, 5))}}
    s.gpus[25] = {4: {"clock_event_reasons": 0x4}}
    s.gpus[27] = {1: {"state": "lost", "temp_c": None, "power_w": None, "util_gpu_pct": None}}
    s.ports[14] = {3: {"state": "DOWN", "phys_state": "Polling", "rate_gbps": None}}
    s.ports[15] = {6: {"rate_gbps": 200.0}}
    s.ports[16] = {1: {"rising": "symbol_error"}}
    s.ports[17] = {2: {"rising": "port_rcv_errors"}}
    s.sample[18] = {"gpu_count": 7, "gpus": [gpu(18, i) for i in range(7)]}
    s.sample[19] = {"events": [xid(79, 2)]}
    s.sample[20] = {"events": [xid(13, 6)]}
    s.rtt_ms[21] = 80.0
    s.lost_probes[22] = 6
    s.down.add(23)
    s.stale.add(24)
    return s


def storm_leaf_down() -> Shape:
    s = Shape()
    s.down.update(range(PER_RACK * RACKS_PER_LEAF))
    return s


def storm_hot() -> Shape:
    s = Shape()
    for h in range(100):
        s.gpus[h] = {
            i: {"temp_c": 90.0 + i % 4, "clock_event_reasons": 0x60, "power_w": 700.0}
            for i in range(GPUS)
        }
    return s


def xid(code: int, gpu_index: int) -> GpuEvent:
    return GpuEvent(
        kind="xid", code=code, ts=NOW - 100, source="kmsg", gpu=gpu_index,
        pci_bus_id=f"00000000:{0x19 + gpu_index:02X}:00.0",
    )  # fmt: skip


def build_state(fleet, shape: Shape) -> FleetState:
    """Every host fed FEED_STEPS samples (stale ones stop early, down ones fail to
    connect afterwards) and 20 keepalive probes, then ticked at NOW."""
    state = FleetState.from_fleet(fleet, now_ts=NOW + FEED_STEPS[0] - 5)
    hosts = list(state.hosts.values())
    healthy = [[gpu(h, i) for i in range(GPUS)] for h in range(len(hosts))]
    for h, hs in enumerate(hosts):
        hs.mark_connected(NOW + FEED_STEPS[0] - 1)
        gpus = healthy[h]
        for i, changes in shape.gpus.get(h, {}).items():
            gpus = [*gpus[:i], gpu(h, i, **changes), *gpus[i + 1 :]]
        steps = FEED_STEPS[:2] if h in shape.stale else FEED_STEPS
        for step, offset in enumerate(steps):
            ts = NOW + offset
            fields: dict = {"gpu_count": GPUS, "gpus": gpus}
            fields["ib"] = ib_ports(step, shape.ports.get(h, {}))
            hs.apply_sample(Sample(seq=step + 1, ts=ts, **(fields | shape.sample.get(h, {}))), ts)
        lost = shape.lost_probes.get(h, 0)
        for probe in range(20):
            hs.record_rtt_probe(None if probe < lost else shape.rtt_ms.get(h, 1.5 + h % 5 / 10))
        if h in shape.down:
            hs.mark_connect_failed(TIMEOUT, "connect timed out after 10 s", NOW - 5)
    state.tick(NOW)
    return state


# --- timing --------------------------------------------------------------------------


def stats(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    return statistics.median(ms), ordered[min(len(ms) - 1, int(len(ms) * 0.95))], max(ms)


def line(label: str, count: object, ms: list[float], interval_s: float, every_s: float) -> float:
    """One row; returns the median's cost per interval (amortised when `every_s` is longer)."""
    median, p95, worst = stats(ms)
    per_interval = median * interval_s / max(every_s, interval_s)
    share = per_interval / (interval_s * 1000) * 100
    print(
        f"  {label:<24}{count!s:>6}   {median:8.1f} {p95:8.1f} {worst:8.1f}"
        f"   {share:6.2f} %" + (f"  (every {every_s:g} s)" if every_s > interval_s else "")
    )
    return per_interval


def time_context(db, settings, runs: int, idle_gpus=None) -> list[float]:
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        build_context(db, NOW, settings, idle_gpus=idle_gpus)
        ms.append((time.perf_counter() - t) * 1000)
    return ms


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'case':<24}{'n':>6}   {'median':>8} {'p95':>8} {'max':>8}   share of a core")


def rules_seen(conditions) -> str:
    counts = Counter(c.rule for c in conditions)
    return ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runs = max(1, args.runs)
    logging.getLogger().addHandler(logging.NullHandler())
    rng = random.Random(1)
    shapes = {
        "calm": calm(),
        "bad day": bad_day(),
        "storm: leaf down (64)": storm_leaf_down(),
        "storm: 100 hosts hot": storm_hot(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp) / "opsconsole.toml")
        names = [h.name for h in fleet.hosts]
        settings = alert_settings(fleet)
        path = Path(tmp) / "opsconsole.db"
        db = open_store(path)
        t0 = time.perf_counter()
        sync_inventory(db, fleet)
        tenants = [f"tenant{i:02d}" for i in range(20)]
        for name in tenants:
            create_tenant(db, name, gpu_quota=100_000, operator="bench", now_ts=NOW - 200 * DAY)
        leases = seed_leases(db, names, tenants, rng)
        leased, idle, minutes = seed_rollups(db, names, rng)
        resolved = seed_resolved_alerts(db, names, rng)
        seeded_max = resolved
        bookings = db.conn.execute("SELECT count(*) FROM lease_slots").fetchone()[0]
        print(
            f"fleet {len(names)} hosts x {GPUS} GPUs ({NVLINKS} NVLinks each), {IB_PORTS} IB"
            f" ports each, {len(fleet.racks)} racks of {PER_RACK}, leaves of"
            f" {PER_RACK * RACKS_PER_LEAF} hosts"
        )
        print(
            f"store {leases} leases / {bookings} bookings, {leased} GPUs leased now"
            f" ({100 * leased / (len(names) * GPUS):.0f} %), {idle} of them idle;"
            f" {minutes} gpu_minute rows ({IDLE_HOURS} h, every GPU); {resolved} resolved"
            f" alerts; seeded in {time.perf_counter() - t0:.1f} s"
        )

        recorder = AlertEngine(path, settings)
        interval_s = recorder.interval_s
        recorder.resume(NOW)  # loads the context (lease view + idle GPUs)
        recorder.record([], NOW)  # the hourly prune runs here, so not in the timed runs
        context = recorder.context
        assert context is not None

        t0 = time.perf_counter()
        states = {name: build_state(fleet, shape) for name, shape in shapes.items()}
        print(f"live states built in {time.perf_counter() - t0:.1f} s; {runs} runs per case")

        header(f"evaluate (poller thread), ms; share of one core at the {interval_s:g} s interval")
        conditions: dict[str, list] = {}
        evaluate_ms: dict[str, float] = {}
        for name, state in states.items():
            engine = AlertEngine(path, settings)
            engine.context = context
            engine.evaluate(state, NOW - 600)  # conditions pending...
            conditions[name] = engine.evaluate(state, NOW)  # ...and firing: steady state
            ms = []
            for i in range(runs):
                t = time.perf_counter()
                engine.evaluate(state, NOW + interval_s * (i + 1))
                ms.append((time.perf_counter() - t) * 1000)
            evaluate_ms[name] = line(name, len(conditions[name]), ms, interval_s, interval_s)
        for name, found in conditions.items():
            print(f"    {name}: {rules_seen(found) or 'nothing firing'}")

        def reset() -> None:
            with write_transaction(db, "resetting alerts") as tx:
                tx.execute("DELETE FROM alert_history WHERE alert_id > ?", (seeded_max,))
                tx.execute("DELETE FROM alerts WHERE id > ?", (seeded_max,))

        def time_record(found: list, before=None) -> list[float]:
            ms = []
            for _ in range(runs):
                if before is not None:
                    before()
                t = time.perf_counter()
                recorder.record(found, NOW)
                ms.append((time.perf_counter() - t) * 1000)
            return ms

        header("record, first firing (worker thread: label + insert + history + notify), ms")
        for name, found in conditions.items():
            line(name, len(found), time_record(found, reset), interval_s, interval_s)
        header("record, steady state (worker thread: label + refresh, all already open), ms")
        record_ms: dict[str, float] = {}
        for name, found in conditions.items():
            recorder.record(found, NOW)  # open them all first
            record_ms[name] = line(name, len(found), time_record(found), interval_s, interval_s)
        if recorder.last_error:
            print(f"  store error: {recorder.last_error}")

        header("build_context (worker thread), ms; amortised over its refresh period")
        ms_view = time_context(db, settings, runs, context.idle_gpus)
        full_runs = min(runs, FULL_CONTEXT_RUNS)
        ms_full = time_context(db, settings, full_runs)
        built = build_context(db, NOW, settings)
        slots = len(built.leases.slots) if built.leases else 0
        per_view = line("lease view", slots, ms_view, interval_s, CONTEXT_EVERY_S)
        label = f"+ idle query ({full_runs} runs)"
        line(label, len(built.idle_gpus), ms_full, interval_s, IDLE_EVERY_S)
        per_idle = (stats(ms_full)[0] - stats(ms_view)[0]) * interval_s / IDLE_EVERY_S
        context_ms = per_view + max(0.0, per_idle)
        t0 = time.perf_counter()
        db.conn.execute("ANALYZE")  # the store never runs it: for comparison only
        analyze_s = time.perf_counter() - t0
        ms_analyzed = time_context(db, settings, runs)
        line("+ idle query, ANALYZEd", len(built.idle_gpus), ms_analyzed, interval_s, IDLE_EVERY_S)
        print(
            f"    n: slots held now / idle leased GPUs found (seeded {idle}). The store never"
            f" runs ANALYZE;\n    the last row is after one ({analyze_s:.1f} s), for comparison"
            " only: it is not in the totals below."
        )

        print(
            f"\nper {interval_s:g} s interval, steady state, medians (context: lease view and"
            " idle query amortised, as the store runs)"
        )
        for name in shapes:
            evaluate, record = evaluate_ms[name], record_ms[name]
            total = evaluate + record + context_ms
            print(
                f"  {name:<24}evaluate {evaluate:6.1f} + record {record:5.1f} + context"
                f" {context_ms:5.1f} = {total:6.1f} ms   {total / (interval_s * 10):5.2f} %"
                " of one core"
            )
        recorder.close()
        db.close()


if __name__ == "__main__":
    main()
