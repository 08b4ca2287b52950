"""Handover in the console: the Leases screen names nodes between tenants and the host
view shows the newest validation run per level, from what the store holds."""

from __future__ import annotations

import pytest

from opsconsole.leases.handover import HostOutcome, finish_run, hold_for_run
from opsconsole.ui.screens.host import HostScreen
from opsconsole.ui.screens.leases import LeasesScreen
from opsconsole.validate import store
from opsconsole.validate.model import CheckResult, CheckStatus, RunState
from tests.support.ui import OPERATOR, SIZE, notices, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import T0

pytestmark = pytest.mark.slow

N1, N2 = "sg1-r01-n01", "sg1-r01-n02"


def record_run(db, fleet, now_ts: float) -> int:
    run_id = store.create_run(
        db, level="standard", fabric=True, hosts=[N1, N2], operator=OPERATOR,
        reason="operator", override_reason=None, now_ts=now_ts,
    )  # fmt: skip
    hold_for_run(db, fleet, [N1, N2], kind="validating", run_id=run_id, operator=OPERATOR,
                 expected_s=600, now_ts=now_ts)  # fmt: skip
    checks = [
        CheckResult("nccl_local", (N1,), CheckStatus.PASS,
                    "all_reduce busbw 470.2 GB/s over 8 GPUs"),
        CheckResult("ib_write_bw", (N1, N2), CheckStatus.FAIL,
                    "mlx5_3 sg1-r01-n01->sg1-r01-n02 181.0 Gb/s, expected >= 360 Gb/s",
                    blame=(N2,)),
    ]  # fmt: skip
    store.finish_run(
        db, run_id, state=RunState.FAILED, summary="1 passed, 1 failed",
        verdicts={N1: "passed", N2: "failed"}, checks=checks, now_ts=now_ts + 60,
    )  # fmt: skip
    finish_run(
        db, fleet, run_id, "standard",
        [HostOutcome(N1, "passed"), HostOutcome(N2, "failed", f"ib_write_bw: {checks[1].summary}")],
        operator=OPERATOR, now_ts=now_ts + 60,
    )  # fmt: skip
    return run_id


async def test_leases_screen_and_host_view_show_handover(lease_app, lease_store, fleet):
    run_id = record_run(lease_store, fleet, T0 - 2 * 3600)
    app = lease_app
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.leases.board is not None)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LeasesScreen))
        await wait_until(pilot, lambda: "handover" in screen_text(app))
        assert f"handover 1 failed-validation ({N2})" in screen_text(app)
        app.open_host(N2)
        await wait_until(pilot, lambda: isinstance(app.screen, HostScreen))
        await wait_until(pilot, lambda: "VALIDATION" in screen_text(app))
        text = screen_text(app)
        assert f"failed-validation run {run_id} failed" in text
        assert f"standard failed 1h ago · run {run_id} · ib_write_bw: mlx5_3" in text
        await pilot.press("escape")
        app.open_host(N1)
        await wait_until(pilot, lambda: "470.2 GB/s" in screen_text(app))
        assert (
            f"standard passed 1h ago · run {run_id} · all_reduce busbw 470.2 GB/s"
            in screen_text(app)
        )


class SimRunner:
    """Answers every host with one simulated host's tools (no SSH in UI tests)."""

    def __init__(self, fleet):
        from opsconsole.sim.world import SimFleet

        self.sim = next(iter(SimFleet(1, seed=3, start_ts=T0).hosts.values()))

    async def run(self, host, command, timeout_s):
        from opsconsole.sim.shell import run_command_line
        from opsconsole.sim.sysfs import SimSysfs
        from opsconsole.validate.judge import Output

        status, out, err = run_command_line(self.sim, SimSysfs(self.sim), command)
        return Output(command, status, out, err)

    async def close(self):
        pass


async def test_host_view_v_runs_a_quick_validation(lease_app, lease_store, fleet, monkeypatch):
    from opsconsole.leases import LeaseRequest, allocate_lease
    from opsconsole.leases.slotspec import parse_slots
    from opsconsole.ui.gateway import validation_run
    from opsconsole.ui.screens.confirm import ConfirmScreen

    monkeypatch.setattr(validation_run, "RUNNER_FACTORY", SimRunner)
    slots = tuple(parse_slots([N2], fleet))
    allocate_lease(lease_store, fleet, LeaseRequest("kestrel-ai", T0, T0 + 3600, slots=slots),
                   operator=OPERATOR, now_ts=T0)  # fmt: skip
    app = lease_app
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.leases.board is not None)
        for host, expected in (
            (N1, "(quick) on sg1-r01-n01: passed"),
            (N2, "refused: GPUs leased"),
        ):
            app.open_host(host)
            await wait_until(pilot, lambda h=host: isinstance(app.screen, HostScreen)
                             and app.screen.host_name == h)  # fmt: skip
            await pilot.press("v")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda e=expected: any(e in n.message for n in notices(app)))
            await pilot.press("escape")
    runs = store.list_runs(lease_store)
    assert [(r.hosts, r.state) for r in runs] == [((N2,), "refused"), ((N1,), "passed")]
