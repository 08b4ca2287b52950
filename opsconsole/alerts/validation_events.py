"""A failed validation run is an event alert (`validation_failed`, critical) on the node,
like an XID: it stays until an operator resolves it, whatever the node does next.

Recorded straight into the alert tables by the run that failed (the alert engine's
evaluation sees live readings, not runs); it never resolves or touches other alerts, so
it is safe beside a running engine. The console's Alerts screen and `opsconsole alerts`
show it within one refresh; it is not toasted (notification belongs to the engine).
"""

from __future__ import annotations

import sqlite_utils

from opsconsole.alerts.conditions import Condition, Kind
from opsconsole.alerts.silences import active_silences, silenced_by
from opsconsole.alerts.store import FIRING, Alert, _insert, _transition, get_alert
from opsconsole.config.alerts import Severity
from opsconsole.store.transaction import write_transaction

RULE = "validation_failed"
SEVERITY = Severity.CRITICAL


def record_validation_failure(
    db: sqlite_utils.Database,
    *,
    host: str,
    site: str,
    rack: str,
    run_id: int,
    level: str,
    reason: str,
    now_ts: float,
) -> Alert | None:
    """The alert for this host in this run (None if it was already recorded)."""
    labels = {
        "site": site, "rack": rack, "host": host, "event": f"validation:{run_id}",
        "level": level,
    }  # fmt: skip
    cond = Condition(
        rule=RULE, severity=SEVERITY, kind=Kind.EVENT, labels=labels,
        summary=f"{host}: validation run {run_id} ({level}) failed: {reason}"[:500],
        from_readings=False,
    )  # fmt: skip
    with write_transaction(db, f"recording the alert for validation run {run_id}") as tx:
        if tx.execute("SELECT 1 FROM alerts WHERE fingerprint = ?", (cond.fingerprint,)).fetchone():
            return None
        silence = silenced_by(active_silences(tx, now_ts), cond.rule, cond.labels)
        alert_id = _insert(tx, cond, now_ts, silence)
        _transition(tx, alert_id, now_ts, None, FIRING, comment=cond.summary)
    return get_alert(db, alert_id)
