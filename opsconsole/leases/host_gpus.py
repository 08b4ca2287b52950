"""An operator's acceptance of the GPUs a host reports beyond its configured count,
recorded in the audit chain.

As with host keys (`opsconsole.leases.host_keys`), the audit row is appended inside the
store's write transaction and the decision (collection's GPU ledger file) is written
before COMMIT: no GPUs count in fleet totals without a row saying who and why.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlite_utils

from opsconsole.errors import LeaseError
from opsconsole.leases.audit import append_audit
from opsconsole.store.transaction import write_transaction

ACCEPT_GPUS = "host.accept_gpus"


class PendingGpus(Protocol):
    configured: int
    accepted: int
    reported: int
    extra_uuids: tuple[str, ...]


class GpuLedgerLike(Protocol):
    """What an acceptance needs of collection's ledger (`opsconsole.collect.gpu_ledger`)."""

    pending: dict[str, Any]

    def refresh(self) -> bool: ...

    def accept(
        self, host: str, *, operator: str, comment: str, now_ts: float, reported: int
    ) -> object: ...


def accept_extra_gpus(
    db: sqlite_utils.Database,
    ledger: GpuLedgerLike,
    host: str,
    *,
    comment: str,
    operator: str,
    now_ts: float,
) -> PendingGpus:
    """Accept what `host` reports beyond its accepted count: audit row first, then the
    ledger, in one transaction. `opsconsole hosts accept-gpus` and the console's `G`."""
    comment = comment.strip()
    if not comment:
        raise LeaseError(f"host {host}: a comment is required (why the extra GPUs are real)")
    ledger.refresh()
    extra: PendingGpus | None = ledger.pending.get(host)
    if extra is None:
        raise LeaseError(f"host {host}: reports no GPUs beyond those accepted")
    with write_transaction(db, f"recording the GPU acceptance for {host}") as conn:
        append_audit(
            conn,
            ts=now_ts,
            operator=operator,
            action=ACCEPT_GPUS,
            subject=f"host:{host}",
            before={"configured": extra.configured, "accepted": extra.accepted},
            after={
                "accepted": extra.reported,
                "extra_uuids": list(extra.extra_uuids),
                "comment": comment,
            },
        )
        ledger.accept(
            host, operator=operator, comment=comment, now_ts=now_ts, reported=extra.reported
        )
    return extra
