"""What is due: cleaning after leases, and scheduled checks on idle nodes spread so that no
more than a share of a rack or leaf is under test at once (a rack under test is capacity
a tenant cannot get, and a leaf's worth of nodes running all-reduce at once would measure
the leaf, not the nodes). `HandoverWorker` runs `run_due` on a timer beside the poller.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.leases import handover
from opsconsole.leases.handover import LEVEL_RANK, NodeHandover, NodeState
from opsconsole.validate import store
from opsconsole.validate.service import RunnerFactory, ssh_runner, validate_hosts
from opsconsole.validate.settings import ValidationSettings

log = logging.getLogger("opsconsole.validate")

UNDER_TEST = (NodeState.VALIDATING, NodeState.CLEANING)


def share_limit(total: int, share: float) -> int:
    """Nodes of a group of `total` that may be under test at once (at least one)."""
    return max(1, math.floor(total * share))


def due_for_schedule(
    fleet: Fleet,
    states: dict[str, NodeHandover],
    settings: ValidationSettings,
    now_ts: float,
) -> list[str]:
    """Free nodes whose last pass at the scheduled level is older than `every_h`, oldest
    first, as many as the rack and leaf shares allow beside the nodes already under test."""
    config = settings.config.schedule
    if not config.enabled:
        return []
    rank = LEVEL_RANK[config.level]
    oldest = now_ts - config.every_h * 3600.0
    hosts = {h.name: h for h in fleet.hosts}
    rack_total = Counter(h.rack for h in fleet.hosts)
    leaf_total = Counter(h.leaf or h.rack for h in fleet.hosts)
    rack_busy = Counter(hosts[n].rack for n, s in states.items() if s.state in UNDER_TEST)
    leaf_busy = Counter(
        hosts[n].leaf or hosts[n].rack for n, s in states.items() if s.state in UNDER_TEST
    )
    candidates = []
    for name, state in states.items():
        if state.state != NodeState.FREE:
            continue
        last = max(
            (ts for level, ts in state.passes.items() if LEVEL_RANK.get(level, 0) >= rank),
            default=0.0,
        )
        if last < oldest:
            candidates.append((last, name))
    picked = []
    for _last, name in sorted(candidates):
        host = hosts[name]
        leaf = host.leaf or host.rack
        if rack_busy[host.rack] >= share_limit(rack_total[host.rack], config.max_share_per_rack):
            continue
        if leaf_busy[leaf] >= share_limit(leaf_total[leaf], config.max_share_per_leaf):
            continue
        rack_busy[host.rack] += 1
        leaf_busy[leaf] += 1
        picked.append(name)
    return picked


def run_due(
    db: sqlite_utils.Database,
    fleet: Fleet,
    settings: ValidationSettings,
    *,
    operator: str,
    runner_factory: RunnerFactory = ssh_runner,
    clock: Callable[[], float] = time.time,
) -> list[store.RunRecord]:
    """One pass: a cleaning run over every node whose lease ended, then one scheduled run
    over the nodes due. A run that cannot start is logged and skipped."""
    runs = []
    config = settings.config
    if config.clean_after_lease:
        handover.enable_cleaning(db, now_ts=clock())
        handover.advance_watermark(db, now_ts=clock())
        dirty = handover.nodes_to_clean(db, fleet, now_ts=clock())
        if dirty:
            runs += _try(db, fleet, settings, dirty, "clean", "cleaning after lease",
                         operator, runner_factory, clock)  # fmt: skip
    states = handover.node_states(db, fleet, now_ts=clock())
    due = due_for_schedule(fleet, states, settings, clock())
    if due:
        runs += _try(db, fleet, settings, due, config.schedule.level, "schedule",
                     operator, runner_factory, clock)  # fmt: skip
    return runs


def _try(
    db: sqlite_utils.Database,
    fleet: Fleet,
    settings: ValidationSettings,
    hosts: list[str],
    level: str,
    reason: str,
    operator: str,
    runner_factory: RunnerFactory,
    clock: Callable[[], float],
) -> list[store.RunRecord]:
    try:
        return [
            validate_hosts(
                db, fleet, hosts, level=level, operator=operator, reason=reason,
                runner_factory=runner_factory, settings=settings, clock=clock,
            )
        ]  # fmt: skip
    except OpsconsoleError as exc:
        log.warning("%s run on %d node(s) not started: %s", reason, len(hosts), exc)
        return []


class HandoverWorker:
    """`run_due` every `interval_s` on a thread of its own with its own store connection,
    beside the poller in `opsconsole poll` and the console. Several consoles on one store
    are safe: a node already held by a run is refused to the second one."""

    def __init__(
        self,
        open_db: Callable[[], sqlite_utils.Database],
        fleet: Fleet,
        settings: ValidationSettings,
        *,
        operator: str,
        interval_s: float = 10.0,
        runner_factory: RunnerFactory = ssh_runner,
        on_runs: Callable[[list[store.RunRecord]], None] | None = None,
    ):
        self._open_db = open_db
        self._fleet = fleet
        self._settings = settings
        self._operator = operator
        self._interval_s = interval_s
        self._runner_factory = runner_factory
        self._on_runs = on_runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def wanted(self) -> bool:
        config = self._settings.config
        return config.clean_after_lease or config.schedule.enabled

    def start(self) -> None:
        if not self.wanted or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="handover", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        db = self._open_db()
        try:
            while not self._stop.is_set():
                try:
                    runs = run_due(
                        db, self._fleet, self._settings, operator=self._operator,
                        runner_factory=self._runner_factory,
                    )  # fmt: skip
                    self.last_error = None
                    if runs and self._on_runs is not None:
                        self._on_runs(runs)
                except OpsconsoleError as exc:
                    self.last_error = str(exc)
                    log.warning("handover: %s", exc)
                except Exception as exc:  # a bug must not kill the thread or tear the screen
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("handover pass failed")
                self._stop.wait(self._interval_s)
        finally:
            db.close()


def start_handover_worker(
    fleet: Fleet,
    store_path: str | Path,
    *,
    operator: str,
    interval_s: float = 10.0,
    on_runs: Callable[[list[store.RunRecord]], None] | None = None,
) -> HandoverWorker | None:
    """The worker for a console or `opsconsole poll`, started; None when `[validation]`
    asks for neither cleaning nor scheduled checks (nothing to do)."""
    from opsconsole.store import open_store
    from opsconsole.validate.settings import validation_settings

    settings = validation_settings(fleet)
    worker = HandoverWorker(
        lambda: open_store(store_path), fleet, settings, operator=operator,
        interval_s=interval_s, on_runs=on_runs,
    )  # fmt: skip
    if not worker.wanted:
        return None
    worker.start()
    return worker
