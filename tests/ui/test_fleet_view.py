"""The fleet view: filter, metric switch, sort, rack power, and drawing only what changed."""

from __future__ import annotations

import pytest

from opsconsole.ui.screens.prompt import PromptScreen
from tests.support.ui import SIZE, notices, type_text, wait_until
from tests.ui.screen_text import screen_text
from tests.ui.synthetic import feed_all, synthetic_fleet, warm_fleet


def host_lines(grid) -> list[str]:
    return [name for kind, name in grid.lines if kind == "host"]


async def test_the_callers_fleet_is_drawn_before_the_first_key(app):
    """No pause: the state the caller drives is published on mount, not after a refresh
    that a loaded machine may delay past the first key."""
    async with app.run_test(size=SIZE):
        grid = app.screen.grid
        assert len(host_lines(grid)) == 32
        assert grid.current_line == ("host", "sg1-r01-n01")


class TestFilter:
    @pytest.mark.slow
    async def test_slash_filters_as_you_type_and_enter_keeps_it(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            await pilot.press("slash")
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await type_text(pilot, "r02-n1")
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, PromptScreen))
            assert host_lines(grid) == [f"sg1-r02-n{i}" for i in range(10, 17)]
            assert "7 of 32 hosts" in screen_text(app)

    @pytest.mark.slow
    async def test_filter_by_metric_and_state_columns(self, app, state):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            fleet_screen = app.screen
            fleet_screen.set_filter("temp>=80")
            hot = host_lines(fleet_screen.grid)
            assert hot and all(app.model.hosts[h].temp_max_c >= 80 for h in hot)
            assert len(hot) < 32
            fleet_screen.set_filter("state=fresh site=sg1")
            assert len(host_lines(fleet_screen.grid)) == 32
            fleet_screen.set_filter("state=down")
            assert host_lines(fleet_screen.grid) == []

    async def test_a_bad_filter_says_why_and_keeps_the_old_one(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            fleet_screen = app.screen
            fleet_screen.set_filter("rack=sg1-r01")
            assert not fleet_screen.set_filter("colour=blue")
            await pilot.pause()
            assert any("unknown column" in n.message for n in notices(app))
            assert fleet_screen.grid.row_filter.text == "rack=sg1-r01"

    @pytest.mark.slow
    async def test_esc_in_the_prompt_restores_the_previous_filter(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            await pilot.press("slash")
            await type_text(pilot, "n01")
            await pilot.pause()
            assert len(host_lines(grid)) == 2  # live while typing
            await pilot.press("escape")
            await pilot.pause()
            assert len(host_lines(grid)) == 32


class TestMetricAndSort:
    @pytest.mark.slow
    async def test_keys_select_and_cycle_the_metric(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            assert grid.metric.key == "util"
            await pilot.press("2")
            assert grid.metric.key == "temp"
            assert "GPUS · temperature °C" in screen_text(app)
            await pilot.press("m")
            assert grid.metric.key == "power"
            await pilot.press("5")
            assert grid.metric.key == "health"
            assert " ✓ " in screen_text(app)
            app.run_command("metric memory")
            assert grid.metric.key == "memory"

    @pytest.mark.slow
    async def test_metric_changes_the_cells(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            index = grid.lines.index(("host", "sg1-r01-n01"))
            snap = app.model.hosts["sg1-r01-n01"]
            cols = grid._columns()
            util = "".join(s.text for s in grid._line_strip(index, cols))
            assert f"{snap.gpus[0].util_gpu_pct:3.0f}" in util
            await pilot.press("2")
            temp = "".join(s.text for s in grid._line_strip(index, cols))
            assert f"{snap.gpus[0].temp_c:3.0f}" in temp and temp != util

    @pytest.mark.slow
    async def test_sort_by_a_metric_lists_hosts_flat_worst_first(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            app.run_command("sort temp")
            temps = [app.model.hosts[h].temp_max_c for h in host_lines(grid)]
            assert len(grid.lines) == 32  # no site or rack lines
            assert temps == sorted(temps, reverse=True)
            await pilot.press("S")
            temps = [app.model.hosts[h].temp_max_c for h in host_lines(grid)]
            assert temps == sorted(temps)
            app.run_command("sort site")
            assert grid.lines[0] == ("site", "SG1")

    @pytest.mark.slow
    async def test_s_cycles_every_sort_column(self, app):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            seen = []
            for _ in range(9):
                await pilot.press("s")
                seen.append(app.screen.grid.sort_key)
            assert set(seen) == {
                "site", "rack", "host", "state", "util", "temp", "power", "memory", "health"
            }  # fmt: skip


class TestRackPower:
    async def test_rack_lines_show_power_against_budget_or_no_budget(self, clock):
        fleet = synthetic_fleet(80)  # five racks: the fifth has no budget
        from opsconsole.ui.app import make_app

        app = make_app(fleet, warm_fleet(fleet, 3), clock=clock, publish_interval_s=3600)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            cols = grid._columns()

            def line(rack: str) -> str:
                strip = grid._line_strip(grid.lines.index(("rack", rack)), cols)
                return "".join(s.text for s in strip)

            members = app.model.hosts_by_rack["sg1-r01"]
            expected_kw = sum(app.model.hosts[h].power_w + 1200 for h in members) / 1000
            assert f"power {expected_kw:.1f} / 75 kW" in line("sg1-r01")
            assert "no budget set" in line("sg1-r05")


class TestIncrementalDrawing:
    async def test_a_batch_redraws_only_changed_visible_lines(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            await pilot.pause()
            before = grid.lines_painted
            await pilot.pause()
            assert grid.lines_painted == before  # nothing changed, nothing redrawn
            host = state.hosts["sg1-r01-n03"]
            from tests.ui.synthetic import synthetic_sample

            host.apply_sample(synthetic_sample(2, 99, clock.advance(2)), clock())
            state.changed(host, "sample")
            app.publish_now()
            await pilot.pause()
            # the host's line, its rack's line and its site's line
            assert grid.lines_painted - before == 3

    @pytest.mark.slow
    async def test_all_hosts_changing_redraws_only_the_screenful(self, app, state, clock):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            grid = app.screen.grid
            before = grid.lines_painted
            feed_all(state, clock.advance(2), 7)
            app.publish_now()
            await pilot.pause()
            visible = grid.size.height - 1
            assert 0 < grid.lines_painted - before <= visible
