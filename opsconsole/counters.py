"""Names of link counters that count faults, shared by the alert rules, the capacity
report's defaults and the host view, so "errors/s" means the same sum everywhere.
No imports: config, collection and the UI may all use it."""

IB_ERROR_COUNTERS = (
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_xmit_discards",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
)
"""InfiniBand port counters (sysfs `counters/`) that only grow on a fault; traffic and
`port_xmit_wait` (congestion, not a fault) are left out."""
