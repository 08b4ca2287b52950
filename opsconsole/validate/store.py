"""Validation runs in the store: `validation_runs` (one row per run: level, hosts, state,
operator, verdict per host) and `validation_checks` (one row per check with the tool's
raw output and figures). Only this module queries them (migration m0011)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from opsconsole.errors import ValidateError
from opsconsole.store.transaction import write_transaction
from opsconsole.validate.model import CheckResult, CheckStatus, RunState

CheckRow = tuple[str, list[str], str, str, list[str]]
"""(name, hosts, status, summary, blame) of one stored check."""

REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    level: str
    fabric: bool
    hosts: tuple[str, ...]
    state: str
    """running, passed, failed, error, refused."""
    operator: str
    reason: str
    """Why it ran: "operator", "schedule", "cleaning after lease 7"; or why it was refused."""
    override_reason: str | None
    summary: str
    verdicts: dict[str, str]
    started_ts: float
    finished_ts: float | None
    checks: tuple[CheckResult, ...] = ()

    def as_dict(self, raw: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "fabric": self.fabric,
            "hosts": list(self.hosts),
            "state": self.state,
            "operator": self.operator,
            "reason": self.reason,
            "override_reason": self.override_reason,
            "summary": self.summary,
            "verdicts": dict(self.verdicts),
            "started_ts": self.started_ts,
            "finished_ts": self.finished_ts,
            "checks": [c.as_dict(raw=raw) for c in self.checks],
        }


_COLUMNS = (
    "id, level, fabric, hosts, state, operator, reason, override_reason, summary, verdicts,"
    " started_ts, finished_ts"
)


def create_run(
    db: sqlite_utils.Database,
    *,
    level: str,
    fabric: bool,
    hosts: list[str],
    operator: str,
    reason: str,
    override_reason: str | None,
    now_ts: float,
) -> int:
    with write_transaction(db, "recording a validation run") as tx:
        cursor = tx.execute(
            "INSERT INTO validation_runs (level, fabric, hosts, state, operator, reason,"
            " override_reason, started_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                level, int(fabric), json.dumps(hosts), RunState.RUNNING, operator, reason,
                override_reason, now_ts,
            ),
        )  # fmt: skip
        return int(cursor.lastrowid or 0)


def refuse_run(db: sqlite_utils.Database, run_id: int, why: str, now_ts: float) -> None:
    with write_transaction(db, f"recording validation run {run_id}") as tx:
        tx.execute(
            "UPDATE validation_runs SET state = ?, summary = ?, finished_ts = ? WHERE id = ?",
            (REFUSED, why, now_ts, run_id),
        )


def finish_run(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    state: RunState,
    summary: str,
    verdicts: dict[str, str],
    checks: list[CheckResult],
    now_ts: float,
) -> None:
    with write_transaction(db, f"recording validation run {run_id}") as tx:
        tx.executemany(
            "INSERT INTO validation_checks (run_id, seq, name, hosts, status, summary, figures,"
            " command, raw, exit_status, blame) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id, seq, c.name, json.dumps(list(c.hosts)), str(c.status), c.summary,
                    json.dumps(c.figures, default=str), c.command, c.raw, c.exit_status,
                    json.dumps(list(c.blame)),
                )
                for seq, c in enumerate(checks)
            ],
        )  # fmt: skip
        tx.execute(
            "UPDATE validation_runs SET state = ?, summary = ?, verdicts = ?, finished_ts = ?"
            " WHERE id = ?",
            (str(state), summary, json.dumps(verdicts), now_ts, run_id),
        )


def _record(row: tuple[Any, ...], checks: tuple[CheckResult, ...] = ()) -> RunRecord:
    return RunRecord(
        id=row[0],
        level=row[1],
        fabric=bool(row[2]),
        hosts=tuple(json.loads(row[3])),
        state=row[4],
        operator=row[5],
        reason=row[6],
        override_reason=row[7],
        summary=row[8],
        verdicts=json.loads(row[9]) if row[9] else {},
        started_ts=row[10],
        finished_ts=row[11],
        checks=checks,
    )


def get_run(db: sqlite_utils.Database, run_id: int) -> RunRecord:
    conn: sqlite3.Connection = db.conn
    row = conn.execute(f"SELECT {_COLUMNS} FROM validation_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise ValidateError(f"no validation run {run_id}")
    checks = tuple(
        CheckResult(
            name=c[0], hosts=tuple(json.loads(c[1])), status=CheckStatus(c[2]), summary=c[3],
            figures=json.loads(c[4]), command=c[5], raw=c[6], exit_status=c[7],
            blame=tuple(json.loads(c[8])),
        )
        for c in conn.execute(
            "SELECT name, hosts, status, summary, figures, command, raw, exit_status, blame"
            " FROM validation_checks WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
    )  # fmt: skip
    return _record(row, checks)


def list_runs(
    db: sqlite_utils.Database,
    *,
    host: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """Newest first; `host` matches runs that included it."""
    where, params = [], []
    if host is not None:
        where.append("EXISTS (SELECT 1 FROM json_each(hosts) WHERE value = ?)")
        params.append(host)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    sql = f"SELECT {_COLUMNS} FROM validation_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return [_record(row) for row in db.conn.execute(sql, [*params, limit])]


def last_runs_by_level(db: sqlite_utils.Database, host: str) -> dict[str, RunRecord]:
    """The host's newest finished run per level, with its checks (for the host view)."""
    out: dict[str, RunRecord] = {}
    for run in list_runs(db, host=host, limit=200):
        if run.state in (RunState.RUNNING, REFUSED) or run.level in out:
            continue
        full = get_run(db, run.id)
        checks = tuple(c for c in full.checks if host in c.hosts)
        out[run.level] = _record_with(full, checks)
    return out


