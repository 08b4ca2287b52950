"""Plain read functions for the layers above (screens, CLI, capacity): rows as dicts keyed
by column name (see "Store schema"), oldest first for series, newest first for logs.

Reads take no write lock; in WAL they see the last committed flush and never wait on it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

Row = dict[str, Any]
"""One row keyed by column name; values as SQLite returns them (see "Store schema")."""


def gpu_rollups(
    db: sqlite_utils.Database, host: str, gpu_index: int, since_ts: float, until_ts: float
) -> list[Row]:
    """One GPU's minute rows with since_ts <= minute_ts < until_ts, oldest first."""
    return list(
        db.query(
            "SELECT * FROM gpu_minute WHERE host = ? AND gpu_index = ?"
            " AND minute_ts >= ? AND minute_ts < ? ORDER BY minute_ts",
            (host, gpu_index, since_ts, until_ts),
        )
    )


def recent_events(
    db: sqlite_utils.Database,
    since_ts: float,
    host: str | None = None,
    kinds: Iterable[str] | None = None,
    limit: int = 500,
) -> list[Row]:
    """Events at or after since_ts, newest first, optionally for one host and some kinds."""
    where: list[str] = ["ts >= ?"]
    params: list[str | float] = [since_ts]
    if host is not None:
        where.append("host = ?")
        params.append(host)
    if kinds is not None:
        wanted = list(kinds)
        where.append(f"kind IN ({', '.join('?' for _ in wanted)})")
        params.extend(wanted)
    params.append(limit)
    return list(
        db.query(
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC LIMIT ?",
            params,
        )
    )


def gpu_slots(db: sqlite_utils.Database, host: str | None = None) -> list[Row]:
    """GPU slots (all hosts, or one), by host and index."""
    if host is None:
        return list(db.query("SELECT * FROM gpu_slots ORDER BY host, gpu_index"))
    return list(db.query("SELECT * FROM gpu_slots WHERE host = ? ORDER BY gpu_index", (host,)))


def swaps(db: sqlite_utils.Database, since_ts: float | None = None) -> list[Row]:
    """Recorded GPU swaps (optionally those at or after since_ts), newest first."""
    where, params = ("WHERE ts >= ?", (since_ts,)) if since_ts is not None else ("", ())
    return list(
        db.query(
            f"SELECT host, gpu_index, old_uuid, new_uuid, ts FROM gpu_swaps {where}"
            " ORDER BY ts DESC, id DESC",
            params,
        )
    )


def gpu_energy(
    db: sqlite_utils.Database, host: str, gpu_index: int, since_ts: float, until_ts: float
) -> dict[str, float]:
    """Energy estimated from the minute power averages of one GPU, minutes starting in
    [since_ts, until_ts): `joules` (Σ power_w_avg × 60 s over minutes with a power
    reading), `minutes_with_power`, and `minutes` (rows present at all). An estimate:
    the board's own energy counter is exact, a minute's mean power times 60 s is not."""
    joules, with_power, minutes = db.conn.execute(
        "SELECT coalesce(sum(CASE WHEN power_w_n > 0 THEN power_w_avg * 60 END), 0),"
        " coalesce(sum(power_w_n > 0), 0), count(*) FROM gpu_minute WHERE host = ?"
        " AND gpu_index = ? AND minute_ts >= ? AND minute_ts < ?",
        (host, gpu_index, since_ts, until_ts),
    ).fetchone()
    return {"joules": float(joules), "minutes_with_power": with_power, "minutes": minutes}


def fleet_minutes(db: sqlite_utils.Database, since_ts: float, until_ts: float) -> list[Row]:
    """Every GPU's minute rows with since_ts <= minute_ts < until_ts, oldest first: what
    replay shows where the flight recorder no longer holds raw samples."""
    return list(
        db.query(
            "SELECT host, gpu_index, minute_ts, util_pct_avg, temp_c_avg, power_w_avg,"
            " mem_used_mib_avg FROM gpu_minute WHERE minute_ts >= ? AND minute_ts < ?"
            " ORDER BY minute_ts, host, gpu_index",
            (since_ts, until_ts),
        )
    )


def host_racks(db: sqlite_utils.Database) -> dict[str, str]:
    """host → rack, for the hosts of the inventory that sit in a rack."""
    rows = db.conn.execute("SELECT name, rack FROM hosts WHERE rack IS NOT NULL")
    return {str(name): str(rack) for name, rack in rows}


# -- reads for the layers above that keep their own shape (leases, capacity) -------------
# Each takes the caller's connection, so it runs inside the caller's read snapshot.


def events_of_kinds(
    conn: sqlite3.Connection,
    kinds: Sequence[str],
    *,
    until_ts: float,
    until_inclusive: bool = False,
    since_ts: float | None = None,
    hosts: Sequence[str] | None = None,
) -> list[tuple[str, int | None, str, str | None, float]]:
    """(host, gpu_index, kind, message, ts) of the events of `kinds` before `until_ts` (or
    at it, with `until_inclusive`), from `since_ts` on and for `hosts` when given, oldest
    first (by time, then as written)."""
    where = [f"kind IN ({', '.join('?' for _ in kinds)})"]
    params: list[str | float] = list(kinds)
    where.append("ts <= ?" if until_inclusive else "ts < ?")
    params.append(until_ts)
    if since_ts is not None:
        where.append("ts >= ?")
        params.append(since_ts)
    if hosts is not None:
        where.append(f"host IN ({', '.join('?' for _ in hosts)})")
        params.extend(hosts)
    rows: list[tuple[str, int | None, str, str | None, float]] = conn.execute(
        f"SELECT host, gpu_index, kind, message, ts FROM events WHERE {' AND '.join(where)}"
        " ORDER BY ts, id",
        params,
    ).fetchall()
    return rows


