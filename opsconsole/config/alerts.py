"""`[alerts]`: rule overrides, XID handling, retention of silences and history.

Rule names, and which keys a rule takes, are checked against the built-in rules by
`opsconsole.alerts.settings`, which knows them; this module only checks shapes and ranges
(the config layer imports nothing of the alerts layer)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from opsconsole.config.base import Section


class Severity(StrEnum):
    """How bad an alert is. Defined here, in the lowest layer that needs it (the config
    names it in rule overrides); the alerts layer, the XID catalogue and the plugins use
    this one. A StrEnum: it compares equal to its text and is stored as its text."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SeverityKey = Annotated[Severity, Field(strict=False)]
"""A severity as the TOML file writes it ("critical"), validated into `Severity`."""
XidCode = Annotated[int, Field(ge=0)]


class RuleOverride(Section):
    """`[alerts.rules.<rule_name>]`: any key left out keeps the built-in value."""

    enabled: bool = True
    """false: the rule never fires."""
    severity: SeverityKey | None = None
    threshold: float | None = Field(None, ge=0)
    """In the rule's own unit (°C, ms, errors/s, % ...); only rules that have one take it."""
    for_s: float | None = Field(None, ge=0)
    """The condition must hold this long before the alert fires."""
    keep_firing_for_s: float | None = Field(None, ge=0)
    """The condition must stay clear this long before the alert resolves (no flapping)."""
    window_h: float | None = Field(None, gt=0)
    """Hours the rule looks ahead (lease_ending_soon) or back (gpu_leased_idle)."""


class AlertsConfig(Section):
    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    """Per-rule overrides by built-in rule name."""
    xid_ignore: list[XidCode] = Field(default_factory=list)
    """XID codes that never alert (their events are still stored)."""
    xid_application_severity: SeverityKey = Severity.INFO
    """Severity of application-caused XIDs (13, 31, 43, 45): the job's fault, not the GPU's."""
    xid_lookback_h: float = Field(24.0, gt=0)
    """XIDs older than this are not alerted (the agent replays the kernel log to boot)."""
    silence_keep_days: int = Field(30, ge=0)
    """Ended silences are kept this long, then pruned."""
    resolved_keep_days: int = Field(180, ge=1)
    """Resolved alerts (with their history) are kept this long, then pruned."""
    ack_timeout_default_s: float | None = Field(None, gt=0)
    """An acknowledgement given without a timeout lapses after this; unset: never."""
