"""Why a host is not fresh, as shown to the operator. A module of its own so readers of
the live state (alerts, the UI) can name reasons without importing asyncssh."""

HOST_KEY_CHANGED = "host key changed"
HOST_KEY_UNKNOWN = "host key unknown"
AUTH_REFUSED = "auth refused"
TIMEOUT = "timeout"
REFUSED = "refused"
UNREACHABLE = "unreachable"
CONNECTION_LOST = "connection lost"
AGENT_ERROR = "agent error"
PROTOCOL_ERROR = "protocol error"

SECURITY_REASONS = frozenset({HOST_KEY_CHANGED, HOST_KEY_UNKNOWN, AUTH_REFUSED})
"""Failures that retrying cannot fix and that lock-out tools punish: retried slowly."""
RELAY_DOWN = "relay down"
"""A host behind a site relay the console cannot reach: its own health is unknown."""