def first_reading_ts(
    conn: sqlite3.Connection, host: str, gpu_index: int, since_ts: float, *, inclusive: bool
) -> int | None:
    """The first minute after `since_ts` (or at it, with `inclusive`) in which the GPU gave
    a utilisation reading; None when it has given none since. One primary-key seek."""
    found = conn.execute(
        "SELECT min(minute_ts) FROM gpu_minute WHERE host = ? AND gpu_index = ?"
        f" AND minute_ts {'>=' if inclusive else '>'} ? AND util_pct_n > 0",
        (host, gpu_index, since_ts),
    ).fetchone()[0]
    return None if found is None else int(found)


def utilisation_in_windows(
    conn: sqlite3.Connection, windows: Sequence[tuple[int, str, int, float, float]]
) -> dict[tuple[int, str, int], tuple[float, int, int]]:
    """(key, host, gpu) → (Σ util_pct_avg·n, Σ n, minutes with a reading) over the minutes
    starting in each window [start, stop), given as (key, host, gpu, start, stop). One
    query joining the windows (as JSON) to the rollups on their primary key."""
    if not windows:
        return {}
    rows = conn.execute(
        "WITH w AS (SELECT json_extract(value, '$[0]') AS key,"
        " json_extract(value, '$[1]') AS host, json_extract(value, '$[2]') AS gpu,"
        " json_extract(value, '$[3]') AS s, json_extract(value, '$[4]') AS e"
        " FROM json_each(?))"
        " SELECT w.key, w.host, w.gpu, sum(g.util_pct_avg * g.util_pct_n),"
        " sum(g.util_pct_n), count(*) FROM w JOIN gpu_minute g ON g.host = w.host"
        " AND g.gpu_index = w.gpu AND g.minute_ts >= w.s AND g.minute_ts < w.e"
        " AND g.util_pct_n > 0 GROUP BY w.key, w.host, w.gpu",
        (json.dumps([list(w) for w in windows]),),
    )
    return {(key, h, g): (weighted or 0.0, n or 0, m) for key, h, g, weighted, n, m in rows}


_BY_SLOT = (
    "WITH slot(host, gpu_index) AS (SELECT json_extract(value, '$[0]'),"
    " json_extract(value, '$[1]') FROM json_each(:slots))"
    " SELECT {columns} FROM slot s CROSS JOIN gpu_minute m"
    " ON m.host = s.host AND m.gpu_index = s.gpu_index"
    " WHERE m.minute_ts >= :since AND m.minute_ts < :until{where} GROUP BY {group}"
)
"""Rollup aggregates over given (host, GPU) slots, one primary-key range per slot (CROSS
JOIN fixes that order). Going through the `minute_ts` index instead costs a key lookup
per row: at 1,000 hosts the 4 h utilisation took 7.5 s that way, 2 s this way, and the
1 h clock events 1.8 s against 0.95 s (bench/capacity.py)."""


def _by_slot(
    conn: sqlite3.Connection,
    slots: Sequence[tuple[str, int]],
    since_ts: float,
    until_ts: float,
    *,
    columns: str,
    group: str,
    where: str = "",
) -> list[tuple[Any, ...]]:
    if not slots:
        return []
    sql = _BY_SLOT.format(columns=columns, where=where, group=group)
    params = {"slots": json.dumps(list(slots)), "since": int(since_ts), "until": until_ts}
    rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
    return rows


def slot_utilisation(
    conn: sqlite3.Connection, slots: Sequence[tuple[str, int]], since_ts: float, until_ts: float
) -> dict[tuple[str, int], tuple[int, float | None]]:
    """(host, GPU) → (minutes with a utilisation reading, the busiest minute's average) over
    the minutes starting in [since, until), for each slot with a rollup row there."""
    rows = _by_slot(
        conn, slots, since_ts, until_ts,
        columns="s.host, s.gpu_index, sum(m.util_pct_n > 0), max(m.util_pct_avg)",
        group="s.host, s.gpu_index",
    )  # fmt: skip
    return {(h, i): (int(n or 0), busiest) for h, i, n, busiest in rows}


def host_clock_events(
    conn: sqlite3.Connection, slots: Sequence[tuple[str, int]], since_ts: float, until_ts: float
) -> dict[str, tuple[float, float, float]]:
    """Per host over the given GPUs: (clock-event readings, Σ power-cap share · readings,
    Σ thermal share · readings) over the minutes starting in [since, until)."""
    rows = _by_slot(
        conn, slots, since_ts, until_ts,
        columns="s.host, sum(m.clock_event_n), sum(m.clock_event_share_power * m.clock_event_n),"
        " sum(m.clock_event_share_thermal * m.clock_event_n)",
        where=" AND m.clock_event_n > 0",
        group="s.host",
    )  # fmt: skip
    return {h: (float(n), float(p or 0.0), float(t or 0.0)) for h, n, p, t in rows}


def gpu_mean_power(
    conn: sqlite3.Connection, since_ts: float, until_ts: float
) -> list[tuple[str, int, float]]:
    """(host, GPU, mean power in W) of every GPU with a power reading in the minutes
    starting in [since, until)."""
    return [
        (host, index, float(watts))
        for host, index, watts in conn.execute(
            "SELECT host, gpu_index, sum(power_w_avg * power_w_n) / sum(power_w_n)"
            " FROM gpu_minute WHERE minute_ts >= ? AND minute_ts < ? AND power_w_n > 0"
            " GROUP BY host, gpu_index",
            (int(since_ts), until_ts),
        )
    ]
