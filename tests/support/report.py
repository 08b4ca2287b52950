"""The report tests' fixed names: who acts, when the history starts, the leased node."""

from __future__ import annotations

import time

from opsconsole.leases import (
    GpuSlot,
)

OPERATOR = "test-operator"


NOW = float(int(time.time()) // 3600 * 3600 - 12 * 3600)
"""The history starts 12 h ago, on the hour: the CLI reports up to the real now."""


N1 = "sg1-r01-n01"


SLOTS = (GpuSlot(N1, 0), GpuSlot(N1, 1))


REASON = "INC-7: tenant's own pick"


def minute(db, host, gpu, minute_ts, util, power_w):
    db.conn.execute(
        "INSERT INTO gpu_minute (host, gpu_index, minute_ts, n, util_pct_n, util_pct_avg,"
        " temp_c_n, power_w_n, power_w_avg, mem_used_mib_n, clock_event_n)"
        " VALUES (?, ?, ?, 30, 30, ?, 0, 30, ?, 0, 0)",
        (host, gpu, minute_ts, util, power_w),
    )
    db.conn.commit()
