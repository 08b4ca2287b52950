"""`opsconsole console` and `opsconsole demo` as command lines (the running console is
covered by the Pilot and tmux tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opsconsole.cli import build_parser
from opsconsole.cli.demo import stop_simulator, wait_for_ready
from opsconsole.errors import SimError


def test_console_and_demo_are_sub_commands():
    parser = build_parser()
    args = parser.parse_args(["console", "--config", "x.toml", "--read-only"])
    assert args.read_only and args.config == "x.toml"
    args = parser.parse_args(["demo"])
    assert (args.hosts, args.seed, args.scenario) == (64, 0, "calm")
    args = parser.parse_args(["demo", "--hosts", "16", "--scenario", "xid79"])
    assert (args.hosts, args.scenario) == (16, "xid79")


def test_demo_refuses_an_unknown_scenario(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--scenario", "meteor-strike"])
    assert "thermal-runaway" in capsys.readouterr().err


def test_a_simulator_that_dies_early_is_one_line(tmp_path):
    log = tmp_path / "sim.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "print('port range exhausted'); raise SystemExit(3)"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with pytest.raises(SimError, match="port range exhausted"):
            wait_for_ready(process, tmp_path / "ready", log, hosts=1)
    stop_simulator(process)
    assert process.returncode == 3


def test_stop_simulator_terminates_by_pid():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    stop_simulator(process)
    assert process.returncode is not None


def test_console_gives_leases_a_connection_of_their_own(tmp_path):
    from opsconsole.cli.console import build_console
    from tests.ui.synthetic import synthetic_fleet

    app, release_store = build_console(synthetic_fleet(4), store_path=tmp_path / "store.db")
    try:
        assert app.leases.desk is not None and app.model.leases_shown
        # not the ingest thread's connection: transactions belong to a connection
        assert app.leases.desk.db.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        release_store()


def test_demo_seeds_tenants_a_lease_and_a_reservation(tmp_path):
    from opsconsole.cli.demo import seed_demo_leases
    from opsconsole.leases import list_leases, list_tenants
    from opsconsole.store import open_store
    from tests.ui.synthetic import T0, synthetic_fleet

    seed_demo_leases(tmp_path / "demo.db", synthetic_fleet(64), T0)
    db = open_store(tmp_path / "demo.db")
    try:
        tenants = {t.name: t for t in list_tenants(db)}
        assert set(tenants) == {"aurora-labs", "kestrel-ai", "tern-research"}
        assert tenants["aurora-labs"].allowed_sites == ("SG1",)
        assert tenants["aurora-labs"].gpu_quota == 256
        states = [lease.state(T0) for lease in list_leases(db, now_ts=T0)]
        assert states == ["active", "reserved"]
    finally:
        db.close()
    seed_demo_leases(tmp_path / "tiny.db", synthetic_fleet(1), T0)  # too small to lease: fine
