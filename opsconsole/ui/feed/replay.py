"""Replay in the console: the same fleet, host, alerts and leases views, read-only, fed
from the flight recorder on a virtual clock instead of from the poller.

`ReplayPoller` stands where the poller stands (the polling thread calls its `run`), so
batches, snapshots and screens are the live code paths. The app's clock is the replay
clock, so data ages, lease states and the alert board are computed for the replayed
moment; `ReplayAlertDesk` reads the alerts as they were then (`alerts_as_of`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from opsconsole.alerts.history import alerts_as_of
from opsconsole.alerts.silences import active_silences
from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.replay import ReplayClock, ReplaySource
from opsconsole.store import open_store
from opsconsole.ui.app import OpsConsoleApp, make_app
from opsconsole.ui.gateway.alert_desk import AlertDesk
from opsconsole.ui.view.alert_board import RESOLVED_SHOWN_S, AlertBoard, build_alert_board

STEP_S = 0.5


class ReplayPoller:
    def __init__(self, source: ReplaySource, clock: ReplayClock) -> None:
        self.source = source
        self.clock = clock
        self._stopping = False

    async def run(self) -> None:
        while not self._stopping:
            self.source.step(self.clock())
            await asyncio.sleep(STEP_S)

    async def stop(self) -> None:
        """Called on the polling thread's loop, never during a step (steps do not await)."""
        self._stopping = True
        self.source.db.close()

    def banner(self) -> str:
        when = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        speed = f" {self.clock.speed:g}x" if self.clock.speed != 1 else ""
        return f"REPLAY {when}{speed} · {self.source.mode}"


class ReplayAlertDesk(AlertDesk):
    """Alerts as they stood at the replay clock's moment; changing them is refused by the
    read-only guard before it reaches here."""

    def load_board(self) -> AlertBoard:
        now_ts = self.now()
        db = self.lease_desk.db

        def read() -> AlertBoard:
            alerts = alerts_as_of(db, now_ts, resolved_shown_s=RESOLVED_SHOWN_S)
            return build_alert_board(alerts, active_silences(db, now_ts), now_ts)

        return self._call("reading alerts as they were", read)


def replay_app(fleet: Fleet, store_path: Path, at_ts: float, speed: float = 1.0) -> OpsConsoleApp:
    """The read-only console at `at_ts`, moving forward `speed` times as fast."""
    clock = ReplayClock(at_ts, speed)
    state = FleetState.from_fleet(fleet, now_ts=at_ts)
    poller = ReplayPoller(ReplaySource(open_store(store_path), state), clock)
    app = make_app(
        fleet,
        state,
        read_only=True,
        poller_factory=lambda _fleet, _state: poller,
        clock=clock,
        store=open_store(store_path),
        publish_interval_s=min(1.0, fleet.config.polling.interval_s),
    )
    if app.lease_desk is not None:
        app.alert_desk = ReplayAlertDesk(app.lease_desk)
    app.replay_banner = poller.banner
    return app
