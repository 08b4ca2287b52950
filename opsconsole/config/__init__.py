"""The configuration: TOML parsed and validated into a typed `Config`, host ranges
expanded into a `Fleet` of `Host`s (`fleet.py`), and the sections that belong to one
feature each (`alerts.py`, `capacity.py`, `validation.py`) on one pydantic base
(`base.py`). Import the public names from here."""

from opsconsole.config.alerts import AlertsConfig, RuleOverride, Severity
from opsconsole.config.base import Section
from opsconsole.config.capacity import CapacityConfig
from opsconsole.config.fleet import (
    DEFAULT_CONFIG_NAME,
    Config,
    Fleet,
    Host,
    HostClass,
    HostGroup,
    PollingSettings,
    Rack,
    RackConfig,
    SiteConfig,
    SshSettings,
    StoreSettings,
    default_config_path,
    describe_validation_error,
    fleet_from_dict,
    key_path,
    load_fleet,
)
from opsconsole.config.validation import ClassThresholds, ValidationCommands, ValidationConfig

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "AlertsConfig",
    "CapacityConfig",
    "ClassThresholds",
    "Config",
    "Fleet",
    "Host",
    "HostClass",
    "HostGroup",
    "PollingSettings",
    "Rack",
    "RackConfig",
    "RuleOverride",
    "Section",
    "Severity",
    "SiteConfig",
    "SshSettings",
    "StoreSettings",
    "ValidationCommands",
    "ValidationConfig",
    "default_config_path",
    "describe_validation_error",
    "fleet_from_dict",
    "key_path",
    "load_fleet",
]
