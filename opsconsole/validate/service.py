"""One validation run from start to verdict: record it, hold its nodes (refused on leased
GPUs unless overridden), run the checks over SSH, store every check with its raw output,
and hand each node's outcome to the leases layer (pass recorded, failure drained).

Synchronous on purpose: the CLI, the console's thread workers and the handover worker
call it from their own threads; the SSH part runs in an event loop of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import sqlite_utils

from opsconsole.alerts.validation_events import record_validation_failure
from opsconsole.collect.ssh import SshConnector
from opsconsole.config import Fleet, Host
from opsconsole.errors import LeaseError, StoreError, ValidateError
from opsconsole.leases import handover
from opsconsole.validate import store
from opsconsole.validate.model import (
    LEVELS,
    CheckResult,
    CheckStatus,
    Level,
    RunState,
    blamed,
    failure_reason,
    host_verdicts,
)
from opsconsole.validate.runner import CommandRunner, SshCommandRunner, run_checks
from opsconsole.validate.settings import ValidationSettings, validation_settings

RunnerFactory = Callable[[Fleet], CommandRunner]
log = logging.getLogger("opsconsole.validate")


def ssh_runner(fleet: Fleet) -> CommandRunner:
    return SshCommandRunner(SshConnector(fleet.config.ssh, fleet.path.parent))


def resolve_hosts(fleet: Fleet, names: list[str]) -> list[Host]:
    hosts = []
    for name in dict.fromkeys(names):
        try:
            hosts.append(fleet.host(name))
        except KeyError:
            raise ValidateError(f'unknown host "{name}"') from None
    if not hosts:
        raise ValidateError("name at least one host to validate")
    return hosts


def validate_hosts(
    db: sqlite_utils.Database,
    fleet: Fleet,
    names: list[str],
    *,
    level: str = "quick",
    fabric: bool = False,
    operator: str,
    reason: str = "operator",
    override_reason: str | None = None,
    runner_factory: RunnerFactory = ssh_runner,
    settings: ValidationSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> store.RunRecord:
    """Run `level` ("quick", "standard", "long", or "clean" after a lease) on the hosts.
    ValidateError if it cannot start (unknown host or level, leased GPUs without an
    override, a node already under test); the refusal is stored as a run too."""
    if level not in {*(str(x) for x in LEVELS), str(Level.CLEAN)}:
        raise ValidateError(f'unknown level "{level}" (quick, standard, long)')
    settings = settings or validation_settings(fleet)
    hosts = resolve_hosts(fleet, names)
    names = [h.name for h in hosts]
    override_reason = " ".join((override_reason or "").split()) or None
    now_ts = clock()
    run_id = store.create_run(
        db, level=level, fabric=fabric, hosts=names, operator=operator, reason=reason,
        override_reason=override_reason, now_ts=now_ts,
    )  # fmt: skip
    kind = "cleaning" if level == Level.CLEAN else "validating"
    try:
        handover.hold_for_run(
            db, fleet, names, kind=kind, run_id=run_id, operator=operator,
            expected_s=settings.run_window_s(level), override_reason=override_reason,
            now_ts=now_ts,
        )  # fmt: skip
    except LeaseError as exc:
        store.refuse_run(db, run_id, str(exc), clock())
        raise ValidateError(f"validation run {run_id} {exc}") from None
    checks: list[CheckResult] = []
    try:
        checks = _run(fleet, settings, runner_factory, hosts, level, fabric)
    finally:
        verdicts = host_verdicts(checks, names) if checks else dict.fromkeys(names, RunState.ERROR)
        state = _run_state(checks, verdicts)
        summary = _summary(checks, verdicts)
        finished_ts = clock()
        store.finish_run(
            db, run_id, state=state, summary=summary,
            verdicts={h: str(v) for h, v in verdicts.items()}, checks=checks, now_ts=finished_ts,
        )  # fmt: skip
        handover.finish_run(
            db,
            fleet,
            run_id,
            level,
            [
                handover.HostOutcome(h, str(v), failure_reason(checks, h))
                for h, v in verdicts.items()
            ],
            operator=operator,
            now_ts=finished_ts,
        )
        _alert_failures(db, fleet, run_id, level, checks, verdicts, finished_ts)
    return store.get_run(db, run_id)


def _alert_failures(
    db: sqlite_utils.Database,
    fleet: Fleet,
    run_id: int,
    level: str,
    checks: list[CheckResult],
    verdicts: Mapping[str, RunState],
    now_ts: float,
) -> None:
    """One `validation_failed` alert per failed node; a store error costs the alert only."""
    for name, verdict in verdicts.items():
        if verdict != RunState.FAILED:
            continue
        host = fleet.host(name)
        try:
            record_validation_failure(
                db, host=name, site=host.site, rack=host.rack, run_id=run_id, level=level,
                reason=failure_reason(checks, name), now_ts=now_ts,
            )  # fmt: skip
        except StoreError as exc:
            log.warning("validation run %d: alert for %s not recorded: %s", run_id, name, exc)


def _run(
    fleet: Fleet,
    settings: ValidationSettings,
    runner_factory: RunnerFactory,
    hosts: list[Host],
    level: str,
    fabric: bool,
) -> list[CheckResult]:
    async def main() -> list[CheckResult]:
        runner = runner_factory(fleet)
        try:
            return await run_checks(
                fleet, settings, runner, hosts, level=level, fabric=fabric,
                kill_leftovers=settings.config.kill_leftover_processes,
            )  # fmt: skip
        finally:
            await runner.close()

    return asyncio.run(main())


def _run_state(checks: list[CheckResult], verdicts: dict[str, RunState]) -> RunState:
    values = set(verdicts.values())
    if RunState.FAILED in values or any(c.status == CheckStatus.FAIL for c in checks):
        return RunState.FAILED
    if RunState.ERROR in values:
        return RunState.ERROR
    return RunState.PASSED


def _summary(checks: list[CheckResult], verdicts: dict[str, RunState]) -> str:
    counts = {state: sum(1 for v in verdicts.values() if v == state) for state in RunState}
    words = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    failed = [h for h, v in verdicts.items() if v == RunState.FAILED]
    if failed:
        words += f"; {failed[0]}: {failure_reason(checks, failed[0])}"
    loose = [c for c in checks if c.status == CheckStatus.FAIL and not blamed(c)]
    if loose:
        words += f"; {loose[0].name} (not pinned on a node): {loose[0].summary}"
    return words
