"""What tripped a new operator on the CLI (issue 17), each through `main(argv)` in-process:
relative times in the past, the preview's window, hints that cannot help, updates that
change nothing, a zero quota, the same silence twice, and the configured time zone."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsconsole.cli import main
from opsconsole.leases.times import use_timezone
from tests.leases.test_cli import CONFIG


@pytest.fixture(autouse=True)
def utc_afterwards():
    """The CLI sets the process's zone from its config; leave UTC for other tests."""
    yield
    use_timezone("UTC")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "opsconsole.toml"
    path.write_text(CONFIG)
    return path


def run(config: Path, capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_relative_times_in_the_past_need_no_equals_sign(config, capsys):
    assert run(config, capsys, "tenant", "create", "acme", "--quota", "64")[0] == 0
    code, out, err = run(config, capsys, "usage", "--since", "-2h", "--until", "-1h", "--json")
    assert (code, err) == (0, "")
    code, out, err = run(
        config, capsys, "alerts", "silence", "--match", "rack=sg1-r01",
        "--start", "-2m", "--end", "+1h", "--comment", "PDU swap", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    silence = json.loads(out)
    assert silence["end_ts"] - silence["start_ts"] == pytest.approx(3720, abs=5)


def test_preview_json_has_the_resolved_window(config, capsys):
    run(config, capsys, "tenant", "create", "acme", "--quota", "64")
    code, out, _ = run(
        config, capsys, "lease", "preview", "--tenant", "acme", "--gpus", "2",
        "--start", "2031-01-01T00:00Z", "--end", "2031-01-08T00:00Z", "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert data["start_ts"] == datetime(2031, 1, 1, tzinfo=UTC).timestamp()
    assert data["end_ts"] == datetime(2031, 1, 8, tzinfo=UTC).timestamp()
    assert (data["start"], data["end"]) == ("2031-01-01 00:00Z", "2031-01-08 00:00Z")
    _, out, _ = run(
        config, capsys, "lease", "preview", "--tenant", "acme", "--gpus", "2", "--end", "+1d"
    )
    assert "→" in out.splitlines()[1]  # the text names the window too


def test_no_override_hint_when_an_override_could_not_help(config, capsys):
    run(config, capsys, "tenant", "create", "acme", "--quota", "64")
    assert run(config, capsys, "drain", "sg1-r01-n01:0", "--reason", "RMA")[0] == 0
    code, _, err = run(
        config, capsys, "lease", "preview", "--tenant", "acme", "--gpus", "12",
        "--within", "node", "--end", "+1d",
    )  # fmt: skip
    assert code == 4 and "cannot place 12" in err
    assert "would not be enough either" in err  # no node has 12 GPUs, drained or not
    assert "override reason would" not in err


def test_tenant_update_that_changes_nothing_says_so(config, capsys):
    run(config, capsys, "tenant", "create", "acme", "--quota", "64")
    code, out, _ = run(config, capsys, "tenant", "update", "acme", "--quota", "64")
    assert code == 0 and out.startswith("unchanged tenant acme")
    code, out, _ = run(config, capsys, "tenant", "update", "acme", "--quota", "32", "--json")
    assert json.loads(out)["changed"] is True and json.loads(out)["gpu_quota"] == 32
    code, _, err = run(config, capsys, "tenant", "update", "acme")
    assert code == 4 and "nothing to change" in err
    _, out, _ = run(config, capsys, "audit", "list", "--json")
    assert sorted(e["action"] for e in json.loads(out)) == ["tenant.create", "tenant.update"]


def test_a_zero_quota_is_refused(config, capsys):
    code, _, err = run(config, capsys, "tenant", "create", "acme", "--quota", "0")
    assert code == 4 and "at least 1" in err and "\n" not in err.strip()
    run(config, capsys, "tenant", "create", "acme", "--quota", "8")
    code, _, err = run(config, capsys, "tenant", "update", "acme", "--quota", "0")
    assert code == 4 and "at least 1" in err


def test_the_same_silence_cannot_be_created_twice(config, capsys):
    silence = ("alerts", "silence", "--match", "rack=sg1-r01", "--end", "+1h", "--comment", "PDU")
    assert run(config, capsys, *silence)[0] == 0
    code, _, err = run(config, capsys, *silence)
    assert code == 4 and "silence 1 already covers rack=sg1-r01" in err
    other = ("alerts", "silence", "--match", "rack=sg1-r02", "--end", "+1h", "--comment", "PDU")
    assert run(config, capsys, *other)[0] == 0  # another rack is another silence
    assert run(config, capsys, "alerts", "unsilence", "1")[0] == 0
    assert run(config, capsys, *silence)[0] == 0  # once ended, it may be made again


def test_times_without_offset_are_read_and_printed_in_the_configured_zone(tmp_path, capsys):
    config = tmp_path / "opsconsole.toml"
    config.write_text('timezone = "Asia/Singapore"\n' + CONFIG)
    run(config, capsys, "tenant", "create", "acme", "--quota", "64")
    code, out, _ = run(
        config, capsys, "lease", "allocate", "--tenant", "acme", "--gpus", "2",
        "--start", "2031-01-01T09:00", "--end", "2031-01-02T09:00", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["start_ts"] == datetime(2031, 1, 1, 1, tzinfo=UTC).timestamp()
    _, out, _ = run(config, capsys, "lease", "list", "--all")
    assert "2031-01-01 09:00 +08" in out and "2031-01-02 09:00 +08" in out
    with pytest.raises(SystemExit):
        main(["lease", "allocate", "--help"])
    assert "timezone" in " ".join(capsys.readouterr().out.split())


def test_an_unknown_zone_is_a_config_error(tmp_path, capsys):
    config = tmp_path / "opsconsole.toml"
    config.write_text('timezone = "Mars/Olympus"\n' + CONFIG)
    code, _, err = run(config, capsys, "tenant", "list")
    assert code == 1 and "timezone" in err and "unknown time zone" in err


def extend_by_a_day(config: str, writing) -> None:
    """Worker (spawned): `lease extend 1 --by 1d`, its exit status the command's. It says
    when it is about to open its write transaction, so the test can hold the write lock
    until both are there: the race is then certain, not left to scheduling."""
    from opsconsole.leases import lifecycle

    real = lifecycle.write_transaction

    def announced(*args, **kwargs):
        writing.release()
        return real(*args, **kwargs)

    lifecycle.write_transaction = announced
    raise SystemExit(main(["lease", "extend", "1", "--by", "1d", "--config", config]))


@pytest.mark.slow
def test_two_concurrent_extensions_by_a_day_add_two_days(config, capsys):
    run(config, capsys, "tenant", "create", "acme", "--quota", "64")
    _, out, _ = run(
        config, capsys, "lease", "allocate", "--tenant", "acme", "--gpus", "2", "--end", "+1d",
        "--json",
    )  # fmt: skip
    end_ts = json.loads(out)["end_ts"]
    holder = sqlite3.connect(config.parent / "ops.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # both workers must queue behind this write lock
    spawn = multiprocessing.get_context("spawn")
    writing = spawn.Semaphore(0)
    workers = [spawn.Process(target=extend_by_a_day, args=(str(config), writing)) for _ in "ab"]
    for worker in workers:
        worker.start()
    try:
        assert writing.acquire(timeout=60) and writing.acquire(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]  # neither was told to shorten it
    _, out, _ = run(config, capsys, "lease", "show", "1", "--json")
    assert json.loads(out)["end_ts"] == end_ts + 2 * 86_400
