"""The alert engine: live state in, alerts recorded and notified out, once per interval.

It runs beside the poller, in `opsconsole poll` and in the console alike, so alerts exist
whether or not a console is open. Two halves on two threads:

* `evaluate()` reads the live state, so it runs on the thread that owns the state (the
  poller's event loop) and never touches the store;
* labelling with lease impact, `apply_conditions`, pruning and notification read and
  write SQLite, so they run on one worker thread of their own. A store held by another
  program (busy timeout) then delays alerts, never the poller. While a recording is still
  running, the next evaluation's result replaces the waiting one instead of queueing.

Only one engine per store records (`leader.py`); the others evaluate on stand-by and
take over when its heartbeat stops. Nothing is remembered here that a restart would
need: `resume()` reads the open alerts from the store, so a restarted console neither
waits out `for_s` again nor re-notifies.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlite_utils

from opsconsole.alerts.conditions import Condition, PendingTracker
from opsconsole.alerts.impact import (
    AlertContext,
    build_context,
    label_impact,
    lease_change_mark,
)
from opsconsole.alerts.incident_capture import IncidentCapture
from opsconsole.alerts.leader import engine_identity, hold_lead, release_lead
from opsconsole.alerts.notify import (
    AlertNotifier,
    AlertTransition,
    ConditionSource,
    TransitionKind,
)
from opsconsole.alerts.retention import prune_alerts
from opsconsole.alerts.rules import AlertSettings, StateView, evaluate
from opsconsole.alerts.store import (
    ACKNOWLEDGED,
    FIRING,
    RESOLVED,
    Alert,
    AlertState,
    active_conditions,
    apply_conditions,
    get_alert,
    history_since,
    last_history_id,
    list_alerts,
)
from opsconsole.config import Fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.leases.reader import LeaseReader, lease_reader

log = logging.getLogger("opsconsole.alerts")

CONTEXT_EVERY_S = 30.0
"""Leases and idle GPUs change slowly; re-reading them every poll would be wasted work
(a lease change is noticed at once through `lease_change_mark`)."""
IDLE_EVERY_S = 300.0
"""Idle GPUs come from hours of minute rollups (up to 0.6 s at 1,000 hosts when every
leased GPU is idle) and the rule's window is hours long: every five minutes is enough."""
PRUNE_EVERY_S = 3600.0
LEAD_STALE_MIN_S = 10.0
"""A leader silent for three intervals (at least this long) is replaced."""
DAY_S = 86400.0


def describe(alert: Alert) -> str:
    """The log line for a notification: severity, rule, summary, tenants."""
    tenant = alert.labels.get("tenant")
    line = f"ALERT {alert.severity.upper()} {alert.rule} #{alert.id}: {alert.summary}"
    if tenant and tenant not in alert.summary:
        line += f" [tenant {tenant}]"
    return line


