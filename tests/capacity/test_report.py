"""The capacity report on fixtures with known answers: the capacity demo's leases (every
free node part-used, a rack drained under a reservation on a known day), plus rollups and
live readings written for each case. Figures are checked exactly."""

from __future__ import annotations

import pytest

from opsconsole.capacity import CapacityError, capacity_report
from opsconsole.capacity.inputs import PortReading
from opsconsole.capacity.runway import day_starts, utc_date
from opsconsole.errors import LeaseError
from opsconsole.leases import LeaseRequest, create_tenant, preview_lease
from opsconsole.leases.model import GpuSlot
from opsconsole.sim.scenarios import rack_nodes
from tests.support.capacity import T0, add_minutes, capacity_fleet, readings

HOUR = 3600.0


def by_name(rows, name):
    """The row of a site / leaf / rack (occupancy), a rack (power) or a leaf (fabric)."""
    return next(r for r in rows if name in (getattr(r, a, None) for a in ("name", "rack", "leaf")))


def finding(report, kind):
    found = [b for b in report.bottlenecks if b.kind == kind]
    assert len(found) == 1, [b.title for b in report.bottlenecks]
    return found[0]


class TestScatteredFreeGpus:
    """Every free node is part-used: 84 free GPUs, not one whole node."""

    def test_counts_per_site_leaf_and_rack(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=readings(fleet))
        site = by_name(report.occupancy, "SG1")
        assert (site.total_gpus, site.healthy_gpus, site.leased_gpus) == (512, 512, 428)
        assert (site.reserved_gpus, site.drained_gpus, site.free_gpus) == (0, 0, 84)
        assert (site.free_whole_nodes, site.scattered_free_gpus) == (0, 84)
        assert site.fragmentation_pct == 100.0
        assert site.bar == {"leased": 428, "unhealthy": 0, "drained": 0, "reserved": 0, "free": 84}
        racks = {o.name: o.free_gpus for o in report.occupancy if o.level == "rack"}
        assert racks == {"sg1-r01": 0, "sg1-r02": 12, "sg1-r03": 24, "sg1-r04": 48}
        assert report.free_healthy == {"SG1": 84}

    def test_largest_lease_per_level_is_what_placement_accepts(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=readings(fleet))
        largest = {lv.level: lv for lv in by_name(report.occupancy, "sg1-leaf-01").largest}
        assert [(lv.level, lv.gpus, lv.whole_nodes) for lv in largest.values()] == [
            ("node", 3, 0),
            ("rack", 48, 0),
            ("leaf", 84, 0),
        ]
        assert largest["rack"].where == "sg1-r04"
        assert "rack sg1-r04" in largest["rack"].explanation
        create_tenant(seeded, "probe", gpu_quota=512, operator="t", now_ts=T0)
        day = 86_400.0

        def preview(gpus, locality):
            request = LeaseRequest("probe", T0 + 60, T0 + day, gpus=gpus, locality=locality)
            return preview_lease(seeded, fleet, request, now_ts=T0 + 60)

        assert len(preview(48, "rack").slots) == 48
        with pytest.raises(LeaseError):
            preview(49, "rack")
        assert len(preview(3, "node").slots) == 3
        with pytest.raises(LeaseError):
            preview(4, "node")

    def test_ranked_with_a_consolidation_to_do(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=readings(fleet))
        b = finding(report, "fragmentation")
        assert b.severity == "critical"  # no leaf of SG1 can take a 64-GPU lease
        assert b.title == (
            "SG1 sg1-leaf-01: 0 whole nodes free, 84 scattered GPUs — a 64-GPU lease"
            " cannot be placed"
        )
        assert (b.measured_value, b.threshold_value, b.gpus_affected) == (84.0, 16.0, 84)
        assert b.action == (
            "consolidate leases on sg1-r04: its 16 part-used nodes hold 80 booked GPUs that"
            " fit on 10 nodes, freeing 6 whole node(s)"
        )
        assert (b.target.kind, b.target.name) == ("rack", "sg1-r04")

    def test_a_leaf_with_whole_nodes_free_is_not_fragmented(self, tmp_path):
        from opsconsole.store import open_store

        fleet = capacity_fleet(racks=2)
        db = open_store(tmp_path / "s.db")
        create_tenant(db, "t", gpu_quota=1000, operator="t", now_ts=T0)
        slots = tuple(GpuSlot(h, i) for h in rack_nodes("sg1-r01", 1, 16) for i in range(5))
        from opsconsole.leases import allocate_lease

        allocate_lease(
            db, fleet, LeaseRequest("t", T0, T0 + 86_400, slots=slots), operator="t", now_ts=T0
        )
        report = capacity_report(db, fleet, now_ts=T0 + 60, readings=readings(fleet))
        leaf = by_name(report.occupancy, "sg1-leaf-01")
        assert (leaf.free_whole_nodes, leaf.scattered_free_gpus) == (16, 48)
        assert [b for b in report.bottlenecks if b.kind == "fragmentation"] == []
        db.close()


