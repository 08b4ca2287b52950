"""The console's lease logic without a terminal: form parsing, the calendar's per-day
peaks, slot text, the TENANT cell, live health in the leases layer's words, the board."""

from __future__ import annotations

import pytest

from opsconsole.errors import LeaseError
from opsconsole.leases import GpuSlot, Lease, Tenant
from opsconsole.leases.slotspec import format_indexes, format_slots
from opsconsole.ui.feed.feed import FleetFeed
from opsconsole.ui.gateway.lease_desk import tenant_colour
from opsconsole.ui.view.fleet_painter import tenant_segments
from opsconsole.ui.view.lease_board import GpuTenant, LeaseFilter, build_board
from opsconsole.ui.view.lease_form import (
    AllocateForm,
    build_request,
    parse_amount,
    parse_locality,
    parse_new_end,
    parse_site,
    placement_health,
)
from opsconsole.ui.view.model import FleetModel
from opsconsole.ui.widgets.lease_calendar import DAY_S, calendar_days, calendar_text, peak_gpus
from tests.support.ui import FakeClock
from tests.ui.synthetic import T0, feed_all, synthetic_fleet, warm_fleet, xid_event

FLEET = synthetic_fleet(32)

DAY = 86_400.0


def lease(lease_id: int, tenant: str, slots, start: float, end: float, **marks) -> Lease:
    slots = tuple(GpuSlot(h, i) for h, i in slots)
    return Lease(
        lease_id, tenant, start, end, len(slots), "gpus", slots, "", "", None, T0, "op", **marks
    )


class TestForm:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("8", ("gpus", 8)),
            ("8 GPUs", ("gpus", 8)),
            ("2 nodes", ("nodes", 2)),
            ("1n", ("nodes", 1)),
        ],
    )
    def test_amounts(self, text, expected):
        assert parse_amount(text) == expected

    @pytest.mark.parametrize("text", ["", "eight", "-2", "2 racks"])
    def test_bad_amounts_are_one_line(self, text):
        with pytest.raises(LeaseError, match="not an amount"):
            parse_amount(text)

    def test_request_reads_times_like_the_cli(self):
        form = AllocateForm("aurora-labs", "2 nodes", "now", "+7d")
        request = build_request(form, T0, FLEET)
        assert (request.start_ts, request.end_ts) == (T0, T0 + 7 * DAY)
        assert (request.gpus, request.nodes, request.kind) == (None, 2, "nodes")
        iso = build_request(
            AllocateForm("x", "8", "2025-07-01T00:00", "2025-07-02T00:00Z"), T0, FLEET
        )
        assert iso.end_ts - iso.start_ts == DAY  # no offset: UTC, as in the CLI

    def test_missing_fields(self):
        with pytest.raises(LeaseError, match="name a tenant"):
            build_request(AllocateForm(" ", "8", "now", "+1d"), T0, FLEET)
        with pytest.raises(LeaseError, match="give an end"):
            build_request(AllocateForm("a", "8", "now", ""), T0, FLEET)

    def test_site_and_locality(self):
        fleet = synthetic_fleet(32)
        assert parse_site("sg1", fleet) == "SG1"
        assert parse_site("", fleet) is None and parse_site("any", fleet) is None
        with pytest.raises(LeaseError, match='unknown site "XX1"'):
            parse_site("XX1", fleet)
        assert parse_locality("Rack") == "rack" and parse_locality("") == "any"
        with pytest.raises(LeaseError, match="locality is one of"):
            parse_locality("row")
        form = AllocateForm("a", "2 nodes", "now", "+1d", site="sg1", locality="leaf")
        request = build_request(form, T0, fleet)
        assert (request.site, request.locality) == ("SG1", "leaf")  # for the leases layer

    def test_new_end_is_later_by_a_duration_or_an_absolute_time(self):
        end = T0 + 7 * DAY
        assert parse_new_end("2d", end, T0) == end + 2 * DAY
        assert parse_new_end("+12h", end, T0) == end + 12 * 3600
        assert parse_new_end("2025-07-01T00:00Z", end, T0) == 1_751_328_000.0
        with pytest.raises(LeaseError):
            parse_new_end("soon", end, T0)


