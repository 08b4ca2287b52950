"""A rule plugin (the shipped `example_rule`) adds an alert rule: its findings on a
published fleet view are timed and recorded by the real alert engine, with the rule's
settings overridden from `[plugins.example_rule.rules.NAME]` like a built-in rule."""

from __future__ import annotations

import pytest

from opsconsole.alerts.engine import AlertEngine
from opsconsole.collect.snapshot import host_snapshot
from opsconsole.config import fleet_from_dict
from opsconsole.errors import ConfigError
from opsconsole.plugin import FleetView
from opsconsole.plugin.host import load_plugins
from tests.alerts.fleet import HOST, RAW, T0, feed, fleet_state, gpu, healthy
from tests.alerts.test_engine import INSTANT


def view_of(state, ts) -> FleetView:
    return FleetView(ts, {name: host_snapshot(h) for name, h in state.hosts.items()})


def test_example_rule_fires_after_its_for_and_resolves_through_the_engine(tmp_path):
    table = {
        "threshold_pct": 90,
        "rules": {"gpu_memory_nearly_full": {"for_s": 4.0, "severity": "critical"}},
    }
    fleet = fleet_from_dict(RAW | {"plugins": {"example_rule": table}}, tmp_path / "o.toml")
    plugins = load_plugins(fleet)
    engine = AlertEngine(fleet.store_path, INSTANT, condition_sources=plugins.condition_sources())
    engine.resume(T0)
    state = fleet_state()
    full = [
        gpu(0, mem_used_mib=79_000.0, mem_total_mib=80_000.0),
        gpu(1, mem_used_mib=1.0, mem_total_mib=80_000.0),
    ]

    def step(ts, sample):
        feed(state, ts, sample)
        plugins.publish(view_of(state, ts))
        assert plugins.wait_idle(10)
        return engine.step(state, ts)

    assert step(T0, healthy(T0, gpus=full)) == []  # seen, but for_s not yet held
    (alert,) = step(T0 + 5, healthy(T0 + 5, gpus=full))
    assert (alert.rule, alert.severity) == ("gpu_memory_nearly_full", "critical")
    assert alert.labels == {"host": HOST, "gpu": "0", "site": "SG1", "rack": "sg1-r01"}
    assert "memory 99% used" in alert.summary
    step(T0 + 7, healthy(T0 + 7))  # memory freed; keep_firing_for_s 30 s holds it
    assert [a.rule for a in engine.open_alerts()] == ["gpu_memory_nearly_full"]
    step(T0 + 40, healthy(T0 + 40))
    assert engine.open_alerts() == []
    engine.close()
    plugins.close()


def test_an_override_for_a_rule_the_plugin_lacks_is_a_config_error(tmp_path):
    table = {"rules": {"gpu_memory_full": {"for_s": 1.0}}}
    fleet = fleet_from_dict(RAW | {"plugins": {"example_rule": table}}, tmp_path / "o.toml")
    with pytest.raises(
        ConfigError, match=r"plugins\.example_rule\.rules\.gpu_memory_full: no such rule"
    ):
        load_plugins(fleet)
