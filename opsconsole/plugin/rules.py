"""Rule plugins feeding the alert engine.

A rule plugin's `check(view)` runs on its worker thread whenever a fleet view is
published; its findings become raw `Condition`s held here, and the engine picks up the
latest ones at each evaluation (`ConditionSource`), timing them with the same tracker as
the built-in rules. The rule's severity, `for_s` and `keep_firing_for_s` come from the
plugin's `PluginRule`, overridden by `[plugins.NAME.rules.RULE]` like `[alerts.rules]`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from pydantic import Field

from opsconsole.alerts.conditions import Condition, Kind
from opsconsole.config.alerts import RuleOverride, Severity
from opsconsole.plugin.api import FleetView, PluginConfig, PluginError, PluginRule, RulePlugin

SEVERITIES = tuple(severity.value for severity in Severity)


class PluginRuleConfig(PluginConfig):
    """Base for a rule plugin's config: per-rule overrides as in `[alerts.rules]`."""

    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    """`[plugins.NAME.rules.RULE]`: enabled, severity, for_s, keep_firing_for_s."""


def effective_rules(plugin_name: str, plugin: RulePlugin, config: object) -> dict[str, PluginRule]:
    """The plugin's rules with the config's overrides applied; PluginError names a bad one."""
    rules: dict[str, PluginRule] = {}
    for rule in plugin.rules:
        if rule.severity not in SEVERITIES:
            raise PluginError(
                f"rule {rule.name}: severity {rule.severity!r} is not one of {SEVERITIES}"
            )
        rules[rule.name] = dataclasses.replace(rule, severity=Severity(rule.severity))
    overrides: dict[str, RuleOverride] = getattr(config, "rules", {}) or {}
    for name, override in overrides.items():
        if name not in rules:
            raise PluginError(
                f"plugins.{plugin_name}.rules.{name}: no such rule (it has {', '.join(rules)})"
            )
        if not override.enabled:
            del rules[name]
            continue
        base = rules[name]
        rules[name] = PluginRule(
            name,
            override.severity or base.severity,
            base.summary,
            base.for_s if override.for_s is None else override.for_s,
            base.keep_firing_for_s
            if override.keep_firing_for_s is None
            else override.keep_firing_for_s,
        )
    return rules


class RuleRunner:
    """Holds a rule plugin's latest findings as Conditions for the engine."""

    def __init__(self, name: str, plugin: RulePlugin, rules: dict[str, PluginRule]):
        self.name = name
        self.plugin = plugin
        self.rules = rules
        self._lock = threading.Lock()
        self._latest: list[Condition] = []
        self.unknown_rules: set[str] = set()

    def check(self, view: FleetView) -> None:
        """On the plugin's worker: run the plugin, keep what it found."""
        hits = self.plugin.check(view)
        out: list[Condition] = []
        for hit in hits:
            rule = self.rules.get(hit.rule)
            if rule is None:
                self.unknown_rules.add(hit.rule)  # disabled, or not declared: ignored
                continue
            labels = {k: str(v) for k, v in hit.labels.items()}
            host = view.hosts.get(labels.get("host", ""))
            if host is not None:
                labels.setdefault("site", str(host.get("site")))
                labels.setdefault("rack", str(host.get("rack")))
            where = labels.get("host", "") + (f" GPU {labels['gpu']}" if "gpu" in labels else "")
            summary = f"{where}: {hit.summary}" if where else hit.summary
            condition = Condition(
                rule=rule.name,
                severity=rule.severity,
                kind=Kind.CONDITION,
                labels=labels,
                summary=summary,
                for_s=rule.for_s,
                keep_firing_for_s=rule.keep_firing_for_s,
                from_readings="host" in labels,  # held while the host cannot be seen
            )
            out.append(condition)
        with self._lock:
            self._latest = out

    def current_conditions(self, now_ts: float) -> list[Condition]:
        with self._lock:
            return list(self._latest)


def rule_names(runners: Sequence[RuleRunner]) -> list[str]:
    return [name for r in runners for name in r.rules]
