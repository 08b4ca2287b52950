"""Usage accounting as `opsconsole usage` reports it: the leases layer's figures per
tenant (`leases.usage`), with the alert-affected GPU-hours from the alerts layer's
critical spans (`alerts.history.critical_alert_spans`). Composed here, above both, so
the leases layer reads no alert table."""

from __future__ import annotations

import sqlite_utils

from opsconsole.alerts.history import critical_alert_spans
from opsconsole.leases import usage
from opsconsole.leases.usage import METHOD, TenantUsage, usage_csv, usage_json

__all__ = ["METHOD", "TenantUsage", "tenant_usage", "usage_csv", "usage_json"]


def tenant_usage(
    db: sqlite_utils.Database,
    since_ts: float,
    until_ts: float,
    *,
    tenant: str | None = None,
    now_ts: float | None = None,
) -> list[TenantUsage]:
    """One row per tenant (every tenant, or `tenant` alone), by name; see `leases.usage`
    for the method."""
    return usage.tenant_usage(
        db, since_ts, until_ts, tenant=tenant, now_ts=now_ts, alert_spans=critical_alert_spans
    )
