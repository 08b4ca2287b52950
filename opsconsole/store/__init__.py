"""The SQLite store: schema and migrations, inventory, per-minute GPU rollups, events and
retention. See ARCHITECTURE.md, "Store schema"."""

from opsconsole.store.db import open_store
from opsconsole.store.ingest import EVENT_KINDS, HOST_EVENT_KINDS, TelemetryIngest
from opsconsole.store.retention import apply_retention

__all__ = ["EVENT_KINDS", "HOST_EVENT_KINDS", "TelemetryIngest", "apply_retention", "open_store"]
