"""Telemetry into the store: samples folded into per-minute rollups in memory and written
in one transaction per flush; events written as they come, replays ignored.

Not thread-safe: create it anywhere, then use it from one thread (the ingest worker).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlite_utils

from opsconsole.errors import StoreError
from opsconsole.store import inventory
from opsconsole.store.recorder import FlightRecorder
from opsconsole.store.rollup import UPSERT_SQL, MinuteAccumulator, accumulate
from opsconsole.store.transaction import write_transaction
from opsconsole.wire import GpuEvent, Hello, Sample

if TYPE_CHECKING:
    from opsconsole.config import Fleet

HOST_EVENT_KINDS = frozenset(
    {
        "host_down",
        "host_up",
        "link_down",
        "link_up",
        "gpu_missing",
        "gpu_lost",
        "driver_unresponsive",
        "host_key_changed",
    }
)
EVENT_KINDS = HOST_EVENT_KINDS | {"xid", "sxid"}

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (ts, host, gpu_index, kind, code, source, message,"
    " fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_HOST_SEEN = (
    "UPDATE hosts SET first_seen_ts = coalesce(first_seen_ts, ?1),"
    " last_seen_ts = max(coalesce(last_seen_ts, ?1), ?1) WHERE name = ?2"
)


def gpu_event_fingerprint(host_name: str, event: GpuEvent) -> str:
    """Host, kind, code, source time (whole seconds) and bus id: the same kernel-log line read
    back after a reconnect maps to the same fingerprint. Two identical XIDs on one GPU in
    the same second are kept once, which loses nothing an operator acts on."""
    where = (event.pci_bus_id or "").lower() or f"gpu{event.gpu}"
    return f"{host_name}|{event.kind}|{event.code}|{round(event.ts)}|{where}"


_MAX_SQL_INT = 2**62


def _storable(acc: MinuteAccumulator) -> bool:
    """A broken agent's absurd time or GPU index must not make every flush fail forever
    (sqlite3 refuses integers beyond 64 bits), so such minutes are skipped and counted."""
    return -_MAX_SQL_INT < acc.minute_ts < _MAX_SQL_INT and acc.gpu_index < _MAX_SQL_INT


class TelemetryIngest:
    """Accumulates samples per GPU per minute and writes finished minutes on `flush()`.

    A failed write (locked database, full disk) keeps everything pending for the next
    flush and raises StoreError with a one-line message for the operator.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        *,
        late_grace_s: float = 10.0,
        max_pending_rows: int = 500_000,
        recorder: FlightRecorder | None = None,
    ) -> None:
        """`late_grace_s`: how long after a minute ends we wait for its late samples before
        writing it. `max_pending_rows`: rollup rows kept while the store cannot be written
        (500,000 is an hour of 1,000 eight-GPU hosts); beyond it the oldest are dropped.
        `recorder`: the flight recorder, written in the same flush transaction."""
        self.db = db
        self.recorder = recorder
        self.late_grace_s = late_grace_s
        self.max_pending_rows = max_pending_rows
        self.dropped_rows = 0
        """Rollup rows lost to a store that stayed unwritable past max_pending_rows."""
        self.rejected_rows = 0
        """Rollup rows not storable (a GPU index or time beyond SQLite's integers)."""
        self._open: dict[str, dict[int, MinuteAccumulator]] = {}
        self._finished: list[MinuteAccumulator] = []
        self._last_sample_ts: dict[str, float] = {}
        self._pending_events: list[tuple[object, ...]] = []

    # Inventory -----------------------------------------------------------------------

    def sync_inventory(self, fleet: Fleet) -> None:
        inventory.sync_inventory(self.db, fleet)

    def record_hello(self, host_name: str, hello: Hello) -> list[dict[str, object]]:
        """Store host facts and GPU slots; returns detected GPU swaps (gpu_swaps rows)."""
        if self.recorder is not None:
            self.recorder.add_hello(host_name, hello)
        return inventory.record_hello(self.db, host_name, hello)

    # Samples (hot path) --------------------------------------------------------------

    def add_sample(self, host_name: str, sample: Sample) -> None:
        """Fold one sample into memory. No SQL: this runs for every host every interval."""
        ts = sample.ts
        minute_ts = int(ts // 60) * 60
        open_minutes = self._open.get(host_name)
        if open_minutes is None:
            open_minutes = self._open[host_name] = {}
        accumulate(open_minutes, host_name, minute_ts, sample.gpus, self._finished)
        self._last_sample_ts[host_name] = ts
        if self.recorder is not None:
            self.recorder.add_sample(host_name, sample)

    @property
    def pending_rows(self) -> int:
        """Rollup rows in memory, open minutes included."""
        return len(self._finished) + sum(len(gpus) for gpus in self._open.values())

    @property
    def pending_events(self) -> int:
        return len(self._pending_events)

    def flush(self, now_ts: float | None = None, *, force: bool = False) -> int:
        """Write every finished minute, host last-seen times and queued events in ONE
        transaction; return the number of rollup rows written.

        A minute is finished `late_grace_s` after it ends; `force=True` (shutdown) writes
        open minutes too. A later piece of a written minute is merged into its row.
        """
        if now_ts is None:
            now_ts = time.time()
        self._close_minutes(None if force else now_ts - 60 - self.late_grace_s)
        finished, seen, events = self._finished, self._last_sample_ts, self._pending_events
        if not (finished or seen or events):
            return 0
        rows = [acc.row() for acc in finished if _storable(acc)]
        try:
            with write_transaction(self.db, "writing telemetry") as tx:
                tx.executemany(UPSERT_SQL, rows)
                tx.executemany(_HOST_SEEN, [(ts, host) for host, ts in seen.items()])
                tx.executemany(_INSERT_EVENT, events)
                if self.recorder is not None:
                    self.recorder.write(tx, now_ts, force=force)
        except StoreError as exc:
            dropped = self._bound_pending()
            if dropped:
                raise StoreError(f"{exc}; {dropped} oldest minute rows dropped") from None
            raise
        self._finished, self._last_sample_ts, self._pending_events = [], {}, []
        if self.recorder is not None:
            self.recorder.written()
        self.rejected_rows += len(finished) - len(rows)
        return len(rows)

    def _close_minutes(self, cutoff_minute_ts: float | None) -> None:
        """Move open minutes that started at or before the cutoff (all when None) to
        the finished list; a host that stopped sending has its last minute closed here."""
        finished = self._finished
        for open_minutes in self._open.values():
            done = [
                index
                for index, acc in open_minutes.items()
                if cutoff_minute_ts is None or acc.minute_ts <= cutoff_minute_ts
            ]
            for index in done:
                finished.append(open_minutes.pop(index))

    def _bound_pending(self) -> int:
        excess = len(self._finished) - self.max_pending_rows
        if excess <= 0:
            return 0
        del self._finished[:excess]  # oldest first: they were appended in time order
        self.dropped_rows += excess
        return excess

    # Events --------------------------------------------------------------------------

    def record_events(self, host_name: str, events: Iterable[GpuEvent]) -> list[GpuEvent]:
        """Store XID/SXID events; return those that were new (not replays of stored ones).

        If the store cannot be written they are queued for the next flush and StoreError
        is raised.
        """
        events = list(events)
        if not events:
            return []
        rows = [
            (
                e.ts,
                host_name,
                e.gpu,
                e.kind,
                e.code,
                e.source,
                e.message,
                gpu_event_fingerprint(host_name, e),
            )
            for e in events
        ]
        return [events[i] for i in self._insert_events(rows, f"events from {host_name}")]

    def record_host_event(
        self,
        host: str,
        kind: str,
        message: str,
        ts: float,
        *,
        gpu_index: int | None = None,
        code: int | None = None,
        source: str = "console",
    ) -> bool:
        """Store an event the console observed (host down, link down, GPU lost...);
        return False if the same event was already stored. The message is part of the
        identity: two IB ports going down in the same poll are two events."""
        if kind not in HOST_EVENT_KINDS:
            raise ValueError(f"unknown host event kind {kind!r}")
        digest = hashlib.blake2b(message.encode(), digest_size=8).hexdigest()
        where = "" if gpu_index is None else f"gpu{gpu_index}"
        fingerprint = f"{host}|{kind}|{code}|{ts:.3f}|{where}|{digest}"
        row = (ts, host, gpu_index, kind, code, source, message, fingerprint)
        return bool(self._insert_events([row], f"{kind} event for {host}"))

    def _insert_events(self, rows: Sequence[tuple[object, ...]], doing: str) -> list[int]:
        """Insert rows, ignoring duplicates; return the indexes of those that were new."""
        try:
            with write_transaction(self.db, doing) as tx:
                return [i for i, row in enumerate(rows) if tx.execute(_INSERT_EVENT, row).rowcount]
        except StoreError:
            self._pending_events.extend(rows)
            raise
