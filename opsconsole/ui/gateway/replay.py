"""The store as a replay reads it: the recorder's samples for the replay source, and the
alerts as they stood at the replay clock's moment."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from opsconsole.alerts.history import alerts_as_of
from opsconsole.alerts.silences import active_silences
from opsconsole.collect.state import FleetState
from opsconsole.replay import ReplaySource
from opsconsole.store import open_store
from opsconsole.ui.gateway.alert_desk import AlertDesk
from opsconsole.ui.view.alert_board import RESOLVED_SHOWN_S, AlertBoard, build_alert_board


def replay_source(store_path: Path, state: FleetState) -> ReplaySource:
    """The recorder's samples, on a connection of the replay poller's own."""
    return ReplaySource(open_store(store_path), state)


def replay_store(store_path: Path) -> sqlite_utils.Database:
    """The connection the replayed console's gateway reads leases and alerts on."""
    return open_store(store_path)


class ReplayAlertDesk(AlertDesk):
    """Alerts as they stood at the replay clock's moment; changing them is refused by the
    read-only guard before it reaches here."""

    def load_board(self) -> AlertBoard:
        now_ts = self.now()
        db = self.db

        def read() -> AlertBoard:
            alerts = alerts_as_of(db, now_ts, resolved_shown_s=RESOLVED_SHOWN_S)
            return build_alert_board(alerts, active_silences(db, now_ts), now_ts)

        return self._call("reading alerts as they were", read)
