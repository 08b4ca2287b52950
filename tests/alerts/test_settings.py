"""`[alerts]` to AlertSettings: overrides applied, mistakes refused as one line naming the
file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.alerts.conditions import PendingTracker
from opsconsole.alerts.rules import BUILTIN_RULES, evaluate
from opsconsole.alerts.settings import alert_settings, settings_from_config
from opsconsole.config import load_fleet
from opsconsole.config.alerts import AlertsConfig
from opsconsole.errors import ConfigError
from tests.alerts.fleet import T0, feed, fleet_state, gpu, healthy

BUILTIN = {rule.name: rule for rule in BUILTIN_RULES}
WHERE = "opsconsole.toml"


def settings(**raw):
    return settings_from_config(AlertsConfig.model_validate(raw), WHERE)


def error(**raw) -> str:
    with pytest.raises(ConfigError) as info:
        settings(**raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_no_alerts_section_gives_the_built_in_rules():
    got = settings()
    assert dict(got.rules) == BUILTIN
    assert got.xid_ignore == frozenset() and got.xid_lookback_s == 24 * 3600.0
    assert got.xid_application_severity == "info"


def test_overrides_change_only_the_keys_given():
    got = settings(
        rules={
            "gpu_temp_high": {"threshold": 80, "severity": "critical"},
            "net_rtt_high": {"for_s": 5, "keep_firing_for_s": 0},
            "lease_ending_soon": {"window_h": 48},
            "host_stale": {"enabled": False},
        },
        xid_ignore=[13, 43],
        xid_application_severity="warning",
        xid_lookback_h=6,
    )
    temp = got.rules["gpu_temp_high"]
    assert (temp.threshold, temp.severity) == (80.0, "critical")
    assert temp.for_s == BUILTIN["gpu_temp_high"].for_s
    rtt = got.rules["net_rtt_high"]
    assert (rtt.for_s, rtt.keep_firing_for_s, rtt.threshold) == (5.0, 0.0, 50.0)
    assert got.rules["lease_ending_soon"].window_s == 48 * 3600.0
    assert "host_stale" not in got.rules
    untouched = set(BUILTIN) - {"gpu_temp_high", "net_rtt_high", "lease_ending_soon", "host_stale"}
    assert all(got.rules[name] == BUILTIN[name] for name in untouched)
    assert got.xid_ignore == frozenset({13, 43}) and got.xid_lookback_s == 6 * 3600.0
    assert got.xid_application_severity == "warning"


def test_an_unknown_rule_names_the_file_the_key_and_a_close_match():
    message = error(rules={"gpu_temp_hgh": {"threshold": 80}})
    assert message.startswith(
        "opsconsole.toml: alerts.rules.gpu_temp_hgh: unknown rule (did you mean gpu_temp_high?"
    )
    assert "known: " in message and "rack_power_high" in message


def test_xid_classes_are_not_rules_and_the_message_says_where_to_tune_them():
    message = error(rules={"xid_application": {"severity": "warning"}})
    assert message.startswith("opsconsole.toml: alerts.rules.xid_application: unknown rule")
    assert "xid_application_severity" in message


def test_a_threshold_or_window_the_rule_does_not_take_is_refused():
    assert error(rules={"host_down": {"threshold": 3}}) == (
        "opsconsole.toml: alerts.rules.host_down.threshold: host_down takes no threshold"
    )
    assert error(rules={"gpu_temp_high": {"window_h": 3}}) == (
        "opsconsole.toml: alerts.rules.gpu_temp_high.window_h: gpu_temp_high takes no window"
    )
    assert error(rules={"lease_ending_soon": {"threshold": 3}}).endswith("takes no threshold")


def test_resolved_alerts_must_outlive_the_xid_lookback():
    message = error(resolved_keep_days=1, xid_lookback_h=48)
    assert message.startswith("opsconsole.toml: alerts.resolved_keep_days: 1 day(s)")
    settings(resolved_keep_days=3, xid_lookback_h=48)


def write(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "ops.toml"
    path.write_text(
        '[[sites]]\nname = "SG1"\n\n[[racks]]\nnames = "r1"\nsite = "SG1"\n'
        "power_budget_kw = 20\nhost_overhead_w = 900\n\n"
        '[host_classes.c]\ngpus = 2\n\n[[hosts]]\nnames = "r1-n[1-2]"\nrack = "r1"\n'
        'class = "c"\n\n' + alerts
    )
    return path


def test_alert_settings_from_a_fleet_carry_rack_budgets_and_name_the_file(tmp_path):
    fleet = load_fleet(write(tmp_path, "[alerts.rules.rack_power_high]\nthreshold = 75\n"))
    got = alert_settings(fleet)
    assert got.rules["rack_power_high"].threshold == 75.0
    assert got.racks["r1"].power_budget_kw == 20.0 and got.racks["r1"].host_overhead_w == 900.0
    bad = load_fleet(write(tmp_path, "[alerts.rules.rack_power]\nthreshold = 75\n"))
    with pytest.raises(ConfigError, match=r"^.*ops\.toml: alerts\.rules\.rack_power: unknown"):
        alert_settings(bad)


def test_a_rule_disabled_in_the_config_does_not_fire():
    hot = healthy(T0, gpus=[gpu(0, temp_c=99.0), gpu(1)])
    for enabled, expected in ((True, ["gpu_temp_high"]), (False, [])):
        rules = {"gpu_temp_high": {"for_s": 0, "enabled": enabled}}
        state, tracker = fleet_state(), PendingTracker()
        feed(state, T0, hot)
        got = evaluate(state, T0, tracker, settings(rules=rules))
        assert [c.rule for c in got] == expected
