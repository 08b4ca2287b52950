"""The plugin API: what a plugin declares and the four kinds it may be.

A plugin is a Python module (or package) that exposes `PLUGIN = PluginInfo(...)`: its
kind, name, version, a pydantic model for its `[plugins.NAME]` table and a factory. The
factory gets the validated config and a `PluginContext` and returns an object of the
kind's protocol below. Every hook runs on the plugin's own worker thread
(`isolation.PluginWorker`), never on the poller's loop, the alert engine's thread or the
UI, so a hook may block on the network; it is still time-limited and retried.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from opsconsole.alerts.notify import AlertTransition, TransitionKind
from opsconsole.config.alerts import Severity
from opsconsole.config.base import Section as PluginConfig
from opsconsole.errors import OpsconsoleError


class PluginError(OpsconsoleError):
    """A plugin cannot be found, loaded or configured; the message names it."""


class PluginKind(StrEnum):
    COLLECTOR = "collector"
    """An extra probe run on each host over the existing SSH connection."""
    RULE = "rule"
    """Extra alert rules, with the built-in rules' for/keep_firing_for/severity."""
    NOTIFIER = "notifier"
    """Hears alert transitions: firing, acknowledged, unacknowledged, resolved, refired."""
    EXPORTER = "exporter"
    """Publishes fleet state (Prometheus, a file, a bus)."""


@dataclass(frozen=True)
class PluginContext:
    """What the host gives a plugin besides its config."""

    name: str
    store_path: Path | None
    """The console's SQLite file; None when running without a store."""
    config_dir: Path
    """The config file's directory: relative paths in a plugin's config start here."""
    log: logging.Logger

    def resolve_path(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.config_dir / path

    def secret(self, *, env: str | None = None, file: str | None = None, what: str) -> str | None:
        """A secret from an environment variable or a file (first line, stripped); None
        when neither is set. The value is never logged; errors name where, not what."""
        if env:
            value = os.environ.get(env)
            if value is None:
                raise PluginError(
                    f"plugin {self.name}: {what}: environment variable {env} is unset"
                )
            return value.strip()
        if file:
            path = self.resolve_path(file)
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PluginError(
                    f"plugin {self.name}: {what}: cannot read {path}: {exc.strerror}"
                ) from None
        return None


@dataclass(frozen=True)
class PluginInfo:
    """The declaration a plugin module exposes as `PLUGIN`."""

    kind: PluginKind
    name: str
    version: str
    config_schema: type[BaseModel]
    """Usually a `PluginConfig` (unknown keys refused, no coercion). Validates
    `[plugins.NAME]` (minus `enabled`); errors name the key path."""
    factory: Callable[[Any, PluginContext], object]
    """(validated config, context) -> an object of the kind's protocol."""
    description: str = ""


# --- the four kinds -------------------------------------------------------------------


@runtime_checkable
class NotifierPlugin(Protocol):
    def notify(self, transitions: Sequence[AlertTransition]) -> None:
        """Deliver (or durably queue) the transitions; may block, on the plugin's thread."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class FleetView:
    """The fleet as exporters see it: plain data, safe to keep and read on any thread."""

    ts: float
    hosts: Mapping[str, Mapping[str, Any]]
    """Per host, the `poll --once --json` host shape without events, processes, MIG,
    Ethernet and facts (`opsconsole.plugin.view.host_dict`)."""
    leases: Sequence[Mapping[str, Any]] = ()
    """Active leases: id, tenant, start_ts, end_ts, gpu_count, slots [{host, gpu_index}]."""
    alerts: Sequence[Mapping[str, Any]] = ()
    """Open alerts: id, rule, severity, state, labels, fired_ts."""
    tenants: Mapping[tuple[str, int], str] = field(default_factory=dict)
    """(host, gpu_index) -> the tenant holding that slot now."""
    extra: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Collector plugins' readings per host (`{"ipmi_power": {"node_power_w": 5200}}`)."""


@runtime_checkable
class ExporterPlugin(Protocol):
    def start(self) -> None:
        """Open listeners; raise PluginError with one line if it cannot."""

    def publish(self, view: FleetView) -> None:
        """The newest fleet view; called every publish interval."""

    def close(self) -> None: ...


@runtime_checkable
class CollectorPlugin(Protocol):
    command: str
    """Shell command run on each host over its SSH connection."""
    interval_s: float

    def parse(self, host: str, exit_status: int | None, stdout: str) -> Mapping[str, float]:
        """Readings from the command's output, units in the names (`node_power_w`)."""


@dataclass(frozen=True)
class PluginRule:
    """One alert rule a rule plugin adds; the same settings as a built-in rule."""

    name: str
    severity: Severity
    """`Severity.WARNING` (its text, "warning", is accepted and checked on loading)."""
    summary: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0


@dataclass(frozen=True)
class RuleHit:
    """A rule plugin's finding: which rule, on what (labels: host, gpu ...), in words."""

    rule: str
    labels: Mapping[str, str]
    summary: str


@runtime_checkable
class RulePlugin(Protocol):
    rules: Sequence[PluginRule]

    def check(self, view: FleetView) -> Sequence[RuleHit]:
        """Findings now; the host applies for_s/keep_firing_for_s and records them."""


KIND_PROTOCOLS: dict[PluginKind, type] = {
    PluginKind.NOTIFIER: NotifierPlugin,
    PluginKind.EXPORTER: ExporterPlugin,
    PluginKind.COLLECTOR: CollectorPlugin,
    PluginKind.RULE: RulePlugin,
}

__all__ = [
    "KIND_PROTOCOLS",
    "AlertTransition",
    "CollectorPlugin",
    "ExporterPlugin",
    "FleetView",
    "NotifierPlugin",
    "PluginConfig",
    "PluginContext",
    "PluginError",
    "PluginInfo",
    "PluginKind",
    "PluginRule",
    "RuleHit",
    "RulePlugin",
    "TransitionKind",
]
