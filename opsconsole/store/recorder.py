"""The flight recorder: every sample as it came, for replay after an incident.

Raw samples are kept per host per minute in a ring, `recorder_ring`, keyed by
`(slot, host)` where `slot = minute index % slots` and `slots = window / 60 s`: a new
minute overwrites the one a whole window older in the same place, so the table never
grows past `slots × hosts` rows and no deletion job has to keep up. A time range is a
range of slots (read by primary key); rows left from an earlier lap are told apart by
their `minute_ts`. A minute's samples are one body (msgpack of the decoded `Sample`s,
zlib): consecutive samples of a host differ little, so a minute compresses about five
times better than its samples one by one (measured: 330 vs 1,600 bytes per 8-GPU
sample). Hellos (inventory, every 10 minutes) go to `recorder_hellos`, pruned to the
same window.

Around every critical alert, `capture_incident` copies the host's minutes from
`margin_s` before to `margin_s` after its firing into `recorder_capture`, keyed by the
alert, which keeps them as long as the alert is kept (`prune_captures` drops the captures
of alerts retention has removed).

Replay decodes the same `Sample` the poller applied and applies it to a `FleetState`.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable

import msgspec
import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import StoreError
from opsconsole.store.transaction import write_transaction
from opsconsole.wire import Hello, Sample

MINUTE_S = 60
_ENCODER = msgspec.msgpack.Encoder()
_CHUNK = msgspec.msgpack.Decoder(list[Sample])
_HELLO = msgspec.msgpack.Decoder(Hello)
HOUR_S = 3600
EnergyRow = tuple[str, int, int, float, float, float, float]
"""(host, gpu_index, hour_ts, first_ts, first_mj, last_ts, last_mj) of `gpu_energy_hour`."""
Chunk = tuple[str, int, bytes]
"""(host, minute_ts, body) of one ring row."""
_ENERGY_UPSERT = (
    "INSERT INTO gpu_energy_hour (host, gpu_index, hour_ts, first_ts, first_mj, last_ts,"
    " last_mj) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, gpu_index, hour_ts) DO UPDATE"
    " SET first_mj = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_mj"
    " ELSE first_mj END, first_ts = min(first_ts, excluded.first_ts),"
    " last_mj = CASE WHEN excluded.last_ts > last_ts THEN excluded.last_mj ELSE last_mj END,"
    " last_ts = max(last_ts, excluded.last_ts)"
)
_RING_UPSERT = (
    "INSERT INTO recorder_ring (slot, host, minute_ts, body) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (slot, host) DO UPDATE SET minute_ts = excluded.minute_ts,"
    " body = excluded.body"
)


def _msgpack_array(items: list[bytes]) -> bytes:
    """A msgpack array of already-encoded items (the header, then the items)."""
    n = len(items)
    if n <= 15:
        header = bytes([0x90 | n])
    elif n <= 0xFFFF:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(items)


class _Minute:
    """One host-minute being recorded. Each sample is encoded and lightly compressed as it
    arrives: a decoded `Sample` is about 28 kB of Python objects (8 GPUs, IB ports), 1.6 kB
    this way, so a minute of 1,000 hosts buffers about 50 MB, not a gigabyte. The energy
    counter's first and last reading per GPU are kept beside."""

    __slots__ = ("energy", "minute_ts", "pieces")

    def __init__(self, minute_ts: int) -> None:
        self.minute_ts = minute_ts
        self.pieces: list[tuple[float, bytes]] = []
        self.energy: dict[int, list[float]] = {}

    def add(self, sample: Sample) -> None:
        ts = sample.ts
        self.pieces.append((ts, zlib.compress(_ENCODER.encode(sample), 1)))
        for gpu in sample.gpus:
            if gpu.energy_mj is None:
                continue
            row = self.energy.get(gpu.index)
            if row is None:
                self.energy[gpu.index] = [ts, gpu.energy_mj, ts, gpu.energy_mj]
            elif ts < row[0]:
                row[0], row[1] = ts, gpu.energy_mj
            elif ts >= row[2]:
                row[2], row[3] = ts, gpu.energy_mj

    def body(self, stored: bytes | None = None) -> bytes:
        """The minute's row body: one msgpack array of its samples by time, zlib 6 (whole
        minutes compress about five times better than single samples); `stored`, a piece
        of the same minute already written, merged in."""
        items = [(ts, zlib.decompress(piece)) for ts, piece in self.pieces]
        if stored is not None:
            items += [(old.ts, _ENCODER.encode(old)) for old in decode_chunk(stored)]
        items.sort(key=lambda item: item[0])
        return zlib.compress(_msgpack_array([raw for _ts, raw in items]), 6)

    def energy_rows(self, host: str) -> list[EnergyRow]:
        hour_ts = self.minute_ts // HOUR_S * HOUR_S
        return [(host, index, hour_ts, r[0], r[1], r[2], r[3]) for index, r in self.energy.items()]


