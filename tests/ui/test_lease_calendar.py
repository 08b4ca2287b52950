"""The lease calendar's days are the operator's days (issue 17): midnight to midnight in
the config's `timezone`, named in the header, not UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from opsconsole.leases import GpuSlot, Lease
from opsconsole.leases.times import use_timezone
from opsconsole.ui.view.lease_board import LeaseFilter, build_board
from opsconsole.ui.widgets.lease_calendar import calendar_text, day_spans
from tests.ui.synthetic import synthetic_fleet

SG = ZoneInfo("Asia/Singapore")  # UTC+8 all year
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC).timestamp()  # 04:00 on 2 Dec in Singapore


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _calendar(zone) -> list[str]:
    fleet = synthetic_fleet(32)
    slots = tuple(GpuSlot("sg1-r01-n01", i) for i in range(4))
    # 10:00–11:00 UTC on 2 Dec: 18:00–19:00 the same day in Singapore.
    lease = Lease(
        1, "aurora-labs", _ts("2026-12-02T10:00Z"), _ts("2026-12-02T11:00Z"), 4, "gpus",
        slots, "", "", None, NOW, "op",
    )  # fmt: skip
    board = build_board(fleet, NOW, LeaseFilter(), [], [lease], [lease])
    return calendar_text(board, fleet, 120, zone).plain.splitlines()


def test_days_are_the_configured_zones_and_it_is_named():
    utc, sg = _calendar(UTC), _calendar(SG)
    # Header: the first column is today, 1 Dec in UTC but already 2 Dec in Singapore.
    assert utc[1].split()[:3] == ["UTC", "1", "2"]
    assert sg[1].split()[:3] == ["Asia/Singapore", "2", "3"]
    # The lease falls on the second UTC day but on today in Singapore.
    assert next(r for r in utc if "aurora-labs" in r).split()[1:3] == ["·", "4"]
    assert next(r for r in sg if "aurora-labs" in r).split()[1:3] == ["4", "·"]


def test_the_configured_zone_is_the_default():
    try:
        use_timezone("Asia/Singapore")
        assert _calendar(None) == _calendar(SG)
        (first, _), *_ = day_spans(NOW, 120)
        assert first == _ts("2026-12-02T00:00+08:00")
    finally:
        use_timezone("UTC")


def test_a_day_where_clocks_change_is_23_or_25_hours():
    berlin = ZoneInfo("Europe/Berlin")
    spring = _ts("2026-03-28T12:00+01:00")  # clocks go forward on 29 March
    hours = [(hi - lo) / 3600 for lo, hi in day_spans(spring, 120, berlin)[:3]]
    assert hours == [24, 23, 24]


async def test_the_leases_screen_draws_the_configured_zones_days(fleet, state, clock, lease_store):
    """The console sets the zone from the config (as the CLI does): the calendar on the
    Leases screen names it and starts on today in that zone."""
    from opsconsole.ui.app import make_app
    from tests.support.ui import SIZE, wait_until
    from tests.ui.screen_text import screen_text

    fleet.config = fleet.config.model_copy(update={"timezone": "Asia/Singapore"})
    clock.advance(3600)  # 16:06 UTC on 15 June: already 00:06 on 16 June in Singapore
    today_sg = datetime.fromtimestamp(clock(), SG).day
    assert today_sg != datetime.fromtimestamp(clock(), UTC).day
    app = make_app(
        fleet, state, clock=clock, publish_interval_s=3600, store=lease_store, operator="t"
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("l")
            await wait_until(pilot, lambda: "Asia/Singapore" in screen_text(app))
            (header,) = [r for r in screen_text(app).splitlines() if "Asia/Singapore" in r]
            assert header.split()[1] == str(today_sg)
    finally:
        use_timezone("UTC")
