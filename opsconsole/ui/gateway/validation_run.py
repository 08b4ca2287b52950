"""A validation run started from the console (host view, `v`): asked through the gateway
(`LeaseDesk.validate`), on a connection of its own (`StoreGateway.call_apart`), since a run
takes seconds to minutes and must not hold the lock every lease read waits on."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

from opsconsole.config import Fleet
from opsconsole.validate.service import RunnerFactory, ssh_runner, validate_hosts
from opsconsole.validate.store import RunRecord

RUNNER_FACTORY: RunnerFactory = ssh_runner
"""How runs reach hosts; tests put a fake here."""


def run_validation(
    db: sqlite_utils.Database,
    fleet: Fleet,
    hosts: list[str],
    *,
    level: str,
    operator: str,
    clock: Callable[[], float] = time.time,
) -> RunRecord:
    """The finished run; ValidateError (one line) when it is refused."""
    return validate_hosts(
        db, fleet, hosts, level=level, operator=operator, runner_factory=RUNNER_FACTORY,
        clock=clock,
    )  # fmt: skip


def run_line(run: RunRecord) -> str:
    return f"validation run {run.id} ({run.level}) on {', '.join(run.hosts)}: {run.state}" + (
        f" — {run.summary}" if run.summary else ""
    )