def decode_chunk(body: bytes) -> list[Sample]:
    return _CHUNK.decode(zlib.decompress(body))


def decode_hello(body: bytes) -> Hello:
    return _HELLO.decode(zlib.decompress(body))


class FlightRecorder:
    """Buffers raw samples per host and minute and writes finished minutes inside the
    ingest's flush transaction (`write`), so recording adds no transaction of its own.
    Used from the ingest thread only, like `TelemetryIngest`."""

    def __init__(self, *, window_s: float = 86_400.0, late_grace_s: float = 10.0,
                 max_pending_minutes: int = 100_000,
                 energy_keep_s: float = 30 * 86_400.0) -> None:  # fmt: skip
        if window_s < MINUTE_S:
            raise StoreError("recorder: the raw window must be at least a minute")
        self.window_s = window_s
        self.slots = int(window_s // MINUTE_S)
        self.late_grace_s = late_grace_s
        self.max_pending_minutes = max_pending_minutes
        self.energy_keep_s = energy_keep_s
        self._energy_pruned_ts = float("-inf")
        self.dropped_minutes = 0
        """Host-minutes lost because the store stayed unwritable past the bound."""
        self._open: dict[str, _Minute] = {}
        self._done: list[tuple[str, _Minute]] = []
        self._written: dict[str, int] = {}
        self._hellos: list[tuple[str, float, bytes]] = []

    def slot(self, minute_ts: int) -> int:
        return (minute_ts // MINUTE_S) % self.slots

    def add_sample(self, host: str, sample: Sample) -> None:
        minute_ts = int(sample.ts // MINUTE_S) * MINUTE_S
        current = self._open.get(host)
        if current is None or current.minute_ts != minute_ts:
            if current is not None:
                self._done.append((host, current))
            current = self._open[host] = _Minute(minute_ts)
        current.add(sample)

    def add_hello(self, host: str, hello: Hello) -> None:
        self._hellos.append((host, hello.ts, zlib.compress(_ENCODER.encode(hello), 6)))

    @property
    def pending(self) -> int:
        return len(self._done) + len(self._open) + len(self._hellos)

    def write(self, tx: sqlite3.Connection, now_ts: float, *, force: bool = False) -> int:
        """Write finished minutes (all with `force`) in the caller's transaction; they
        leave memory only by `written` once it committed. A ring laid out for another
        window (the config changed) is emptied first. A minute written in two pieces
        (shutdown, a late sample) is merged with the stored piece."""
        for host, minute in list(self._open.items()):
            if force or minute.minute_ts + MINUTE_S + self.late_grace_s <= now_ts:
                self._done.append((host, minute))
                del self._open[host]
        excess = len(self._done) - self.max_pending_minutes
        if excess > 0:
            del self._done[:excess]
            self.dropped_minutes += excess
        geometry = tx.execute("SELECT slot_s, slots FROM recorder_meta WHERE one = 1").fetchone()
        if geometry != (float(MINUTE_S), self.slots):
            tx.execute("DELETE FROM recorder_ring")
            tx.execute(
                "INSERT OR REPLACE INTO recorder_meta (one, slot_s, slots) VALUES (1, ?, ?)",
                (float(MINUTE_S), self.slots),
            )
        rows: list[tuple[int, str, int, bytes]] = []
        energy: list[EnergyRow] = []
        for host, minute in self._done:
            minute_ts = minute.minute_ts
            energy += minute.energy_rows(host)
            stored = None
            if self._written.get(host, -1) >= minute_ts:
                stored = tx.execute(
                    "SELECT body FROM recorder_ring WHERE slot = ? AND host = ? AND minute_ts = ?",
                    (self.slot(minute_ts), host, minute_ts),
                ).fetchone()
            body = minute.body(stored[0] if stored is not None else None)
            rows.append((self.slot(minute_ts), host, minute_ts, body))
        tx.executemany(_RING_UPSERT, rows)
        tx.executemany(_ENERGY_UPSERT, energy)
        if now_ts - self._energy_pruned_ts >= HOUR_S:
            tx.execute(
                "DELETE FROM gpu_energy_hour WHERE hour_ts < ?", (now_ts - self.energy_keep_s,)
            )
            self._energy_pruned_ts = now_ts
        tx.executemany(
            "INSERT OR REPLACE INTO recorder_hellos (host, ts, body) VALUES (?, ?, ?)",
            self._hellos,
        )
        if self._hellos:
            tx.execute("DELETE FROM recorder_hellos WHERE ts < ?", (now_ts - self.window_s,))
        return len(rows)

    def written(self) -> None:
        for host, minute in self._done:
            self._written[host] = max(self._written.get(host, -1), minute.minute_ts)
        self._done, self._hellos = [], []


def ring_geometry(db: sqlite_utils.Database) -> tuple[float, int] | None:
    """(slot_s, slots) the ring was written with; None before the first write."""
    row = db.conn.execute("SELECT slot_s, slots FROM recorder_meta WHERE one = 1").fetchone()
    return None if row is None else (row[0], row[1])


def _chunks(
    db: sqlite_utils.Database, since_ts: float, until_ts: float, hosts: Iterable[str] | None
) -> list[Chunk]:
    """(host, minute_ts, body) of the ring's minutes overlapping [since, until)."""
    geometry = ring_geometry(db)
    if until_ts <= since_ts or geometry is None:
        return []
    _slot_s, slots = geometry
    first = int(since_ts // MINUTE_S) * MINUTE_S
    last = int((until_ts - 1e-9) // MINUTE_S) * MINUTE_S
    if (last - first) // MINUTE_S + 1 >= slots:
        ranges = [(0, slots - 1)]
    else:
        a, b = (first // MINUTE_S) % slots, (last // MINUTE_S) % slots
        ranges = [(a, b)] if a <= b else [(a, slots - 1), (0, b)]
    wanted = None if hosts is None else set(hosts)
    out: list[Chunk] = []
    for low, high in ranges:
        for host, minute_ts, body in db.conn.execute(
            "SELECT host, minute_ts, body FROM recorder_ring WHERE slot BETWEEN ? AND ?"
            " AND minute_ts >= ? AND minute_ts <= ?",
            (low, high, first, last),
        ):
            if wanted is None or host in wanted:
                out.append((host, minute_ts, body))
    return out


def _samples(chunks: Iterable[Chunk], since_ts: float, until_ts: float) -> list[tuple[str, Sample]]:
    out = [
        (host, sample)
        for host, _minute, body in chunks
        for sample in decode_chunk(body)
        if since_ts <= sample.ts < until_ts
    ]
    out.sort(key=lambda row: row[1].ts)
    return out


def ring_samples(
    db: sqlite_utils.Database,
    since_ts: float,
    until_ts: float,
    *,
    hosts: Iterable[str] | None = None,
) -> list[tuple[str, Sample]]:
    """(host, sample) with since <= ts < until, oldest first."""
    return _samples(_chunks(db, since_ts, until_ts, hosts), since_ts, until_ts)


def ring_span(db: sqlite_utils.Database) -> tuple[float, float] | None:
    """(oldest, newest) sample time still in the ring; None when it is empty."""
    low, high = db.conn.execute(
        "SELECT min(minute_ts), max(minute_ts) FROM recorder_ring"
    ).fetchone()
    return None if low is None else (float(low), float(high + MINUTE_S))


def hellos_before(db: sqlite_utils.Database, ts: float) -> dict[str, Hello]:
    """Each host's newest recorded hello at or before `ts`."""
    out: dict[str, Hello] = {}
    for host, body in db.conn.execute(
        "SELECT host, body FROM recorder_hellos h WHERE ts = (SELECT max(ts) FROM"
        " recorder_hellos WHERE host = h.host AND ts <= ?)",
        (ts,),
    ):
        out[host] = decode_hello(body)
    return out


def capture_incident(
    db: sqlite_utils.Database, alert_id: int, host: str, fired_ts: float, *, margin_s: float
) -> int:
    """Copy the host's minutes overlapping [fired - margin, fired + margin] to the capture
    of `alert_id`; idempotent. Returns the minutes copied."""
    chunks = _chunks(db, fired_ts - margin_s, fired_ts + margin_s + 1e-6, [host])
    with write_transaction(db, f"capturing alert {alert_id}") as tx:
        tx.executemany(
            "INSERT OR REPLACE INTO recorder_capture (alert_id, host, minute_ts, body)"
            " VALUES (?, ?, ?, ?)",
            [(alert_id, h, minute_ts, body) for h, minute_ts, body in chunks],
        )
    return len(chunks)


def captured_alerts(db: sqlite_utils.Database) -> set[int]:
    return {a for (a,) in db.conn.execute("SELECT DISTINCT alert_id FROM recorder_capture")}


def capture_samples(
    db: sqlite_utils.Database, since_ts: float, until_ts: float
) -> list[tuple[str, Sample]]:
    """Captured (host, sample) with since <= ts < until, oldest first; a minute held by
    two alerts' captures counts once."""
    first = int(since_ts // MINUTE_S) * MINUTE_S
    chunks = db.conn.execute(
        "SELECT host, minute_ts, max(body) FROM recorder_capture WHERE minute_ts >= ?"
        " AND minute_ts < ? GROUP BY host, minute_ts",
        (first, until_ts),
    ).fetchall()
    return _samples(chunks, since_ts, until_ts)


def prune_captures(db: sqlite_utils.Database, kept_alert_ids: set[int]) -> int:
    """Drop the captures of alerts that are no longer kept."""
    gone = sorted(captured_alerts(db) - kept_alert_ids)
    if not gone:
        return 0
    with write_transaction(db, "pruning incident captures") as tx:
        return tx.execute(
            "DELETE FROM recorder_capture WHERE alert_id IN (SELECT value FROM json_each(?))",
            (json.dumps(gone),),
        ).rowcount


def recorder_for(fleet: Fleet) -> FlightRecorder | None:
    """The recorder the fleet's `[store]` settings ask for (None when `raw_window_h` is 0)."""
    window_h = fleet.config.store.raw_window_h
    if window_h <= 0:
        return None
    return FlightRecorder(
        window_s=max(MINUTE_S, window_h * 3600),
        energy_keep_s=fleet.config.store.rollup_retention_days * 86_400.0,
    )


def capture_covers(db: sqlite_utils.Database, ts: float) -> bool:
    """Whether some incident capture holds the minute `ts` falls in."""
    minute_ts = int(ts // MINUTE_S) * MINUTE_S
    row = db.conn.execute(
        "SELECT 1 FROM recorder_capture WHERE minute_ts = ? LIMIT 1", (minute_ts,)
    ).fetchone()
    return row is not None


def measured_energy(
    db: sqlite_utils.Database, host: str, gpu_index: int, since_ts: float, until_ts: float
) -> dict[str, float]:
    """Energy from NVML's counter over [since, until): `joules` and `covered_s`, the time
    the counter's readings span inside the window. Within an hour's row, and across the
    gap to the next row when it is under 10 minutes, the counter's rise is exact; at the
    window's edges it is prorated by time. A counter that went backwards (driver reload)
    counts nothing for that stretch. The hours either side of the window are read too: the
    stretch from one hour's last reading to the next's first may cross the window's edge."""
    rows = db.conn.execute(
        "SELECT first_ts, first_mj, last_ts, last_mj FROM gpu_energy_hour WHERE host = ?"
        " AND gpu_index = ? AND hour_ts >= ? AND hour_ts < ? ORDER BY hour_ts",
        (host, gpu_index, int(since_ts // HOUR_S) * HOUR_S - HOUR_S, until_ts + HOUR_S),
    ).fetchall()
    stretches = []
    for i, (first_ts, first_mj, last_ts, last_mj) in enumerate(rows):
        stretches.append((first_ts, first_mj, last_ts, last_mj))
        if i + 1 < len(rows):
            next_ts, next_mj = rows[i + 1][0], rows[i + 1][1]
            if next_ts - last_ts <= 600:
                stretches.append((last_ts, last_mj, next_ts, next_mj))
    joules = covered = 0.0
    for start_ts, start_mj, end_ts, end_mj in stretches:
        inside = max(0.0, min(end_ts, until_ts) - max(start_ts, since_ts))
        if end_ts <= start_ts or inside <= 0 or end_mj < start_mj:
            continue
        joules += (end_mj - start_mj) / 1000.0 * inside / (end_ts - start_ts)
        covered += inside
    return {"joules": joules, "covered_s": covered}
