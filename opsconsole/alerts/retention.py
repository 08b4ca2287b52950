"""Retention for alerts: ended silences and long-resolved alerts are removed, open alerts
never.

Why keep them at all: "why was nobody paged on Tuesday" and "how often has this GPU
overheated" are answered from ended silences and resolved alerts. Why remove them: the
alerts screen and `alerts list --state resolved` should not carry years of flapping.
An alert goes together with its `alert_history` rows (they mean nothing without it), in
one transaction with the silences, so a reader never sees history without its alert.
Alert volumes are small (hundreds a day), so one transaction is short; telemetry's
batched retention is not needed here.

A pruned alert's fingerprint is free again: if its condition returns, it opens a new
alert with `fire_count` 1. Ids are never reused: the tables have no AUTOINCREMENT, so
SQLite hands out max(id) + 1 and a pruned newest row's id would come back naming another
alert (in a ticket, in `alerts.silenced_by`); the row with the highest id is therefore
always kept, whatever its age. Keep resolved alerts longer than `xid_lookback_s` (a day by
default), so a replayed XID still finds its hand-resolved alert and does not re-open.
"""

from __future__ import annotations

import sqlite_utils

from opsconsole.errors import AlertError
from opsconsole.store.transaction import write_transaction

_OLD_ALERTS = (
    "SELECT id FROM alerts WHERE state = 'resolved' AND resolved_ts < ?"
    " AND id < (SELECT max(id) FROM alerts)"
)
_OLD_SILENCES = "DELETE FROM silences WHERE end_ts < ? AND id < (SELECT max(id) FROM silences)"


def prune_alerts(
    db: sqlite_utils.Database, now_ts: float, *, silence_keep_s: float, resolved_keep_s: float
) -> tuple[int, int]:
    """Delete silences that ended more than `silence_keep_s` ago and alerts resolved more
    than `resolved_keep_s` ago with their history; return (silences, alerts) removed.
    Firing and acknowledged alerts are never touched, however old, nor the newest row of
    either table (see the module docstring: ids are never reused)."""
    if silence_keep_s < 0 or resolved_keep_s < 0:
        raise AlertError("alert retention times must not be negative")
    with write_transaction(db, "pruning old alerts and silences") as tx:
        silences = tx.execute(_OLD_SILENCES, (now_ts - silence_keep_s,)).rowcount
        cutoff = (now_ts - resolved_keep_s,)
        tx.execute(f"DELETE FROM alert_history WHERE alert_id IN ({_OLD_ALERTS})", cutoff)
        alerts = tx.execute(f"DELETE FROM alerts WHERE id IN ({_OLD_ALERTS})", cutoff).rowcount
    return silences, alerts
