"""Tenant leases: tenants, leases over GPU slots, placement, drains, usage accounting and
the hash-chained audit log. Plain functions over the store's connection; no Textual.

Every change is one BEGIN IMMEDIATE transaction that checks the invariants (no slot in two
overlapping leases, quota, allowed sites, drains and health) and appends its audit row;
a refusal is a one-line LeaseError and writes nothing. See notes/leases.md.
"""

from opsconsole.leases.allocate import LeaseRequest, allocate_lease, preview_lease
from opsconsole.leases.audit import AuditReport, audit_entries, operator_name, verify_audit
from opsconsole.leases.drains import Drained, drain, list_drains, undrain
from opsconsole.leases.health import health_from_events
from opsconsole.leases.lifecycle import (
    cancel_lease,
    extend_lease,
    get_lease,
    list_leases,
    release_lease,
    shorten_lease,
)
from opsconsole.leases.model import (
    LEASE_STATES,
    Drain,
    GpuSlot,
    Lease,
    LeaseState,
    Placement,
    Tenant,
    lease_state,
)
from opsconsole.leases.reader import LeaseReader, lease_reader
from opsconsole.leases.tenants import (
    archive_tenant,
    create_tenant,
    get_tenant,
    list_tenants,
    update_tenant,
)
from opsconsole.leases.times import format_ts, parse_duration, parse_time
from opsconsole.leases.usage import TenantUsage, tenant_usage, usage_csv, usage_json

__all__ = [
    "LEASE_STATES",
    "AuditReport",
    "Drain",
    "Drained",
    "GpuSlot",
    "Lease",
    "LeaseReader",
    "LeaseRequest",
    "LeaseState",
    "Placement",
    "Tenant",
    "TenantUsage",
    "allocate_lease",
    "archive_tenant",
    "audit_entries",
    "cancel_lease",
    "create_tenant",
    "drain",
    "extend_lease",
    "format_ts",
    "get_lease",
    "get_tenant",
    "health_from_events",
    "lease_reader",
    "lease_state",
    "list_drains",
    "list_leases",
    "list_tenants",
    "operator_name",
    "parse_duration",
    "parse_time",
    "preview_lease",
    "release_lease",
    "shorten_lease",
    "tenant_usage",
    "undrain",
    "update_tenant",
    "usage_csv",
    "usage_json",
    "verify_audit",
]