class TestRackPower:
    def live(self, fleet):
        power = dict.fromkeys(rack_nodes("sg1-r01", 1, 16), 5520.0)  # 8 x 690 W
        power |= dict.fromkeys(rack_nodes("sg1-r03", 1, 16), 4400.0)
        return readings(fleet, gpu_power_w=power, silent=["sg1-r02-n16"])

    def test_measured_power_against_budget(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=self.live(fleet))
        r01, r02, r03, r04 = (by_name(report.power, f"sg1-r0{i}") for i in range(1, 5))
        assert r01.measured_kw == pytest.approx(16 * (5520 + 1800) / 1000)
        assert r01.use_pct == pytest.approx(117.12 / 108.9 * 100)
        assert (r01.hosts_reporting, r01.source) == (16, "live")
        assert r02.note.startswith("partial: 15 of 16 hosts reporting")
        assert r02.measured_kw == pytest.approx(15 * 4.8)
        assert r03.use_pct == pytest.approx(99.2 / 108.9 * 100)
        assert (r04.budget_kw, r04.use_pct) == (None, None)
        assert r04.note.startswith("no budget set")
        assert r04.measured_kw == pytest.approx(16 * 4.8)

    def test_over_budget_is_critical_and_first_near_budget_a_warning(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=self.live(fleet))
        over = report.bottlenecks[0]
        assert (over.rank, over.kind, over.severity) == (1, "power", "critical")
        assert over.title == "SG1 sg1-r01: 117.1 kW of 108.9 kW budget (108 %)"
        assert (over.measured_value, over.threshold_value) == (107.5, 90.0)
        assert over.action.startswith("shed 8.2 kW on sg1-r01")
        assert (over.target.kind, over.target.name, over.gpus_affected) == ("rack", "sg1-r01", 128)
        near = [b for b in report.bottlenecks if b.kind == "power" and b.severity == "warning"]
        assert [b.subject for b in near] == ["SG1 sg1-r03"]
        assert near[0].action == (
            "keep new leases off sg1-r03 (9.7 kW headroom left); place them on racks with room"
        )
        assert not any("sg1-r04" in b.subject and b.kind == "power" for b in report.bottlenecks)

    def test_without_live_readings_the_recent_rollups_count(self, seeded, fleet):
        add_minutes(seeded, rack_nodes("sg1-r01", 1, 16), T0 - 240, 4, power_w=690.0)
        add_minutes(seeded, rack_nodes("sg1-r02", 1, 16), T0 - 3600, 4, power_w=690.0)  # old
        report = capacity_report(seeded, fleet, now_ts=T0)
        r01, r02 = by_name(report.power, "sg1-r01"), by_name(report.power, "sg1-r02")
        assert r01.measured_kw == pytest.approx(117.12)
        assert r01.source == "minute rollups, last 5 min"
        assert r02.measured_kw is None
        assert r02.note.startswith("no data (minute rollups, last 5 min)")
        assert finding(report, "power").subject == "SG1 sg1-r01"

    def test_power_cap_share_from_rollups(self, seeded, fleet):
        add_minutes(seeded, rack_nodes("sg1-r01", 1, 8), T0 - 1800, 30, cap_share=0.5)
        add_minutes(seeded, rack_nodes("sg1-r01", 9, 16), T0 - 1800, 30, cap_share=0.0)
        report = capacity_report(seeded, fleet, now_ts=T0, readings=readings(fleet))
        r01 = by_name(report.power, "sg1-r01")
        assert r01.power_cap_share_pct == pytest.approx(25.0)
        assert r01.thermal_share_pct == pytest.approx(0.0)
        assert by_name(report.power, "sg1-r02").power_cap_share_pct is None
        b = finding(report, "throttle")
        assert b.title == "SG1 sg1-r01: 25 % of GPU-time power-capped"
        assert (b.gpus_affected, b.threshold_value) == (32, 10.0)


