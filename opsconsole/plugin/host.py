"""Loading the enabled plugins of a config, and holding them while the console runs.

A plugin is enabled by its `[plugins.NAME]` table (`enabled = false` turns it off again).
Its table is validated against the plugin's own pydantic schema, so a typo is a one-line
`ConfigError` with the key path, like any other key. A plugin that cannot be imported
(error or a hang past `IMPORT_TIMEOUT_S`), or whose factory raises, is reported once with
the reason and the console carries on without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opsconsole.alerts.notify import AlertNotifier, AlertTransition, ConditionSource
from opsconsole.config import Fleet, describe_validation_error
from opsconsole.errors import ConfigError
from opsconsole.plugin.api import (
    KIND_PROTOCOLS,
    CollectorPlugin,
    ExporterPlugin,
    FleetView,
    NotifierPlugin,
    PluginContext,
    PluginError,
    PluginInfo,
    PluginKind,
    RulePlugin,
)
from opsconsole.plugin.collectors import CollectorRunner
from opsconsole.plugin.discovery import FoundPlugin, discover
from opsconsole.plugin.isolation import PluginWorker, WorkerHealth
from opsconsole.plugin.rules import RuleRunner, effective_rules

log = logging.getLogger("opsconsole.plugins")

IMPORT_TIMEOUT_S = 10.0
"""A plugin whose import has not finished by then is reported hung and skipped."""


@dataclass
class PluginStatus:
    """One line of `opsconsole plugins`."""

    name: str
    origin: str
    location: str
    enabled: bool
    state: str
    """`disabled` (found, not configured), `loaded`, `failed`, `missing` (configured, not found)."""
    reason: str = ""
    kind: str | None = None
    version: str | None = None
    health: WorkerHealth | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "origin": self.origin,
            "location": self.location,
            "enabled": self.enabled,
            "state": self.state,
            "reason": self.reason,
        }
        if self.health is not None:
            out["health"] = {
                "state": self.health.state,
                "detail": self.health.detail,
                "queued": self.health.queued,
                "dropped": self.health.dropped,
                "failures": self.health.failures,
            }
        return out


@dataclass
class LoadedPlugin:
    info: PluginInfo
    instance: Any
    worker: PluginWorker
    status: PluginStatus
    rules: RuleRunner | None = None
    """For rule plugins: their latest findings, for the alert engine."""
    probe: CollectorRunner | None = None
    """For collector plugins: the command the poller runs on every host."""


def plugin_tables(fleet: Fleet) -> dict[str, dict[str, Any]]:
    return dict(fleet.config.plugins)


def plugin_folders(fleet: Fleet) -> list[Path]:
    return [fleet.resolve_path(folder) for folder in fleet.config.plugin_dirs]


def _enabled(table: dict[str, Any]) -> bool:
    return table.get("enabled", True) is not False


def import_plugin(found: FoundPlugin, timeout_s: float = IMPORT_TIMEOUT_S) -> PluginInfo:
    """Import the plugin's module on a helper thread, so a hang is a report, not a hang."""
    outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            outcome["module"] = _import(found)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=load, name=f"plugin-import-{found.name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise PluginError(f"import did not finish within {timeout_s:g} s")
    if "error" in outcome:
        exc = outcome["error"]
        raise PluginError(f"import failed: {type(exc).__name__}: {exc}")
    info = getattr(outcome["module"], found.attr, None)
    if not isinstance(info, PluginInfo):
        raise PluginError(f"{found.module} has no {found.attr} = PluginInfo(...)")
    if info.name != found.name:
        raise PluginError(f'declares the name "{info.name}" but was found as "{found.name}"')
    return info


