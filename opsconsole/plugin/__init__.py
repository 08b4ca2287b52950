"""Plugins: collectors, rules, notifiers and exporters that a site adds without forking.

The public API for plugin authors is re-exported here; see `api.py` for the kinds and
`plugins/README.md` for a walkthrough.
"""

from opsconsole.config.alerts import Severity
from opsconsole.plugin.api import (
    AlertTransition,
    CollectorPlugin,
    ExporterPlugin,
    FleetView,
    NotifierPlugin,
    PluginConfig,
    PluginContext,
    PluginError,
    PluginInfo,
    PluginKind,
    PluginRule,
    RuleHit,
    RulePlugin,
    TransitionKind,
)

__all__ = [
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
    "Severity",
    "TransitionKind",
]
