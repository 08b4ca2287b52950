"""`[alerts]`: rule overrides, XID handling, retention of silences and history.

Rule names are checked against the built-in rules by `opsconsole.alerts.settings`, which
knows them; this module only checks shapes and ranges."""

from __future__ import annotations

from opsconsole.config_sections.base import Section


class AlertsConfig(Section):
    pass
