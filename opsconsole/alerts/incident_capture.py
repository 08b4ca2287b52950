"""Keep the flight recorder's raw samples around every critical alert for as long as the
alert is kept. Runs beside alert recording (the engine's store thread, at most once a
minute): a firing is captured once `margin_s` after it has passed, from the ring, which
still holds it as long as the ring's window is longer than the margin plus a minute."""

from __future__ import annotations

import logging

import sqlite_utils

from opsconsole.alerts.history import critical_firings, kept_alert_ids
from opsconsole.store.recorder import capture_incident, prune_captures, ring_span

log = logging.getLogger("opsconsole.alerts")


class IncidentCapture:
    def __init__(self, *, margin_s: float = 600.0, every_s: float = 60.0,
                 lookback_s: float = 86_400.0) -> None:  # fmt: skip
        self.margin_s = margin_s
        self.every_s = every_s
        self.lookback_s = lookback_s
        self._last_ts = float("-inf")
        self._done_until_ts: float | None = None

    def run(self, db: sqlite_utils.Database, now_ts: float) -> int:
        """Capture firings whose margin has passed since the last run; prune captures of
        alerts retention removed. Returns the samples copied."""
        if self.margin_s <= 0 or now_ts - self._last_ts < self.every_s:
            return 0
        self._last_ts = now_ts
        if ring_span(db) is None:
            return 0
        until = now_ts - self.margin_s
        since = self._done_until_ts if self._done_until_ts is not None else now_ts - self.lookback_s
        copied = 0
        for alert_id, host, fired_ts in critical_firings(db, since, until):
            copied += capture_incident(db, alert_id, host, fired_ts, margin_s=self.margin_s)
        self._done_until_ts = until
        prune_captures(db, kept_alert_ids(db))
        if copied:
            log.info("flight recorder: kept %d raw samples around critical alerts", copied)
        return copied
