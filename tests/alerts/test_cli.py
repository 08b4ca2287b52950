"""The alerts commands as an operator runs them (in-process through `main(argv)`, one
real subprocess, on a real SQLite file): results as text or JSON, and every refusal one
line on stderr, exit 1, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsconsole.alerts import Condition, apply_conditions, resolve
from opsconsole.store import open_store
from tests.support.cli import CliResult, run_cli

CONFIG = """
operator = "{operator}"
[store]
path = "ops.db"
[[sites]]
name = "SG1"
[[racks]]
names = "sg1-r01"
site = "SG1"
leaf = "leaf-01"
[host_classes.h200]
gpus = 8
gpu_model = "H200"
[[hosts]]
names = "sg1-r01-n[01-03]"
rack = "sg1-r01"
class = "h200"
"""

N1, N2, N3 = "sg1-r01-n01", "sg1-r01-n02", "sg1-r01-n03"


def labels(host: str) -> dict[str, str]:
    return {"site": "SG1", "rack": "sg1-r01", "host": host, "gpu": "0"}


HOT = Condition(
    rule="gpu_temp_high",
    severity="warning",
    kind="condition",
    labels=labels(N1),
    summary=f"{N1} GPU 0: hot",
)
IMPACT = {"event": "79@1", "code": "79", "cause": "hardware", "tenant": "acme,globex"}
XID = Condition(
    rule="xid_hardware",
    severity="critical",
    kind="event",
    labels=labels(N2) | IMPACT | {"leases": "7,9"},
    summary="XID 79",
)
OLD = Condition(
    rule="xid_hardware",
    severity="critical",
    kind="event",
    labels=labels(N3) | {"event": "48@1"},
    summary="XID 48",
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """Alert 1: firing on n01; alert 2: firing XID on n02; alert 3: resolved on n03.
    Seeded once through the API; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("seed") / "ops.db"
    db = open_store(path)
    now = time.time() - 60
    apply_conditions(db, [HOT, XID, OLD], now)
    resolve(db, 3, "carol", "replaced the GPU", now_ts=now + 1)
    db.close()
    return path


@pytest.fixture
def cli(tmp_path: Path, seeded: Path):
    shutil.copy(seeded, tmp_path / "ops.db")
    for name in ("alice", "bob"):
        (tmp_path / f"{name}.toml").write_text(CONFIG.format(operator=name))
    env = {"OPSCONSOLE_CONFIG": str(tmp_path / "alice.toml")}

    def run(*args: str) -> CliResult:
        return run_cli("alerts", *args, env=env, cwd=tmp_path)

    run.db_path = tmp_path / "ops.db"  # type: ignore[attr-defined]
    run.bob = str(tmp_path / "bob.toml")  # type: ignore[attr-defined]
    return run


def dump(path: Path) -> list[tuple]:
    """Every row of the alert and silence tables, to show a refusal wrote nothing."""
    with sqlite3.connect(path) as conn:
        return [
            row
            for t in ("alerts", "alert_history", "silences")
            for row in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")
        ]


