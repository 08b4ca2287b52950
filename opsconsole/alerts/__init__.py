"""Alerts: XID catalogue, built-in rules over the live state, and the alert lifecycle in
the store. See ARCHITECTURE.md, "Alerts"."""

from opsconsole.alerts.conditions import Condition, PendingTracker
from opsconsole.alerts.impact import (
    AlertContext,
    IdleGpu,
    LeaseView,
    build_context,
    idle_leased_gpus,
    label_impact,
    lease_view,
)
from opsconsole.alerts.rules import BUILTIN_RULES, AlertSettings, Rule, evaluate
from opsconsole.alerts.settings import alert_settings, settings_from_config
from opsconsole.alerts.silences import Silence, create_silence, expire_silence, list_silences
from opsconsole.alerts.store import (
    Alert,
    acknowledge,
    active_conditions,
    alert_history,
    apply_conditions,
    get_alert,
    list_alerts,
    resolve,
    unack,
)
from opsconsole.alerts.xid_catalogue import XidInfo, xid_info

__all__ = [
    "BUILTIN_RULES",
    "Alert",
    "AlertContext",
    "AlertSettings",
    "Condition",
    "IdleGpu",
    "LeaseView",
    "PendingTracker",
    "Rule",
    "Silence",
    "XidInfo",
    "acknowledge",
    "active_conditions",
    "alert_history",
    "alert_settings",
    "apply_conditions",
    "build_context",
    "create_silence",
    "evaluate",
    "expire_silence",
    "get_alert",
    "idle_leased_gpus",
    "label_impact",
    "lease_view",
    "list_alerts",
    "list_silences",
    "resolve",
    "settings_from_config",
    "unack",
    "xid_info",
]