def _import(found: FoundPlugin) -> Any:
    if found.path is None:
        return importlib.import_module(found.module)
    module_name = f"opsconsole_site_plugin_{found.name}"
    if found.path.is_dir():
        spec = importlib.util.spec_from_file_location(
            module_name, found.path / "__init__.py", submodule_search_locations=[str(found.path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(module_name, found.path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {found.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def validate_config(info: PluginInfo, table: dict[str, Any], config_path: Path) -> Any:
    """The plugin's table as its schema, or ConfigError naming `plugins.NAME.key`."""
    values = {k: v for k, v in table.items() if k != "enabled"}
    if not isinstance(table.get("enabled", True), bool):
        raise ConfigError(f"{config_path}: plugins.{info.name}.enabled: expected true or false")
    try:
        return info.config_schema.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"] and first["type"] == "value_error":  # a check across keys
            problem = f"plugins.{info.name}: {first['ctx']['error']}"
        else:
            problem = f"plugins.{info.name}.{describe_validation_error(exc)}"
        raise ConfigError(f"{config_path}: {problem}") from None


@dataclass
class PluginSet:
    """The plugins of one run: what was found, what loaded, and their workers."""

    statuses: list[PluginStatus] = field(default_factory=list)
    loaded: list[LoadedPlugin] = field(default_factory=list)

    def of_kind(self, kind: PluginKind) -> list[LoadedPlugin]:
        return [p for p in self.loaded if p.info.kind == kind]

    def notifiers(self) -> list[AlertNotifier]:
        """The notifier plugins as the alert engine's notifiers: each call only queues."""
        return [IsolatedNotifier(p) for p in self.of_kind(PluginKind.NOTIFIER)]

    def host_probes(self) -> list[CollectorRunner]:
        """The collector plugins as the poller's host probes."""
        return [p.probe for p in self.of_kind(PluginKind.COLLECTOR) if p.probe is not None]

    def condition_sources(self) -> list[ConditionSource]:
        """The rule plugins as the alert engine's extra condition sources."""
        return [p.rules for p in self.of_kind(PluginKind.RULE) if p.rules is not None]

    def start(self) -> None:
        for plugin in self.of_kind(PluginKind.EXPORTER):
            exporter: ExporterPlugin = plugin.instance
            plugin.worker.submit("start", exporter.start)

    def publish(self, view: FleetView) -> None:
        for plugin in self.of_kind(PluginKind.EXPORTER):
            exporter: ExporterPlugin = plugin.instance
            plugin.worker.submit("publish", partial(exporter.publish, view), coalesce=True)
        for plugin in self.of_kind(PluginKind.RULE):
            if plugin.rules is not None:
                plugin.worker.submit("check", partial(plugin.rules.check, view), coalesce=True)

    @property
    def wants_views(self) -> bool:
        return bool(self.of_kind(PluginKind.EXPORTER) or self.of_kind(PluginKind.RULE))

    def wait_idle(self, timeout_s: float) -> bool:
        return all(p.worker.wait_idle(timeout_s) for p in self.loaded)

    def report(self) -> list[PluginStatus]:
        for plugin in self.loaded:
            plugin.status.health = plugin.worker.health()
        return self.statuses

    def trouble(self) -> list[str]:
        """`NAME STATE` of each plugin that failed, is missing, retrying or hung."""
        return [
            f"{status.name} {status.state if status.health is None else status.health.state}"
            for status in self.report()
            if status.state in ("failed", "missing")
            or (status.health is not None and status.health.state != "ok")
        ]

    def close(self, wait_s: float = 5.0) -> None:
        """Let queued work finish (within `wait_s`), then close each plugin on its thread."""
        for plugin in self.loaded:
            closer: Callable[[], object] | None = getattr(plugin.instance, "close", None)
            if closer is not None:
                plugin.worker.submit("close", closer)
        for plugin in self.loaded:
            if not plugin.worker.close(wait_s):
                log.error("plugin %s: still busy at shutdown; left behind", plugin.info.name)


class IsolatedNotifier:
    """An `AlertNotifier` for the engine that hands transitions to the plugin's worker."""

    def __init__(self, plugin: LoadedPlugin):
        self.plugin = plugin

    def alert_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        notifier: NotifierPlugin = self.plugin.instance
        self.plugin.worker.submit("notify", partial(notifier.notify, list(transitions)))


def load_plugins(
    fleet: Fleet,
    *,
    store_path: Path | None = None,
    instantiate: bool = True,
    worker_timeout_s: float = 10.0,
    import_timeout_s: float = IMPORT_TIMEOUT_S,
    strict: bool = True,
) -> PluginSet:
    """Find every plugin, import and configure the enabled ones, and (with `instantiate`)
    build them with a worker each. ConfigError for a bad `[plugins.NAME]` table or a
    configured name that no plugin has; every other failure is a `failed` status.
    `strict=False` (for `opsconsole plugins`) reports those as statuses too."""
    found, shadowed = discover(plugin_folders(fleet))
    for line in shadowed:
        log.warning("%s", line)
    tables = plugin_tables(fleet)
    names = {f.name for f in found}
    out = PluginSet()
    for name in tables:
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            problem = f"plugins.{name}: no plugin of that name is installed (found: {known})"
            if strict:
                raise ConfigError(f"{fleet.path}: {problem}")
            out.statuses.append(PluginStatus(name, "", "", True, "missing", problem))
    for plugin in found:
        table = tables.get(plugin.name)
        enabled = table is not None and _enabled(table)
        status = PluginStatus(plugin.name, str(plugin.origin), plugin.location, enabled, "disabled")
        out.statuses.append(status)
        if table is None:
            continue
        try:
            info = import_plugin(plugin, import_timeout_s)
        except PluginError as exc:
            _fail(status, str(exc))
            continue
        status.kind, status.version = str(info.kind), info.version
        try:
            config = validate_config(info, table, fleet.path)
        except ConfigError as exc:
            if strict:
                raise
            status.state, status.reason = "failed", str(exc)
            continue
        if not enabled:
            continue
        if not instantiate:
            status.state = "loaded"
            continue
        context = PluginContext(
            plugin.name,
            store_path if store_path is not None else fleet.store_path,
            fleet.path.parent,
            logging.getLogger(f"opsconsole.plugins.{plugin.name}"),
        )
        try:
            instance = info.factory(config, context)
        except Exception as exc:
            _fail(status, f"could not start: {type(exc).__name__}: {exc}")
            continue
        protocol = KIND_PROTOCOLS[info.kind]
        if not isinstance(instance, protocol):
            _fail(status, f"does not implement the {info.kind} protocol ({protocol.__name__})")
            continue
        runner = None
        if info.kind == PluginKind.RULE and isinstance(instance, RulePlugin):
            try:
                runner = RuleRunner(
                    plugin.name, instance, effective_rules(plugin.name, instance, config)
                )
            except PluginError as exc:
                raise ConfigError(f"{fleet.path}: {exc}") from None
        status.state = "loaded"
        queue = max(100, 2 * len(fleet.hosts))  # a collector's parse per host may wait
        worker = PluginWorker(plugin.name, timeout_s=worker_timeout_s, max_queue=queue)
        probe = (
            CollectorRunner(plugin.name, instance, worker)
            if info.kind == PluginKind.COLLECTOR and isinstance(instance, CollectorPlugin)
            else None
        )
        out.loaded.append(LoadedPlugin(info, instance, worker, status, runner, probe))
    return out


def _fail(status: PluginStatus, reason: str) -> None:
    status.state, status.reason = "failed", reason
    log.error("plugin %s: %s", status.name, reason)