def ok_json(result: CliResult):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: CliResult, *words: str) -> None:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    not_found = lines[0].startswith("opsconsole: no ")  # exit 3 not_found, 4 refused
    assert result.returncode == (3 if not_found else 4), (result.stdout, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_list_json_fields_and_filters(cli):
    alerts = ok_json(cli("list", "--json"))
    assert sorted(a["id"] for a in alerts) == [1, 2]
    one = next(a for a in alerts if a["id"] == 1)
    assert one["rule"] == "gpu_temp_high"
    assert one["state"] == "firing"
    assert one["severity"] == "warning"
    assert one["labels"] == labels(N1)
    assert one["summary"] == f"{N1} GPU 0: hot"
    assert one["acked_by"] is None and one["resolved_ts"] is None

    assert [a["id"] for a in ok_json(cli("list", "--state", "resolved", "--json"))] == [3]
    assert sorted(a["id"] for a in ok_json(cli("list", "--state", "all", "--json"))) == [1, 2, 3]
    assert [a["id"] for a in ok_json(cli("list", "--host", N2, "--json"))] == [2]
    text = cli("list")
    assert text.returncode == 0 and "gpu_temp_high" in text.stdout and N1 in text.stdout


def test_show_includes_history(cli):
    shown = ok_json(cli("show", "3", "--json"))
    assert shown["state"] == "resolved"
    assert (shown["resolved_by"], shown["resolve_comment"]) == ("carol", "replaced the GPU")
    steps = [(h["from_state"], h["to_state"], h["operator"]) for h in shown["history"]]
    assert steps == [(None, "firing", None), ("firing", "resolved", "carol")]
    text = cli("show", "3")
    assert text.returncode == 0 and "replaced the GPU" in text.stdout


def test_ack_then_list_shows_owner_and_comment(cli):
    acked = ok_json(cli("ack", "1", "--comment", "looking at fans", "--timeout", "2h", "--json"))
    assert (acked["state"], acked["acked_by"]) == ("acknowledged", "alice")
    assert acked["ack_expires_ts"] == pytest.approx(acked["acked_ts"] + 7200)
    (listed,) = [a for a in ok_json(cli("list", "--json")) if a["id"] == 1]
    assert (listed["acked_by"], listed["ack_comment"]) == ("alice", "looking at fans")
    text = cli("list", "--state", "acknowledged")
    assert "alice" in text.stdout and "looking at fans" in text.stdout


def test_ack_refusals_are_one_line_and_write_nothing(cli):
    before = dump(cli.db_path)
    refused(cli("ack", "99", "--comment", "x"), "no alert 99")
    refused(cli("ack", "3", "--comment", "x"), "already resolved")
    refused(cli("resolve", "3", "--comment", "x"), "already resolved")
    refused(cli("ack", "1", "--comment", "x", "--timeout", "soon"), "not a duration")
    refused(cli("show", "99"), "no alert 99")
    assert dump(cli.db_path) == before


def test_second_operator_is_told_who_acknowledged(cli):
    ok_json(cli("ack", "2", "--comment", "RMA opened", "--json"))
    before = dump(cli.db_path)
    refused(cli("ack", "2", "--comment", "mine", "--config", cli.bob), "alice", "RMA opened")
    assert dump(cli.db_path) == before


def test_resolve(cli):
    done = ok_json(cli("resolve", "2", "--comment", "reseated", "--config", cli.bob, "--json"))
    assert (done["state"], done["resolved_by"], done["resolve_comment"]) == (
        "resolved",
        "bob",
        "reseated",
    )


def test_bad_silences_are_refused(cli):
    before = dump(cli.db_path)
    refused(cli("silence", "--end", "+1h", "--comment", "x"), "at least one matcher")
    refused(
        cli("silence", "--match", f"host={N1}", "--start", "+2h", "--end", "+1h", "--comment", "x"),
        "end after it starts",
    )
    refused(cli("silence", "--match", f"host={N1}", "--end", "now", "--comment", "x"))
    refused(cli("silence", "--match", "colour=red", "--end", "+1h", "--comment", "x"), "colour")
    refused(cli("silence", "--match", "host", "--end", "+1h", "--comment", "x"), "KEY=VALUE")
    refused(cli("unsilence", "42"), "no silence 42")
    assert dump(cli.db_path) == before


def test_silence_list_and_unsilence(cli):
    made = ok_json(
        cli(
            "silence",
            "--match",
            f"host={N1}",
            "rule=gpu_temp_high",
            "--end",
            "+1h",
            "--comment",
            "fan swap",
            "--json",
        )
    )
    assert made["matchers"] == {"host": N1, "rule": "gpu_temp_high"}
    (listed,) = ok_json(cli("silences", "--json"))
    assert (listed["id"], listed["matchers"], listed["created_by"]) == (
        made["id"],
        made["matchers"],
        "alice",
    )
    assert listed["comment"] == "fan swap" and listed["active"] is True
    assert "fan swap" in cli("silences").stdout

    assert cli("unsilence", str(made["id"])).returncode == 0
    assert ok_json(cli("silences", "--json")) == []
    refused(cli("unsilence", str(made["id"])), "already ended")


def test_list_filters_by_label_tenant_severity_and_state(cli):
    def listed(*args: str) -> list[int]:
        return sorted(a["id"] for a in ok_json(cli("list", *args, "--json")))

    assert listed("--site", "SG1") == [1, 2]
    assert listed("--rack", "sg1-r01", "--host", N1) == [1]
    assert listed("--tenant", "globex") == [2]  # one of the names in "acme,globex"
    assert listed("--tenant", "acm") == []
    assert listed("--severity", "critical") == [2]  # 3 is critical too, but resolved
    assert listed("--severity", "critical", "--state", "all") == [2, 3]
    assert listed("--state", "silenced") == []
    ok_json(cli("silence", "--match", f"host={N1}", "--end", "+1h", "--comment", "fans", "--json"))
    assert listed("--state", "silenced") == [1]
    (one,) = [a for a in ok_json(cli("list", "--json")) if a["id"] == 1]
    assert one["silenced_now_by"] == 1 and one["silenced_by"] is None  # fired before it
    text = cli("list", "--state", "silenced").stdout
    assert "firing (silenced)" in text
    refused_args = cli("list", "--severity", "loud")
    assert refused_args.returncode != 0 and "Traceback" not in refused_args.stderr


def test_show_names_tenants_leases_and_xid_advice(cli):
    shown = ok_json(cli("show", "2", "--json"))
    assert shown["labels"]["tenant"] == "acme,globex" and shown["labels"]["leases"] == "7,9"
    assert shown["xid"] == {
        "code": 79,
        "meaning": "GPU has fallen off the bus",
        "cause": "hardware",
        "action": "reboot the node",
        "severity": "critical",
    }
    text = cli("show", "2").stdout
    for line in ("tenants    acme, globex", "leases     7, 9", "xid        79: GPU has fallen",
                 "cause      hardware", "action     reboot the node", "history"):  # fmt: skip
        assert line in text, text
    assert ok_json(cli("show", "1", "--json"))["xid"] is None
    assert "xid " not in cli("show", "1").stdout


def test_unack_fires_again_and_is_in_the_history(cli):
    ok_json(cli("ack", "2", "--comment", "RMA opened", "--json"))
    back = ok_json(cli("unack", "2", "--comment", "wrong alert", "--config", cli.bob, "--json"))
    assert (back["state"], back["acked_by"], back["ack_comment"]) == ("firing", None, None)
    last = ok_json(cli("show", "2", "--json"))["history"][-1]
    assert (last["from_state"], last["to_state"], last["operator"], last["comment"]) == (
        "acknowledged",
        "firing",
        "bob",
        "wrong alert",
    )
    text = cli("unack", "2", "--comment", "again")
    refused(text, "alert 2 is not acknowledged (it is firing)")


def test_unack_refusals_are_one_line_and_write_nothing(cli):
    before = dump(cli.db_path)
    refused(cli("unack", "99", "--comment", "x"), "no alert 99")
    refused(cli("unack", "1", "--comment", "x"), "not acknowledged", "firing")
    refused(cli("unack", "3", "--comment", "x"), "not acknowledged", "resolved")
    refused(cli("unack", "1", "--comment", "  "), "needs a comment")
    assert dump(cli.db_path) == before


def test_silences_all_shows_ended_ones_kept(cli):
    made = ok_json(
        cli("silence", "--match", "rack=sg1-r01", "--end", "+1h", "--comment", "PDU", "--json")
    )
    assert made["created_by"] == "alice" and made["state"] == "in force"
    assert cli("unsilence", str(made["id"])).returncode == 0
    assert ok_json(cli("silences", "--json")) == []
    (kept,) = ok_json(cli("silences", "--all", "--json"))
    assert (kept["id"], kept["state"], kept["active"]) == (made["id"], "ended", False)
    assert kept["created_ts"] == pytest.approx(made["created_ts"])
    assert kept["end_ts"] < kept["start_ts"] + 3600
    text = cli("silences", "--all").stdout
    assert "ended" in text and "PDU" in text and "CREATED" in text


def test_ack_without_timeout_takes_the_configs_default(cli, tmp_path: Path):
    config = tmp_path / "carol.toml"
    config.write_text(CONFIG.format(operator="carol") + "[alerts]\nack_timeout_default_s = 900\n")
    acked = ok_json(cli("ack", "1", "--comment", "on it", "--config", str(config), "--json"))
    assert acked["acked_by"] == "carol"
    assert acked["ack_expires_ts"] == pytest.approx(acked["acked_ts"] + 900)


@pytest.mark.slow
def test_the_alerts_commands_run_as_a_real_process(tmp_path: Path, seeded: Path):
    """The one subprocess of this group: the entry point, exit status and one-line error."""
    shutil.copy(seeded, tmp_path / "ops.db")
    (tmp_path / "alice.toml").write_text(CONFIG.format(operator="alice"))
    env = {**os.environ, "OPSCONSOLE_CONFIG": str(tmp_path / "alice.toml")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsconsole", "alerts", *args],
            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
        )  # fmt: skip

    assert sorted(a["id"] for a in ok_json(run("list", "--json"))) == [1, 2]
    refused(run("ack", "9", "--comment", "on it"), "no alert 9")
