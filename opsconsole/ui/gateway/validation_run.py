"""A validation run started from the console (host view, `v`): on a thread worker with a
store connection of its own, since a run takes seconds to minutes and must not hold the
lease desk's lock (every lease read would wait behind it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from opsconsole.config import Fleet
from opsconsole.store import open_store
from opsconsole.validate.service import RunnerFactory, ssh_runner, validate_hosts
from opsconsole.validate.store import RunRecord

RUNNER_FACTORY: RunnerFactory = ssh_runner
"""How runs reach hosts; tests put a fake here."""


def run_validation(
    store_path: str | Path,
    fleet: Fleet,
    hosts: list[str],
    *,
    level: str,
    operator: str,
    clock: Callable[[], float] = time.time,
) -> RunRecord:
    """The finished run; ValidateError (one line) when it is refused."""
    db = open_store(store_path)
    try:
        return validate_hosts(
            db, fleet, hosts, level=level, operator=operator, runner_factory=RUNNER_FACTORY,
            clock=clock,
        )  # fmt: skip
    finally:
        db.close()


def run_line(run: RunRecord) -> str:
    return f"validation run {run.id} ({run.level}) on {', '.join(run.hosts)}: {run.state}" + (
        f" — {run.summary}" if run.summary else ""
    )