def _record_with(run: RunRecord, checks: tuple[CheckResult, ...]) -> RunRecord:
    return RunRecord(
        run.id, run.level, run.fabric, run.hosts, run.state, run.operator, run.reason,
        run.override_reason, run.summary, run.verdicts, run.started_ts, run.finished_ts, checks,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HostRun:
    """A host's newest finished run at one level, for the host view."""

    run_id: int
    level: str
    verdict: str
    """This host's verdict in the run (passed, failed, error)."""
    finished_ts: float
    figures: str
    """The measured figures in a line: failures first, else bandwidths, else DCGM."""


RECENT_RUNS = 5_000
RECENT_HOST_RUNS = 20_000
"""Runs, and (run, host) pairs, looked at for "newest per host and level": weeks of a big
fleet's cleaning and scheduled runs, while a few fleet-wide runs cannot make the
console's 30 s board read slow. A host with no run among them shows none."""
_FIGURE_CHECKS = ("nccl_local", "nccl_fabric", "ib_write_bw", "nvlink", "dcgm")


def latest_by_host(db: sqlite_utils.Database) -> dict[str, dict[str, HostRun]]:
    """host → level → its newest finished run (two queries over the recent runs)."""
    rows = db.conn.execute(
        "SELECT r.id, r.level, r.verdicts, r.finished_ts, j.value FROM validation_runs r,"
        " json_each(r.hosts) j WHERE r.id > (SELECT coalesce(max(id), 0) FROM validation_runs)"
        " - ? AND r.finished_ts IS NOT NULL AND r.state NOT IN ('running', 'refused')"
        " ORDER BY r.id DESC LIMIT ?",
        (RECENT_RUNS, RECENT_HOST_RUNS),
    ).fetchall()
    newest: dict[tuple[str, str], tuple[int, str, float]] = {}
    for run_id, level, verdicts, finished_ts, host in rows:
        newest.setdefault((host, level), (run_id, verdicts, finished_ts))
    run_ids = sorted({v[0] for v in newest.values()})
    checks: dict[int, list[CheckRow]] = {}
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i : i + 500]
        marks = ", ".join("?" for _ in chunk)
        for run_id, name, hosts, status, summary, blame in db.conn.execute(
            "SELECT run_id, name, hosts, status, summary, blame FROM validation_checks"
            f" WHERE run_id IN ({marks}) ORDER BY run_id, seq",
            chunk,
        ):
            checks.setdefault(run_id, []).append(
                (name, json.loads(hosts), status, summary, json.loads(blame))
            )
    out: dict[str, dict[str, HostRun]] = {}
    for (host, level), (run_id, verdicts, finished_ts) in newest.items():
        verdict = (json.loads(verdicts) if verdicts else {}).get(host, "error")
        mine = [c for c in checks.get(run_id, []) if host in (c[4] or c[1])]
        out.setdefault(host, {})[level] = HostRun(
            run_id, level, verdict, finished_ts, _figures(mine)
        )
    return out


def _figures(checks: list[CheckRow]) -> str:
    failed = [f"{name}: {summary}" for name, _h, status, summary, _b in checks if status == "fail"]
    if failed:
        return "; ".join(failed)
    by_name = {name: summary for name, _h, status, summary, _b in checks if status == "pass"}
    shown = [by_name[n] for n in _FIGURE_CHECKS if n in by_name][:3]
    return " · ".join(shown)