class TestFabric:
    """Two leaves; optics go bad on sg1-leaf-01 under aurora-labs and kestrel-ai."""

    @pytest.fixture
    def fleet(self):
        return capacity_fleet(racks=4, racks_per_leaf=2)

    def ports(self):
        healthy = [PortReading(f"mlx5_{i}/1", "ACTIVE", 400.0, 0.0) for i in range(8)]

        def with_port(i, port):
            return [port if p.port == f"mlx5_{i}/1" else p for p in healthy]

        slow = PortReading("mlx5_1/1", "ACTIVE", 200.0, 0.05)
        out = {h: with_port(1, slow) for h in ("sg1-r01-n03", *rack_nodes("sg1-r02", 5, 8))}
        out["sg1-r02-n05"] = [
            PortReading("mlx5_3/1", "DOWN", 10.0, None) if p.port == "mlx5_3/1" else p
            for p in out["sg1-r02-n05"]
        ]
        out["sg1-r02-n06"] = [
            PortReading("mlx5_1/1", "ACTIVE", 200.0, 2.0) if p.port == "mlx5_1/1" else p
            for p in out["sg1-r02-n06"]
        ]
        return out

    def test_grouped_by_leaf_with_the_tenants_behind_the_ports(self, seeded, fleet):
        live = readings(fleet, ports=self.ports(), silent=["sg1-r04-n01"])
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=live)
        leaf1, leaf2 = by_name(report.fabric, "sg1-leaf-01"), by_name(report.fabric, "sg1-leaf-02")
        assert (leaf1.ports_down, leaf1.ports_below_rate, leaf1.ports_with_errors) == (1, 5, 1)
        assert leaf1.tenants == ("aurora-labs", "kestrel-ai")
        assert leaf1.leases == (1, 2)
        assert leaf1.affected_gpus == 40
        assert {(i.host, i.port, i.problem) for i in leaf1.issues} >= {
            ("sg1-r02-n05", "mlx5_3/1", "down"),
            ("sg1-r02-n06", "mlx5_1/1", "errors"),
            ("sg1-r01-n03", "mlx5_1/1", "below rate"),
        }
        assert (leaf2.issues, leaf2.hosts_unknown, leaf2.tenants) == ((), 1, ())
        b = finding(report, "fabric")
        assert b.severity == "critical"  # a port down under leases
        assert b.title == (
            "SG1 sg1-leaf-01: IB 1 port(s) down, 5 below rate, 1 with errors on 5 host(s)"
            " — leases of aurora-labs, kestrel-ai cross them"
        )
        assert (b.target.kind, b.target.name, b.gpus_affected) == ("leaf", "sg1-leaf-01", 40)
        assert "tell aurora-labs, kestrel-ai (lease 1, 2)" in b.action

    def test_without_live_readings_only_stored_link_downs_count(self, seeded, fleet):
        with seeded.conn:
            for i, (host, kind, message) in enumerate(
                [
                    ("sg1-r02-n05", "link_down", "IB mlx5_3/1 DOWN (Polling)"),
                    ("sg1-r02-n06", "link_down", "IB mlx5_1/1 DOWN (Polling)"),
                    ("sg1-r02-n06", "link_up", "IB mlx5_1/1 ACTIVE"),
                ]
            ):
                seeded.conn.execute(
                    "INSERT INTO events (ts, host, kind, source, message, fingerprint)"
                    " VALUES (?, ?, ?, 'console', ?, ?)",
                    (T0 - 600 + i, host, kind, message, f"f{i}"),
                )
        report = capacity_report(seeded, fleet, now_ts=T0 + 60)
        leaf1 = by_name(report.fabric, "sg1-leaf-01")
        assert [(i.host, i.port, i.problem) for i in leaf1.issues] == [
            ("sg1-r02-n05", "mlx5_3/1", "down")
        ]
        assert leaf1.tenants == ("kestrel-ai",)
        assert leaf1.hosts_unknown == 32  # rates and errors are not known headless
        assert report.sources["ib_ports"] == "stored link events"


