"""`[alerts]` from the config turned into `AlertSettings`, with the checks only the alerts
layer can make: that each `[alerts.rules.NAME]` names a built-in rule and sets only what
that rule takes.

Why here and not in the config's pydantic model: the config layer does not know the rules
(it sits below alerts), and a typo in a rule name must not be silently ignored: an
operator who writes `gpu_temp_hgh` believes the threshold changed. `opsconsole
check-config` and every command that evaluates alerts call this, so the mistake is one
line naming the file and key (`opsconsole.toml: alerts.rules.gpu_temp_hgh: unknown rule
(did you mean gpu_temp_high? known: ...)`).
"""

from __future__ import annotations

import dataclasses
import difflib

from opsconsole.alerts.rules import (
    BUILTIN_RULES,
    HOUR_S,
    XID_RULE_PREFIX,
    AlertSettings,
    RuleChanges,
)
from opsconsole.config import Fleet
from opsconsole.config.alerts import AlertsConfig
from opsconsole.errors import ConfigError

BUILTIN_BY_NAME = {rule.name: rule for rule in BUILTIN_RULES}


def settings_from_config(config: AlertsConfig, where: str) -> AlertSettings:
    """The settings `[alerts]` asks for; `where` (the config file) starts every error.
    Raises ConfigError for an unknown rule, a key the rule does not take, or retention
    shorter than the XID look-back."""
    rules = dict(BUILTIN_BY_NAME)
    for name, override in config.rules.items():
        key = f"alerts.rules.{name}"
        rule = BUILTIN_BY_NAME.get(name)
        if rule is None:
            raise ConfigError(f"{where}: {key}: {_unknown_rule(name)}")
        if override.threshold is not None and rule.threshold is None:
            raise ConfigError(f"{where}: {key}.threshold: {name} takes no threshold")
        if override.window_h is not None and rule.window_s is None:
            raise ConfigError(f"{where}: {key}.window_h: {name} takes no window")
        if not override.enabled:
            del rules[name]
            continue
        changes: RuleChanges = {}
        if override.severity is not None:
            changes["severity"] = override.severity
        if override.threshold is not None:
            changes["threshold"] = override.threshold
        if override.for_s is not None:
            changes["for_s"] = override.for_s
        if override.keep_firing_for_s is not None:
            changes["keep_firing_for_s"] = override.keep_firing_for_s
        if override.window_h is not None:
            changes["window_s"] = override.window_h * HOUR_S
        rules[name] = dataclasses.replace(rule, **changes)
    if config.resolved_keep_days * 24 <= config.xid_lookback_h:
        raise ConfigError(
            f"{where}: alerts.resolved_keep_days: {config.resolved_keep_days} day(s) is not"
            f" longer than xid_lookback_h ({config.xid_lookback_h:g} h); a replayed XID"
            " would re-open an alert resolved by hand"
        )
    return AlertSettings(
        rules=rules,
        xid_ignore=frozenset(config.xid_ignore),
        xid_lookback_s=config.xid_lookback_h * HOUR_S,
        xid_application_severity=config.xid_application_severity,
    )


def alert_settings(fleet: Fleet) -> AlertSettings:
    """The fleet's `[alerts]` settings, with its racks' power budgets for
    `rack_power_high`. Raises ConfigError naming the config file."""
    settings = settings_from_config(fleet.config.alerts, str(fleet.path))
    return dataclasses.replace(settings, racks=dict(fleet.racks))


def _unknown_rule(name: str) -> str:
    known = sorted(BUILTIN_BY_NAME)
    if name.startswith(XID_RULE_PREFIX):
        hint = "XID alerts are tuned with alerts.xid_ignore and alerts.xid_application_severity; "
    else:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown rule ({hint}known: {', '.join(known)})"
