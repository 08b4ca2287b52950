"""Proof for tenants: the per-tenant compliance report (JSON, Markdown, PDF), the signed
audit export, and the site key that signs both. No Textual; reads every table through
the package that owns it (leases, alerts, store)."""

from opsconsole.report.proof import build_export, verify_export, verify_report
from opsconsole.report.tenant import Period, build_tenant_report

__all__ = ["Period", "build_export", "build_tenant_report", "verify_export", "verify_report"]
