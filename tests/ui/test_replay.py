"""Replay: the console's own views, read-only, fed from the flight recorder at a past
moment, with the banner naming it; the alerts as they were then; minute rollups where
the raw ring no longer reaches, and the banner says so."""

from __future__ import annotations

import pytest

from opsconsole.alerts import Condition, apply_conditions, resolve
from opsconsole.replay.source import RAW, ROLLUPS, ReplaySource
from opsconsole.store import TelemetryIngest, open_store
from opsconsole.store.recorder import FlightRecorder
from opsconsole.ui.app import replay_app
from tests.support.ui import SIZE, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0, host_name, new_state, synthetic_fleet, synthetic_sample

HOSTS = 4
XID_TS = T0 + 300  # 2025-06-15 15:11:40Z


@pytest.fixture
def recorded(tmp_path):
    """Ten minutes of four hosts recorded at 2 s; a critical XID alert on the first host
    fired at 5 min and resolved at 7 min (so it is resolved now, firing then)."""
    fleet = synthetic_fleet(HOSTS, path=tmp_path / "opsconsole.toml")
    path = tmp_path / "opsconsole.db"
    db = open_store(path)
    ingest = TelemetryIngest(db, recorder=FlightRecorder(window_s=3600))
    for seq in range(300):
        for i in range(HOSTS):
            ingest.add_sample(host_name(i), synthetic_sample(i, seq, T0 + 2 * seq))
    ingest.flush(T0 + 600, force=True)
    xid = Condition(
        rule="xid_hardware",
        severity="critical",  # type: ignore[arg-type]
        kind="event",  # type: ignore[arg-type]
        labels={"host": host_name(0), "gpu": "3", "event": "1"},
        summary=f"XID 79 on {host_name(0)} GPU 3",
    )
    apply_conditions(db, [xid], XID_TS)
    resolve(db, 1, "ana", "GPU reseated", now_ts=T0 + 420)
    db.close()
    return fleet, path


@pytest.mark.slow
async def test_replay_shows_the_fleet_and_the_alert_at_that_moment(recorded):
    fleet, path = recorded
    app = replay_app(fleet, path, XID_TS + 10, speed=2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "REPLAY 2025-06-15 15:11:" in screen_text(app))
        await wait_until(pilot, lambda: f"{HOSTS} fresh" in screen_text(app))
        assert "raw samples" in screen_text(app)
        await wait_until(pilot, lambda: app.alerts.board is not None and app.alerts.board.alerts)
        (alert,) = [a for a in app.alerts.board.alerts if a.id == 1]
        assert alert.state == "firing"  # resolved since, firing at the replayed moment
        assert app.read_only
        newest = max(h.sample.ts for h in app.driver.feed.state.hosts.values() if h.sample)
        assert XID_TS <= newest <= XID_TS + 60  # the data of then, not of now


def test_source_falls_back_to_minute_rollups_outside_the_raw_window(recorded):
    fleet, path = recorded
    db = open_store(path)
    db.conn.execute("DELETE FROM recorder_ring")  # the ring has moved on
    db.conn.commit()
    state = new_state(fleet, T0)
    source = ReplaySource(db, state)
    assert source.step(T0 + 125) == ROLLUPS
    host = state.hosts[host_name(1)]
    # Shown as seen at the replayed moment (samples carry the console's receive time),
    # its readings from the minute's rollup.
    assert host.sample is not None and host.sample.ts == T0 + 125
    assert host.sample.gpus[0].util_gpu_pct is not None
    db.close()


def test_source_steps_through_raw_samples_in_order(recorded):
    fleet, path = recorded
    db = open_store(path)
    state = new_state(fleet, T0)
    source = ReplaySource(db, state)
    assert source.step(T0 + 100) == RAW
    assert state.hosts[host_name(2)].sample.ts == T0 + 98
    source.step(T0 + 131)
    assert state.hosts[host_name(2)].sample.ts == T0 + 130
    db.close()


async def test_replay_command_runs_the_replay_in_the_same_terminal(recorded, monkeypatch):
    """`:replay TIME` suspends the console and runs `opsconsole replay` on its store."""
    import contextlib
    import subprocess

    from opsconsole.ui.app import make_app

    fleet, path = recorded
    ran: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda argv, check: ran.append(argv))
    app = make_app(fleet, new_state(fleet, T0), store=open_store(path), publish_interval_s=3600)
    monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
    async with app.run_test(size=SIZE) as pilot:
        app.run_command("replay 2025-06-15T15:11Z")
        await pilot.pause()
    app.leases.desk.db.close()
    (argv,) = ran
    assert argv[1:5] == ["-m", "opsconsole", "replay", "--at=2025-06-15T15:11Z"]
    assert argv[argv.index("--store") + 1] == str(path)
    assert argv[argv.index("--config") + 1] == str(fleet.path)
