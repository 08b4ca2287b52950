"""The alert store, as the console asks it: each method is one alerts-layer call run
through the `StoreGateway`'s lock (the same door as the lease desk's, not the lease desk
itself: an acknowledgement and a lease change each get a transaction of their own, and a
raw sqlite3 error becomes the store's one-line StoreError the same way). Called only from
thread workers; it never touches Textual widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlite_utils

from opsconsole.alerts import (
    Alert,
    Silence,
    acknowledge,
    alert_history,
    create_silence,
    expire_silence,
    list_alerts,
    resolve,
)
from opsconsole.alerts.silences import active_silences, list_silences
from opsconsole.alerts.store import unack
from opsconsole.ui.gateway.store import StoreGateway
from opsconsole.ui.view.alert_board import (
    RESOLVED_SHOWN_S,
    AlertBoard,
    History,
    build_alert_board,
)

T = TypeVar("T")


class AlertDesk:
    def __init__(self, gateway: StoreGateway, *, operator: str, clock: Callable[[], float]) -> None:
        self.gateway = gateway
        self.operator = operator
        self.clock = clock

    @property
    def db(self) -> sqlite_utils.Database:
        return self.gateway.db

    def _call(self, doing: str, call: Callable[[], T]) -> T:
        return self.gateway.call(doing, call)

    def now(self) -> float:
        return self.clock()

    # --- reading ----------------------------------------------------------------------
    def load_board(self) -> AlertBoard:
        now_ts = self.now()
        db = self.db

        def read() -> AlertBoard:
            alerts = list_alerts(db, resolved_since_ts=now_ts - RESOLVED_SHOWN_S)
            return build_alert_board(alerts, active_silences(db, now_ts), now_ts)

        return self._call("reading alerts", read)

    def history(self, alert_id: int) -> History:
        db = self.db
        return self._call(
            f"reading the history of alert {alert_id}", lambda: alert_history(db, alert_id)
        )

    def silences(self, *, include_expired: bool = False) -> list[Silence]:
        """Silences in force and scheduled ones; ended ones too when asked."""
        now_ts = self.now()
        db = self.db
        return self._call(
            "reading silences",
            lambda: list_silences(db, now_ts=now_ts, include_expired=include_expired),
        )

    # --- changing ---------------------------------------------------------------------
    def acknowledge(self, alert_id: int, comment: str, timeout_s: float | None) -> Alert:
        now_ts = self.now()
        return self._call(
            f"acknowledging alert {alert_id}",
            lambda: acknowledge(
                self.db,
                alert_id,
                self.operator,
                comment,
                timeout_s=timeout_s,
                now_ts=now_ts,
            ),
        )

    def unacknowledge(self, alert_id: int, comment: str) -> Alert:
        now_ts = self.now()
        return self._call(
            f"withdrawing the acknowledgement of alert {alert_id}",
            lambda: unack(self.db, alert_id, self.operator, comment, now_ts=now_ts),
        )

    def resolve(self, alert_id: int, comment: str) -> Alert:
        now_ts = self.now()
        return self._call(
            f"resolving alert {alert_id}",
            lambda: resolve(self.db, alert_id, self.operator, comment, now_ts=now_ts),
        )

    def silence(
        self, matchers: dict[str, str], duration_s: float, comment: str
    ) -> tuple[int, float]:
        """A silence from now for `duration_s`; returns its id and end."""
        now_ts = self.now()
        end_ts = now_ts + duration_s
        silence_id = self._call(
            "creating a silence",
            lambda: create_silence(
                self.db,
                dict(matchers),
                start_ts=now_ts,
                end_ts=end_ts,
                created_by=self.operator,
                comment=comment,
                now_ts=now_ts,
            ),
        )
        return silence_id, end_ts

    def expire(self, silence_id: int) -> None:
        now_ts = self.now()
        self._call(
            f"ending silence {silence_id}",
            lambda: expire_silence(self.db, silence_id, now_ts=now_ts),
        )
