"""Plain read functions for the layers above (screens, CLI, capacity): rows as dicts keyed
by column name (see "Store schema"), oldest first for series, newest first for logs.

Reads take no write lock; in WAL they see the last committed flush and never wait on it.
"""

from __future__ import annotations

from collections.abc import Iterable
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