class AlertEngine:
    """Evaluates rules over a live state and records the result in the store at `path`."""

    def __init__(
        self,
        path: str | Path,
        settings: AlertSettings | None = None,
        *,
        notifiers: Sequence[AlertNotifier] = (),
        condition_sources: Sequence[ConditionSource] = (),
        clock: Callable[[], float] = time.time,
        interval_s: float = 2.0,
        silence_keep_s: float = 30 * DAY_S,
        resolved_keep_s: float = 180 * DAY_S,
        role: str = "engine",
        leases: Callable[[sqlite3.Connection], LeaseReader] = lease_reader,
    ):
        self.path = Path(path)
        self.leases = leases
        """The leases layer's reader over the engine's connection (lease impact, lease
        rules): the engine reads no lease table itself."""
        self.settings = settings or AlertSettings()
        self.notifiers: list[AlertNotifier] = list(notifiers)
        self.condition_sources = list(condition_sources)
        self.clock = clock
        self.interval_s = interval_s
        self.silence_keep_s = silence_keep_s
        self.resolved_keep_s = resolved_keep_s
        self.tracker = PendingTracker()
        self.context: AlertContext | None = None
        self.last_error = ""
        self.notified_total = 0
        self._db: sqlite_utils.Database | None = None
        self._context_ts = float("-inf")
        self._lease_mark: int | None = None
        self._idle_ts = float("-inf")
        self._prune_ts = float("-inf")
        self.incident_capture = IncidentCapture()
        """Keeps the flight recorder's samples around critical alerts (see that module)."""
        self._lock = threading.Lock()  # one recording at a time on the store connection
        self.identity = engine_identity(role)
        self.stale_s = max(3 * interval_s, LEAD_STALE_MIN_S)
        self.standby_for: str | None = None
        """The engine that records for this store while this one stands by."""
        self._leading = False
        self._history_id: int | None = None
        """The last `alert_history` row handed to notifiers; None until leading."""

    def add_notifier(self, notifier: AlertNotifier) -> None:
        """Tell `notifier` too from the next recording on (the console's toasts, which
        need the app that is built after the engine)."""
        self.notifiers.append(notifier)

    # --- the store side (worker thread, or inline in tests and `poll --once`) ---

    def _store(self) -> sqlite_utils.Database:
        if self._db is None:
            from opsconsole.store import open_store

            self._db = open_store(self.path, check_same_thread=False)
        return self._db

    def resume(self, now_ts: float) -> int:
        """Take the store's open alerts as already firing; returns how many."""
        with self._lock:
            conditions = active_conditions(self._store())
            self.tracker.resume(conditions, now_ts)
            self._refresh_context(now_ts, force=True)
        return len(conditions)

    def record(self, conditions: list[Condition], now_ts: float) -> list[Alert]:
        """Label, record and notify one evaluation's conditions. Store errors are logged
        and kept in `last_error`, never raised: the next interval tries again."""
        with self._lock:
            try:
                if not self._lead(now_ts):
                    self.last_error = ""
                    return []
                if self._history_id is None:
                    self._history_id = last_history_id(self._store())
                self._refresh_context(now_ts)
                labelled = label_impact(conditions, self.context)
                notified = apply_conditions(self._store(), labelled, now_ts)
                transitions = self._transitions(notified)
                self._prune(now_ts)
                self.incident_capture.run(self._store(), now_ts)
                self.last_error = ""
            except (OpsconsoleError, OSError) as exc:
                if str(exc) != self.last_error:
                    log.error("alerts not recorded: %s", exc)
                self.last_error = str(exc)
                return []
        self._announce(notified, transitions)
        return notified

    def _transitions(self, notified: list[Alert]) -> list[AlertTransition]:
        """What to tell notifiers: the firings `apply_conditions` decided to notify, and
        the acknowledgements, withdrawals and resolutions of notified alerts that any
        process wrote since the last look. Silenced firings stay untold, so are their
        acknowledgements and resolutions (a pager never saw them)."""
        db = self._store()
        rows = history_since(db, self._history_id or 0)
        if rows:
            self._history_id = rows[-1][0]
        by_id = {a.id: a for a in notified}
        out: list[AlertTransition] = []
        told: set[int] = set()
        cache: dict[int, Alert | None] = dict(by_id)
        for _, alert_id, ts, old, new, operator, comment in rows:
            if new == FIRING and alert_id in by_id:
                refired = old == ACKNOWLEDGED and operator is None
                kind = TransitionKind.REFIRED if refired else TransitionKind.FIRING
                out.append(AlertTransition(kind, by_id[alert_id], ts, operator, comment or ""))
                told.add(alert_id)
                continue
            if new == FIRING and not (old == ACKNOWLEDGED and operator is not None):
                continue  # a firing that was silenced, or one the engine notifies below
            if alert_id not in cache:
                try:
                    cache[alert_id] = get_alert(db, alert_id)
                except OpsconsoleError:
                    cache[alert_id] = None  # pruned meanwhile
            alert = cache[alert_id]
            if alert is None or alert.notified_ts is None:
                continue
            kind = {
                ACKNOWLEDGED: TransitionKind.ACKNOWLEDGED,
                RESOLVED: TransitionKind.RESOLVED,
                FIRING: TransitionKind.UNACKNOWLEDGED,
            }[AlertState(new)]
            out.append(AlertTransition(kind, alert, ts, operator, comment or ""))
        for alert in notified:  # a silence ended: notified with no transition of its own
            if alert.id not in told:
                out.append(AlertTransition(TransitionKind.FIRING, alert, alert.notified_ts or 0.0))
        return out

    def _lead(self, now_ts: float) -> bool:
        """Hold the store's engine lead, or stand by (evaluating, not recording) while
        another engine holds it. Taking over resumes the store's open alerts first."""
        holder = hold_lead(self._store(), self.identity, now_ts, self.stale_s)
        if holder is not None:
            if holder != self.standby_for:
                log.info("alerts on stand-by: recorded by %s", holder)
            self.standby_for = holder
            self._history_id = None  # the leader tells; on taking over, start from then
            return False
        if self.standby_for is not None:
            log.info("alerts: taking over from %s", self.standby_for)
            self.tracker.resume(active_conditions(self._store()), now_ts)
            self.standby_for = None
        self._leading = True
        return True

    def open_alerts(self) -> list[Alert]:
        """The store's alerts that are not resolved, newest first."""
        with self._lock:
            return list_alerts(self._store())

    def _refresh_context(self, now_ts: float, *, force: bool = False) -> None:
        """Leases are re-read every CONTEXT_EVERY_S, and at once when any lease, tenant or
        drain changed (from this console, another one or the CLI): an alert on a host
        leased a moment ago must name its tenant."""
        db = self._store()
        leases = self.leases(db.conn)
        mark = lease_change_mark(db, leases)
        due = now_ts - self._context_ts >= CONTEXT_EVERY_S or now_ts < self._context_ts
        if not (force or due or mark != self._lease_mark):
            return
        idle_due = force or now_ts - self._idle_ts >= IDLE_EVERY_S or now_ts < self._idle_ts
        keep = None if idle_due or self.context is None else self.context.idle_gpus
        self.context = build_context(db, now_ts, self.settings, idle_gpus=keep, leases=leases)
        self._context_ts = now_ts
        self._lease_mark = mark  # read before the view: a change in between re-reads
        if idle_due:
            self._idle_ts = now_ts

    def _prune(self, now_ts: float) -> None:
        if now_ts - self._prune_ts < PRUNE_EVERY_S:
            return
        self._prune_ts = now_ts
        silences, alerts = prune_alerts(
            self._store(),
            now_ts,
            silence_keep_s=self.silence_keep_s,
            resolved_keep_s=self.resolved_keep_s,
        )
        if silences or alerts:
            log.info("pruned %d expired silences and %d resolved alerts", silences, alerts)

    def _announce(self, notified: list[Alert], transitions: list[AlertTransition]) -> None:
        for alert in notified:
            log.warning("%s", describe(alert))
        self.notified_total += len(notified)
        if not transitions:
            return
        for notifier in self.notifiers:
            try:
                notifier.alert_transitions(transitions)
            except Exception:  # a broken notifier must not stop the alerts
                log.exception("notifier %s failed", type(notifier).__name__)

    # --- the state side (the poller's thread) ---

    def evaluate(self, state: StateView, now_ts: float) -> list[Condition]:
        extra: list[Condition] = []
        for source in self.condition_sources:
            try:
                extra.extend(source.current_conditions(now_ts))
            except Exception:  # a broken source must not stop the built-in rules
                log.exception("condition source %s failed", type(source).__name__)
        return evaluate(state, now_ts, self.tracker, self.settings, self.context, extra)

    def step(self, state: StateView, now_ts: float | None = None) -> list[Alert]:
        """Evaluate and record inline: for tests and `poll --once`."""
        now_ts = self.clock() if now_ts is None else now_ts
        return self.record(self.evaluate(state, now_ts), now_ts)

    async def run(self, state: StateView, stop: asyncio.Event) -> None:
        """Evaluate every `interval_s` until `stop` is set; record on a worker thread."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="opsconsole-alerts") as worker:
            try:
                await loop.run_in_executor(worker, self.resume, self.clock())
            except (OpsconsoleError, OSError) as exc:
                self.last_error = str(exc)
                log.error("alerts cannot resume from the store: %s", exc)
            recording: asyncio.Future[list[Alert]] | None = None
            while not stop.is_set():
                now_ts = self.clock()
                if recording is None or recording.done():
                    conditions = self.evaluate(state, now_ts)
                    recording = loop.run_in_executor(worker, self.record, conditions, now_ts)
                try:
                    await asyncio.wait_for(stop.wait(), self.interval_s)
                except TimeoutError:
                    pass
            if recording is not None:
                await asyncio.gather(recording, return_exceptions=True)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            if self._leading:
                try:
                    release_lead(self._db, self.identity)
                except (OpsconsoleError, OSError) as exc:
                    log.error("alert engine lead not released: %s", exc)
                self._leading = False
            self._db.close()
            self._db = None


def engine_for_fleet(
    fleet: Fleet,
    *,
    notifiers: Sequence[AlertNotifier] = (),
    condition_sources: Sequence[ConditionSource] = (),
    store_path: Path | None = None,
    role: str = "engine",
) -> AlertEngine:
    """An engine on the fleet's store with the `[alerts]` settings of its config (a bad
    rule raises ConfigError naming the key)."""
    from opsconsole.alerts.settings import alert_settings

    config = fleet.config.alerts
    engine = AlertEngine(
        store_path or fleet.store_path,
        alert_settings(fleet),
        notifiers=notifiers,
        condition_sources=condition_sources,
        interval_s=fleet.config.polling.interval_s,
        silence_keep_s=config.silence_keep_days * DAY_S,
        resolved_keep_s=config.resolved_keep_days * DAY_S,
        role=role,
    )
    store = fleet.config.store
    engine.incident_capture = IncidentCapture(
        margin_s=store.incident_capture_s if store.raw_window_h > 0 else 0.0,
        lookback_s=store.raw_window_h * 3600,
    )
    return engine