class TestCalendar:
    def test_peak_is_the_most_at_one_moment_not_the_sum(self):
        back_to_back = [(0.0, 10.0, 8), (10.0, 20.0, 8)]
        assert peak_gpus(back_to_back, 0.0, 20.0) == 8
        assert peak_gpus([(0.0, 15.0, 8), (10.0, 20.0, 4)], 0.0, 20.0) == 12
        assert peak_gpus(back_to_back, 20.0, 30.0) == 0

    def test_days_start_at_utc_midnight_and_fit_the_width(self):
        days = calendar_days(T0, 120)
        assert days[0] == T0 - T0 % DAY_S and len(days) == 25
        assert len(calendar_days(T0, 40)) == 7  # never fewer than a week

    def test_rows_per_site_and_tenant(self):
        fleet = synthetic_fleet(32)
        leases = [
            lease(1, "aurora-labs", [("sg1-r01-n01", i) for i in range(8)], T0, T0 + 2 * DAY),
            lease(2, "kestrel-ai", [("sg1-r01-n02", 0)], T0 + 3 * DAY, T0 + 4 * DAY),
        ]
        board = build_board(fleet, T0, LeaseFilter(), [], leases, leases)
        lines = calendar_text(board, fleet, 120).plain.splitlines()
        aurora = next(line for line in lines if "aurora-labs" in line).split()
        assert aurora[1:5] == ["8", "8", "8", "·"]  # today, +1 day, +2 days (ends mid-day)
        kestrel = next(line for line in lines if "kestrel-ai" in line).split()
        assert kestrel[1:6] == ["·", "·", "·", "1", "1"]
        free = next(line for line in lines if line.strip().startswith("free")).split()
        assert free[1:6] == ["248", "248", "248", "255", "255"]


class TestText:
    def test_ranges(self):
        assert format_indexes([6, 0, 1, 2, 3]) == "0-3,6"
        slots = [GpuSlot("sg1-r01-n01", i) for i in range(8)]
        slots += [GpuSlot("sg1-r01-n02", i) for i in range(8)] + [GpuSlot("sg1-r01-n03", 0)]
        assert format_slots(slots) == "sg1-r01-n[01-02]:0-7 sg1-r01-n03:0"

    def test_tenant_cell(self):
        def cell(holders):
            return "".join(s.text for s in tenant_segments(holders, 16))

        a = GpuTenant("aurora-labs", 1, T0, "#5fafff")
        k = GpuTenant("kestrel-ai", 2, T0, "#d787ff")
        assert cell(None).strip() == "…" and cell({}).strip() == "free"
        assert cell(dict.fromkeys(range(8), a)) == "aurora-labs 8   "
        mixed = {**dict.fromkeys(range(6), a), 6: k, 7: k}
        assert cell(mixed) == "aurora-la… 6 +2 "  # one space always ends the column
        long = GpuTenant("very-long-tenant-name", 3, T0, "#ffffff")
        assert cell(dict.fromkeys(range(8), long)).startswith("very-long-te… 8")
        assert all(len(cell(h)) == 16 for h in (None, {}, mixed))

    def test_tenant_colours(self):
        tenant = Tenant("a", "", "teal", None, 8, T0)
        assert tenant_colour(tenant) == "#008080"
        nameless = Tenant("b", "", "", None, 8, T0)
        assert tenant_colour(nameless) == tenant_colour(nameless)  # stable by name


class TestBoard:
    def test_holders_are_the_active_leases_only(self):
        fleet = synthetic_fleet(32)
        active = lease(1, "a", [("sg1-r01-n01", 0), ("sg1-r01-n01", 1)], T0 - DAY, T0 + DAY)
        reserved = lease(2, "b", [("sg1-r01-n01", 2)], T0 + DAY, T0 + 2 * DAY)
        board = build_board(fleet, T0, LeaseFilter(), [], [active, reserved], [])
        assert set(board.by_host["sg1-r01-n01"]) == {0, 1}
        assert (board.leased_gpus, board.free_gpus, board.total_gpus) == (2, 254, 256)
        assert [le.id for le in board.host_leases("sg1-r01-n01")] == [1, 2]

    def test_state_filter_cycles_through_every_choice(self):
        seen = [LeaseFilter()]
        while (nxt := seen[-1].next_states()) != seen[0]:
            seen.append(nxt)
        assert [f.states_label for f in seen] == [
            "reserved + active", "reserved", "active", "ended", "released", "cancelled", "all"
        ]  # fmt: skip

    def test_tenancy_moves_only_changed_hosts(self):
        model = FleetModel(synthetic_fleet(32))
        holder = GpuTenant("a", 1, T0, "#ffffff")
        assert len(model.apply_tenancy({})) == 32  # first board: every line shows "free"
        assert model.apply_tenancy({"sg1-r01-n01": {0: holder}}) == {"sg1-r01-n01"}
        assert model.apply_tenancy({"sg1-r01-n01": {0: holder}, "gone-host": {0: holder}}) == set()


def test_placement_health_in_the_leases_layers_words():
    """A down host is "down", a faulty GPU of a fresh host "critical"; the rest is omitted."""
    fleet = synthetic_fleet(32)
    clock = FakeClock()
    state = warm_fleet(fleet, samples=5, now_ts=clock())
    for seq in range(20):  # 40 s without a word from sg1-r01-n05: down
        feed_all(state, clock.advance(2), 10 + seq, skip={"sg1-r01-n05"})
        state.tick(clock())
    host = state.hosts["sg1-r01-n03"]
    host._note_events([xid_event(clock() - 20, gpu=5, code=79)])
    state.changed(host, "sample")
    model = FleetModel(fleet)
    model.apply(FleetFeed(state, clock).collect())
    assert placement_health(model) == {"sg1-r01-n05": "down", ("sg1-r01-n03", 5): "critical"}
