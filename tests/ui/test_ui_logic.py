"""The UI's pure logic, without a terminal: NVML words, health, filters, sorting, rack
power, command parsing, batching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.ui.feed.feed import BatchMailbox, FeedNotes, FleetBatch, FleetFeed
from opsconsole.ui.view.command_line import CommandError, parse_command
from opsconsole.ui.view.fleet_rows import FilterError, build_lines, parse_filter, rack_power
from opsconsole.ui.view.formatting import age_bucket, age_text
from opsconsole.ui.view.gpu_words import XID_MEANINGS, clock_event_words, xid_words
from opsconsole.ui.view.health import gpu_health
from opsconsole.wire import GpuSample
from tests.ui.synthetic import T0, synthetic_fleet, warm_fleet, xid_event


class TestNvmlWords:
    def test_clock_event_bits(self):
        assert clock_event_words(0) == "none"
        assert clock_event_words(None) == "—"
        assert clock_event_words(0x1) == "GPU idle"
        assert clock_event_words(0x4 | 0x40) == "SW power cap, HW thermal slowdown"
        assert clock_event_words(0x80 | 0x100) == "HW power brake, display clock setting"
        assert clock_event_words(0x400) == "0x400"

    @given(st.integers(min_value=0, max_value=2**32))
    def test_every_mask_has_words(self, mask):
        assert clock_event_words(mask)

    def test_xid_table_covers_the_common_codes(self):
        for code in (13, 31, 43, 45, 48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120):
            assert code in XID_MEANINGS
        assert xid_words(79) == "GPU has fallen off the bus"
        assert "catalogue" in xid_words(9999)


class TestHealth:
    def gpu(self, **fields) -> GpuSample:
        return GpuSample(index=0, **fields)

    def test_levels(self):
        assert gpu_health(self.gpu(), None, T0).level == "ok"
        assert gpu_health(self.gpu(state="lost"), None, T0).level == "fault"
        assert gpu_health(self.gpu(ecc_volatile_uncorrected=1), None, T0).level == "fault"
        assert gpu_health(self.gpu(remap_pending=True), None, T0).level == "warn"
        assert gpu_health(self.gpu(clock_event_reasons=0x40), None, T0).level == "warn"
        assert gpu_health(self.gpu(clock_event_reasons=0x1), None, T0).level == "ok"

    def test_recent_xids_count_and_old_ones_fade(self):
        assert gpu_health(self.gpu(), xid_event(T0 - 60, 0, 79), T0).level == "fault"
        assert gpu_health(self.gpu(), xid_event(T0 - 60, 0, 13), T0).level == "warn"
        assert gpu_health(self.gpu(), xid_event(T0 - 7200, 0, 79), T0).level == "ok"


class TestFilterAndSort:
    @pytest.fixture
    def snapshots(self):
        fleet = synthetic_fleet(48)
        state = warm_fleet(fleet, 2)
        feed = FleetFeed(state, lambda: T0)
        return fleet, feed.collect().snapshots

    def test_grouped_lines_are_site_rack_host(self, snapshots):
        fleet, snaps = snapshots
        lines = build_lines(fleet, snaps)
        assert lines[:3] == [("site", "SG1"), ("rack", "sg1-r01"), ("host", "sg1-r01-n01")]
        assert sum(1 for kind, _ in lines if kind == "rack") == 3

    def test_terms_combine(self, snapshots):
        fleet, snaps = snapshots
        lines = build_lines(fleet, snaps, row_filter=parse_filter("rack=sg1-r02 util>50"))
        hosts = [n for k, n in lines if k == "host"]
        assert hosts and all(n.startswith("sg1-r02") for n in hosts)
        assert all(snaps[n].util_avg_pct > 50 for n in hosts)
        lines = build_lines(fleet, snaps, row_filter=parse_filter("!r01 !r02"))
        assert {n[:7] for k, n in lines if k == "host"} == {"sg1-r03"}

    def test_hosts_without_a_live_figure_sort_last(self, snapshots):
        fleet, snaps = snapshots
        snaps = dict(snaps)
        del snaps["sg1-r01-n01"]  # never heard from
        lines = build_lines(fleet, snaps, sort_key="temp", descending=True)
        assert lines[-1] == ("host", "sg1-r01-n01")

    def test_bad_filters_say_why(self):
        with pytest.raises(FilterError, match="unknown column"):
            parse_filter("colour=red")
        with pytest.raises(FilterError, match="not a number"):
            parse_filter("temp>hot")
        assert parse_filter("health=fault").dynamic
        assert not parse_filter("rack=sg1-r01").dynamic

    def test_rack_power_counts_overhead_and_unknown_hosts(self, snapshots):
        fleet, snaps = snapshots
        rack = fleet.racks["sg1-r01"]
        members = [h.name for h in fleet.hosts if h.rack == "sg1-r01"]
        power = rack_power(rack, members, {n: s for n, s in snaps.items() if n != members[0]})
        expected_w = sum(snaps[n].power_w + rack.host_overhead_w for n in members[1:])
        assert power.now_kw == pytest.approx(expected_w / 1000)
        assert power.unknown_hosts == 1
        assert power.fraction == pytest.approx(power.now_kw / 75.0)


class TestCommands:
    def test_verbs_and_aliases(self):
        assert parse_command(":host sg1-r01-n01").argument == "sg1-r01-n01"
        assert parse_command("q").verb == "quit"
        assert parse_command("sort temp desc").argument == "temp desc"

    @pytest.mark.parametrize(
        ("text", "why"),
        [("", "empty"), ("zap", "unknown"), ("host", "needs")],
    )
    def test_refusals(self, text, why):
        with pytest.raises(CommandError, match=why):
            parse_command(text)


class TestAges:
    @given(st.floats(min_value=0, max_value=10**7))
    def test_bucket_changes_exactly_when_text_does(self, seconds):
        later = seconds + 0.5
        if age_text(seconds) != age_text(later):
            assert age_bucket(seconds) != age_bucket(later)

    def test_words(self):
        assert [age_text(s) for s in (None, 4, 75, 7300, 90000)] == [
            "never",
            "4s",
            "1m",
            "2h",
            "1d",
        ]


class TestMailbox:
    def test_merges_batches_the_ui_has_not_taken(self):
        box = BatchMailbox()
        a, b = object(), object()
        assert box.put(FleetBatch(1.0, {"x": a}))
        assert not box.put(FleetBatch(2.0, {"x": b, "y": a}, notes=FeedNotes(store="locked")))
        merged = box.take()
        assert merged.snapshots == {"x": b, "y": a} and merged.now_ts == 2.0
        assert merged.notes.store == "locked"
        assert box.take() is None

    def test_feed_sends_only_changed_hosts(self):
        fleet = synthetic_fleet(16)
        state = warm_fleet(fleet, 1)
        feed = FleetFeed(state, lambda: T0)
        assert len(feed.collect().snapshots) == 16
        assert feed.collect() is None
        host = state.hosts["sg1-r01-n05"]
        state.changed(host, "status")
        assert set(feed.collect().snapshots) == {"sg1-r01-n05"}


def test_ack_dialog_prefills_the_configs_default_timeout():
    from opsconsole.leases.times import parse_duration
    from opsconsole.ui.screens.alert_action import default_ack_timeout

    assert default_ack_timeout(None) == ""
    assert default_ack_timeout(0.0) == ""
    for seconds in (14400.0, 5400.0, 45.0, 172800.0, 3601.0):
        text = default_ack_timeout(seconds)
        assert parse_duration(text) == seconds, text


def test_a_retired_gateway_refuses_calls_so_its_connection_can_be_closed(tmp_path):
    from opsconsole.errors import StoreError
    from opsconsole.store import open_store
    from opsconsole.ui.gateway.store import StoreGateway

    db = open_store(tmp_path / "s.db")
    gateway = StoreGateway(db)
    assert gateway.call("reading", lambda: db.conn.execute("SELECT 1").fetchone()) == (1,)
    gateway.retire()
    with pytest.raises(StoreError, match="console is closing"):
        gateway.call("reading alerts", lambda: db.conn.execute("SELECT 1").fetchone())
    db.close()