class TestRunway:
    def test_over_committed_on_the_drain_day(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, readings=readings(fleet))
        site = next(s for s in report.runway if (s.kind, s.name) == ("site", "SG1"))
        day10 = utc_date(day_starts(T0, 31)[10])
        assert day10 == "2025-06-25"
        assert site.first_over_committed == day10
        days = {d.date: d for d in site.days}
        assert (days[day10].committed_gpus, days[day10].capacity_gpus) == (416, 384)
        assert days[day10].over_by == 32
        assert (days["2025-06-24"].committed_gpus, days["2025-06-24"].over_by) == (416, 0)
        assert (days["2025-06-15"].committed_gpus, days["2025-06-15"].capacity_gpus) == (428, 512)
        assert days["2025-06-27"].over_by == 0  # the drain ends at midnight
        assert [w.whole_nodes for w in site.weeks] == [0, 12, 12, 28]
        model = next(s for s in report.runway if s.kind == "model")
        assert (model.name, model.first_over_committed) == ("H200", day10)
        b = finding(report, "runway")
        assert b.severity == "warning"  # 10 days out; runway_soon_days is 7
        assert b.title == (
            "SG1: over-committed on 2025-06-25 (in 10 day(s)): 416 GPUs booked,"
            " 384 healthy and undrained"
        )
        assert (b.target.kind, b.target.name, b.gpus_affected) == ("lease", "8", 32)
        assert b.action == (
            'move the 16 drain(s) of sg1-r04-n[01-16] ("PDU maintenance (planned)") off'
            " 2025-06-25; or move lease 8 (kestrel-ai) to healthy GPUs"
        )

    def test_a_shorter_window_sees_no_over_commitment(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, days=5)
        assert [len(s.days) for s in report.runway] == [5, 5]
        assert all(s.first_over_committed is None for s in report.runway)
        assert [b for b in report.bottlenecks if b.kind == "runway"] == []

    def test_soon_is_critical(self, seeded):
        fleet = capacity_fleet(capacity={"runway_soon_days": 14})
        report = capacity_report(seeded, fleet, now_ts=T0 + 60)
        assert finding(report, "runway").severity == "critical"


