"""Health as the store last recorded it, for callers without live state (the CLI).

The console's own live state is fresher and is what the UI should pass to placement; this
reads the event log the poller writes: a host whose latest host event is `host_down` is
"down", and a GPU with a `gpu_lost` since the host last came up, and no utilisation
reading since, is "critical". It knows nothing the poller did not see while running.
"""

from __future__ import annotations

import sqlite_utils

from opsconsole.leases.booking import SlotHealth
from opsconsole.store.queries import events_of_kinds, first_reading_ts

DEFAULT_LOOKBACK_S = 7 * 86_400
HEALTH_EVENTS = ("host_down", "host_up", "gpu_lost")
"""The event kinds that say a host went down or came back, or a GPU fell off."""


def health_from_events(
    db: sqlite_utils.Database, now_ts: float, lookback_s: float = DEFAULT_LOOKBACK_S
) -> dict[object, str]:
    """{host: "down", (host, gpu_index): "critical"} from the last `lookback_s` of events."""
    conn = db.conn
    down: dict[str, bool] = {}
    lost: dict[tuple[str, int], float] = {}
    events = events_of_kinds(
        conn, HEALTH_EVENTS, since_ts=now_ts - lookback_s, until_ts=now_ts, until_inclusive=True
    )
    for host, gpu_index, kind, _message, ts in events:
        if kind == "host_down":
            down[host] = True
        elif kind == "host_up":
            down[host] = False
            for key in [k for k in lost if k[0] == host]:
                del lost[key]
        elif gpu_index is not None:
            lost[(host, gpu_index)] = ts
    health: dict[object, str] = {host: SlotHealth.DOWN for host, is_down in down.items() if is_down}
    for (host, gpu_index), lost_ts in lost.items():
        if first_reading_ts(conn, host, gpu_index, lost_ts, inclusive=True) is None:
            health[(host, gpu_index)] = SlotHealth.CRITICAL
    return health
