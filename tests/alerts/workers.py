"""Worker processes for the concurrent acknowledgement test (importable under spawn)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from opsconsole.alerts.store import acknowledge
from opsconsole.errors import AlertError
from opsconsole.store import open_store


def ack_worker(path: str, alert_id: int, operator: str, barrier: Barrier, out: Queue) -> None:
    db = open_store(path)
    try:
        barrier.wait(timeout=60)
        acknowledge(db, alert_id, operator, f"{operator} on it", now_ts=1_750_000_100.0)
        out.put((operator, "won"))
    except AlertError as exc:
        out.put((operator, f"error: {exc}"))
    finally:
        db.close()


def lead_worker(path: str, owner: str, barrier: Barrier, out: Queue) -> None:
    from opsconsole.alerts.leader import hold_lead

    db = open_store(path)
    try:
        barrier.wait(timeout=60)
        out.put((owner, hold_lead(db, owner, 1_750_000_000.0, 10.0)))
    finally:
        db.close()
