"""`[alerts]` in the config file: shapes and ranges refused as one line naming the key,
rule names checked by `check-config`, every key documented in the example config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole.alerts.rules import BUILTIN_RULES
from opsconsole.config import load_fleet
from opsconsole.config.alerts import AlertsConfig, RuleOverride
from opsconsole.errors import ConfigError
from tests.config.test_config import BASE, REPO, host, run_cli

FLEET = BASE + host("sg1-r01-n[01-02]", **{"class": '"h200-8"'})


def write(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "opsconsole.toml"
    path.write_text(FLEET + "\n" + alerts)
    return path


def load_error(tmp_path: Path, alerts: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_fleet(write(tmp_path, alerts))
    message = str(info.value)
    assert "\n" not in message
    return message.split("opsconsole.toml: ", 1)[1]


def test_defaults_without_an_alerts_section(tmp_path):
    alerts = load_fleet(write(tmp_path, "")).config.alerts
    assert (alerts.silence_keep_days, alerts.resolved_keep_days) == (30, 180)
    assert alerts.rules == {} and alerts.xid_ignore == []
    assert alerts.xid_application_severity == "info" and alerts.xid_lookback_h == 24.0
    assert alerts.ack_timeout_default_s is None


def test_alerts_keys_are_read(tmp_path):
    alerts = load_fleet(
        write(
            tmp_path,
            "[alerts]\nxid_ignore = [13, 43]\nsilence_keep_days = 7\nack_timeout_default_s = 3600\n"
            "[alerts.rules.gpu_temp_high]\nthreshold = 80\nenabled = true\n",
        )
    ).config.alerts
    assert alerts.xid_ignore == [13, 43] and alerts.silence_keep_days == 7
    assert alerts.ack_timeout_default_s == 3600.0
    assert alerts.rules["gpu_temp_high"].threshold == 80.0


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ("[alerts]\ncolour = 1\n", "alerts.colour: unknown key"),
        (
            "[alerts.rules.gpu_temp_high]\ntreshold = 80\n",
            "alerts.rules.gpu_temp_high.treshold: unknown key",
        ),
        (
            '[alerts.rules.gpu_temp_high]\nseverity = "page"\n',
            "alerts.rules.gpu_temp_high.severity: expected one of 'info', 'warning' or"
            " 'critical', got \"page\"",
        ),
        (
            "[alerts.rules.gpu_temp_high]\nthreshold = -1\n",
            "alerts.rules.gpu_temp_high.threshold: input should be greater than or equal to 0,"
            " got -1",
        ),
        ('[alerts]\nxid_ignore = ["13"]\n', 'alerts.xid_ignore[0]: expected an integer, got "13"'),
        ("[alerts]\nresolved_keep_days = 0\n", "alerts.resolved_keep_days: input should be"),
        ('[alerts]\nsilence_keep_days = "30d"\n', "alerts.silence_keep_days: expected an integer"),
        ("[alerts.rules.net_rtt_high]\nenabled = 0\n", "alerts.rules.net_rtt_high.enabled:"),
    ],
)
def test_bad_alerts_values_name_the_key(tmp_path, alerts, message):
    assert load_error(tmp_path, alerts).startswith(message)


def test_check_config_reports_an_unknown_rule_in_one_line(tmp_path):
    bad = write(tmp_path, "[alerts.rules.gpu_temp_hgh]\nthreshold = 80\n")
    result = run_cli("check-config", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{bad}: alerts.rules.gpu_temp_hgh: unknown rule (did you mean gpu_temp_high?" in line


def test_check_config_prints_the_alert_rules(tmp_path):
    path = write(tmp_path, "[alerts.rules.host_stale]\nenabled = false\n")
    text = run_cli("check-config", "--config", str(path), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "off: host_stale" in text.stdout
    as_json = run_cli("check-config", "--json", "--config", str(path), cwd=tmp_path)
    alerts = json.loads(as_json.stdout)["alerts"]
    assert alerts["disabled"] == ["host_stale"]
    assert alerts["rules"]["rack_power_high"]["threshold"] == 90.0


def test_the_example_config_documents_every_rule_and_key():
    text = (REPO / "config.example.toml").read_text()
    missing = [r.name for r in BUILTIN_RULES if f"# {r.name} " not in text]
    missing += [k for k in AlertsConfig.model_fields if k != "rules" and k not in text]
    missing += [k for k in RuleOverride.model_fields if f"#   {k}" not in text]
    assert missing == []
