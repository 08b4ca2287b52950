"""The lease commands as an operator runs them (in-process through `main(argv)`; one real
subprocess for the entry point): results as text or JSON, and every bad input one line
on stderr, exit 1, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from opsconsole.config import fleet_from_dict
from opsconsole.leases import create_tenant, drain
from opsconsole.store import open_store
from tests.support.cli import CliResult, run_cli

CONFIG = """
operator = "alice"
[store]
path = "ops.db"
[[sites]]
name = "SG1"
[[sites]]
name = "MY1"
[[racks]]
names = "sg1-r[01-02]"
site = "SG1"
leaf = "leaf-01"
[[racks]]
names = "my1-r01"
site = "MY1"
[host_classes.h200]
gpus = 8
gpu_model = "H200"
[[hosts]]
names = "sg1-r01-n[01-04]"
rack = "sg1-r01"
class = "h200"
[[hosts]]
names = "sg1-r02-n[01-04]"
rack = "sg1-r02"
class = "h200"
[[hosts]]
names = "my1-r01-n[01-02]"
rack = "my1-r01"
class = "h200"
"""


def make_cli(directory: Path):
    config = directory / "opsconsole.toml"
    config.write_text(CONFIG)
    env = {"OPSCONSOLE_CONFIG": str(config)}

    def run(*args: str) -> CliResult:
        return run_cli(*args, env=env, cwd=directory)

    run.db_path = directory / "ops.db"  # type: ignore[attr-defined]
    return run


@pytest.fixture
def cli(tmp_path: Path):
    return make_cli(tmp_path)


@pytest.fixture(scope="module")
def prepared_store(tmp_path_factory) -> Path:
    """Two tenants and a drained GPU, set up once through the API (each CLI start costs
    most of a second); every error case runs against its own copy."""
    directory = tmp_path_factory.mktemp("prepared")
    fleet = fleet_from_dict(tomllib.loads(CONFIG), directory / "opsconsole.toml")
    db = open_store(directory / "ops.db")
    create_tenant(db, "acme", gpu_quota=40, allowed_sites=["SG1"], operator="alice")
    create_tenant(db, "globex", gpu_quota=1000, operator="alice")
    drain(db, fleet, "sg1-r01-n01", 3, reason="XID 79", operator="alice")
    db.close()  # the last connection checkpoints the WAL into the file
    return directory / "ops.db"


def ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def counts(path: Path) -> tuple:
    conn = sqlite3.connect(path)
    try:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("tenants", "leases", "lease_slots", "drains", "audit_log")
        )
    finally:
        conn.close()


def test_a_day_of_operations(cli):
    ok(cli("tenant", "create", "acme", "--quota", "40", "--sites", "SG1", "--colour", "teal"))
    ok(cli("tenant", "create", "globex", "--quota", "100"))
    request = ("--tenant", "acme", "--end", "+7d", "--nodes", "2", "--json")
    preview = json.loads(ok(cli("lease", "preview", *request)))
    assert preview["gpu_count"] == 16 and "rack" in preview["explanation"]
    assert counts(cli.db_path)[1] == 0  # preview wrote nothing
    lease = json.loads(ok(cli("lease", "allocate", *request)))
    assert [s["host"] for s in lease["slots"]][::8] == preview["hosts"]
    assert lease["state"] == "active" and lease["created_by"] == "alice"
    reserve = ("--tenant", "globex", "--start", "+1d", "--end", "+2d", "--slot", "sg1-r02-n04:0-1")
    ok(cli("lease", "allocate", *reserve))
    out = ok(cli("drain", "sg1-r02-n04", "--reason", "PSU swap", "--until", "+3d"))
    assert "leases affected: 2" in out
    listing = json.loads(ok(cli("lease", "list", "--json")))
    shown = [(x["id"], x["state"], x["affected_by_drains"]) for x in listing]
    assert shown == [(1, "active", []), (2, "reserved", [1])]
    ok(cli("lease", "extend", "1", "--by", "1d"))
    ok(cli("lease", "cancel", "2"))
    ok(cli("lease", "release", "1"))
    ok(cli("undrain", "sg1-r02-n04"))
    usage = ok(cli("usage", "--csv"))
    assert usage.splitlines()[0].startswith("tenant,since_ts,until_ts,leases,gpu_hours")
    verified = json.loads(ok(cli("audit", "verify", "--json")))
    assert verified["ok"] and verified["rows"] == 9
    assert "lease.release" in ok(cli("audit", "list", "--subject", "lease:1"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lease", "allocate", "--tenant", "nobody", "--end", "+1d", "--gpus", "1"),
         'unknown tenant "nobody"'),
        (("lease", "allocate", "--tenant", "acme", "--start", "+2d", "--end", "+1d", "--gpus", "1"),
         "the end must be after the start"),
        (("lease", "allocate", "--tenant", "acme", "--start", "2020-01-01", "--end", "2020-01-02",
          "--gpus", "1"), "is in the past"),
        (("lease", "allocate", "--tenant", "globex", "--end", "+1d", "--gpus", "100"),
         "only 79 free (sg1-r02 32, sg1-r01 31, my1-r01 16); 1 more GPU(s) are drained"),
        (("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--gpus", "41"),
         "quota exceeded: acme may hold 40 GPUs at once"),
        (("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--slot", "sg1-r01-n01:3"),
         "sg1-r01-n01:3 is drained (drain 1); give an override reason"),
        (("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--slot", "my1-r01-n01"),
         "is in site MY1; acme may use SG1 only"),
        (("lease", "allocate", "--tenant", "globex", "--end", "+1d", "--gpus", "9",
          "--within", "node"),
         "cannot place 9 GPU(s) within one node: at most 8 free in one node (my1-r01-n01)"),
        (("lease", "preview", "--tenant", "globex", "--end", "+1d", "--nodes", "5",
          "--within", "rack", "--site", "SG1"),
         "cannot place 5 whole node(s) within one rack: at most 4 whole node(s) free in one rack"
         " (rack sg1-r02: sg1-r02-n[01-04])"),
        (("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--gpus", "1", "--site", "MY1"),
         "site MY1: acme may use SG1 only"),
        (("lease", "allocate", "--tenant", "acme", "--end", "tomorrow", "--gpus", "1"),
         '"tomorrow" is not a time'),
        (("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--slot", "gpu-host-9"),
         'unknown host "gpu-host-9"'),
        (("lease", "extend", "42", "--end", "+9d"), "no lease 42"),
        (("tenant", "create", "acme", "--quota", "1"), 'tenant "acme" already exists'),
        (("tenant", "create", "initech", "--quota", "1", "--sites", "XX1"), 'unknown site "XX1"'),
        (("drain", "sg1-r01-n02"), "a drain needs a reason"),
        (("undrain", "sg1-r01-n02"), "sg1-r01-n02 has no drain to lift"),
        (("usage", "--tenant", "nobody"), 'unknown tenant "nobody"'),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_1_and_writes_nothing(tmp_path, prepared_store, args, message):
    cli = make_cli(tmp_path)
    shutil.copy(prepared_store, cli.db_path)
    before = counts(cli.db_path)
    result = cli(*args)
    not_found = message.startswith(("unknown tenant", "unknown host", "unknown site", "no lease"))
    assert result.returncode == (3 if not_found else 4), result.stdout  # not_found, refused
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("opsconsole: ") and message in result.stderr
    assert result.stdout == ""
    assert counts(cli.db_path) == before


def test_preview_within_a_site_and_rack(tmp_path, prepared_store):
    cli = make_cli(tmp_path)
    shutil.copy(prepared_store, cli.db_path)
    args = ("--tenant", "globex", "--end", "+1d", "--gpus", "24", "--site", "sg1")
    data = json.loads(ok(cli("lease", "preview", *args, "--within", "rack", "--json")))
    assert data["gpu_count"] == 24 and "in rack sg1-r01" in data["explanation"]
    text = ok(cli("lease", "preview", *args, "--within", "rack"))
    assert "sg1-r01-n[02-04]:0-7" in text  # the leases layer's slot ranges


def test_audit_verify_names_a_tampered_row(cli):
    ok(cli("tenant", "create", "acme", "--quota", "4"))
    ok(cli("tenant", "update", "acme", "--quota", "8"))
    conn = sqlite3.connect(cli.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET after = replace(after, '8', '800') WHERE id = 2")
    conn.close()
    result = cli("audit", "verify")
    assert result.returncode == 1
    assert result.stderr == (
        "opsconsole: audit log tampered: audit row 2 was edited (its hash does not match)\n"
    )


@pytest.mark.slow
def test_the_lease_commands_run_as_a_real_process(tmp_path):
    """The one subprocess of this group: the entry point, the config from the environment,
    the exit status and the one-line error of a process."""
    config = tmp_path / "opsconsole.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "OPSCONSOLE_CONFIG": str(config)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsconsole", *args],
            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
        )  # fmt: skip

    assert run("tenant", "create", "acme", "--quota", "8").returncode == 0
    allocated = run("lease", "allocate", "--tenant", "acme", "--end", "+1d", "--gpus", "2",
                    "--json")  # fmt: skip
    assert allocated.returncode == 0, allocated.stderr
    assert json.loads(allocated.stdout)["gpu_count"] == 2
    missing = run("lease", "extend", "42", "--end", "+9d")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr == "opsconsole: no lease 42\n"