class TestIdleLeasedGpus:
    def test_idle_by_tenant_and_no_data_is_not_idle(self, seeded, fleet):
        now = T0 + 5 * HOUR
        window = now - 4 * HOUR
        add_minutes(seeded, rack_nodes("sg1-r02", 9, 12), window, 240, util_pct=0.5)  # tern
        add_minutes(seeded, rack_nodes("sg1-r02", 1, 8), window, 240, util_pct=80.0)  # kestrel
        # aurora's r01: a reading every 4th minute only, under the 50 % coverage needed
        add_minutes(seeded, rack_nodes("sg1-r01", 1, 16), window, 240, util_pct=0.0, every=4)
        report = capacity_report(seeded, fleet, now_ts=now, readings=readings(fleet))
        idle = {t.tenant: t for t in report.idle}
        tern = idle["tern-research"]
        assert (tern.leased_gpus, tern.idle_gpus, tern.busy_gpus, tern.no_data_gpus) == (
            32, 32, 0, 0
        )  # fmt: skip
        assert (tern.leases, tern.idle_hosts) == ((3,), rack_nodes("sg1-r02", 9, 12))
        assert (idle["kestrel-ai"].busy_gpus, idle["kestrel-ai"].idle_gpus) == (64, 0)
        assert (idle["aurora-labs"].no_data_gpus, idle["aurora-labs"].idle_gpus) == (192, 0)
        assert idle["wren-inference"].no_data_gpus == 140
        b = finding(report, "idle")
        assert b.title == "tern-research: 32 leased GPUs idle for 4 h on sg1-r02-n[09-12]"
        assert (b.target.kind, b.target.name, b.measured_value) == ("lease", "3", 32.0)

    def test_a_lease_younger_than_the_window_is_not_judged(self, seeded, fleet):
        add_minutes(seeded, rack_nodes("sg1-r02", 9, 12), T0, 60, util_pct=0.0)
        report = capacity_report(seeded, fleet, now_ts=T0 + HOUR)
        tern = next(t for t in report.idle if t.tenant == "tern-research")
        assert (tern.too_new_gpus, tern.idle_gpus) == (32, 0)
        assert [b for b in report.bottlenecks if b.kind == "idle"] == []


class TestBadInput:
    def test_unknown_site_is_refused_by_name(self, seeded, fleet):
        with pytest.raises(CapacityError, match=r'unknown site "XX1" \(sites: SG1, MY1\)'):
            capacity_report(seeded, fleet, now_ts=T0, site="XX1")

    def test_site_in_any_case(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, site="sg1")
        assert report.site == "SG1"

    def test_a_site_without_hosts_is_empty_not_an_error(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60, site="MY1")
        assert (report.occupancy, report.bottlenecks, report.runway) == ((), (), ())

    def test_unknown_gpu_model_is_its_own_pool(self, seeded):
        fleet = capacity_fleet(gpu_model=None)
        report = capacity_report(seeded, fleet, now_ts=T0 + 60)
        assert by_name(report.occupancy, "SG1").unknown_model_hosts == 64
        model = next(s for s in report.runway if s.kind == "model")
        assert (model.name, model.note) == (
            "unknown model",
            "64 host(s) whose host class sets no gpu_model",
        )
        assert any("no gpu_model" in note for note in report.notes)

    def test_no_data_anywhere_is_stated_never_zero(self, seeded, fleet):
        report = capacity_report(seeded, fleet, now_ts=T0 + 60)
        for row in report.power:
            assert row.measured_kw is None and row.use_pct is None
            assert row.power_cap_share_pct is None and "no data" in row.note
        assert not any(b.kind in ("power", "throttle", "idle") for b in report.bottlenecks)
        assert (
            "no utilisation rollups for GPUs leased through the idle window:"
            " idle GPUs cannot be judged"
        ) in report.notes


def test_rollup_aggregates_are_reused_for_a_minute(seeded, fleet):
    from opsconsole.capacity.report import read_facts

    first = read_facts(seeded, fleet, T0, 28)
    assert first.usage == {} and first.rollups_ts == T0
    add_minutes(seeded, rack_nodes("sg1-r02", 9, 12), T0 - 120, 5, util_pct=0.0, power_w=80.0)
    again = read_facts(seeded, fleet, T0 + 59, 28, reuse=first)
    assert (again.usage, again.rollup_power, again.rollups_ts) == ({}, {}, T0)
    assert again.bookings == first.bookings  # leases are always read afresh
    later = read_facts(seeded, fleet, T0 + 60, 28, reuse=first)
    assert len(later.rollup_power) == 4 and later.rollups_ts == T0 + 60
    # utilisation is read only for GPUs leased through the whole idle window: none yet
    assert later.usage == {}
