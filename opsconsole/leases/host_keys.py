"""An operator's decision on a changed SSH host key, recorded in the audit chain.

The audit row and the decision are one: the row is appended inside the store's write
transaction and the decision (editing known_hosts, clearing the ledger entry) runs before
COMMIT, so a decision that cannot be written leaves no audit row, and no key is trusted
without one. Collection owns the files; this module only knows it is handed a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import sqlite_utils

from opsconsole.errors import LeaseError
from opsconsole.leases.audit import append_audit
from opsconsole.store.transaction import write_transaction

T = TypeVar("T")

KEY_ACTIONS = {"trust": "host.trust_key", "reject": "host.reject_key"}


def record_key_decision(
    db: sqlite_utils.Database,
    *,
    host: str,
    decision: str,
    old_fingerprints: list[str],
    new_fingerprint: str,
    comment: str,
    operator: str,
    now_ts: float,
    apply: Callable[[], T],
) -> T:
    """Append `host.trust_key` or `host.reject_key` for `host` and run `apply` in the same
    transaction; a comment is required (why the operator believes the key)."""
    if decision not in KEY_ACTIONS:
        raise LeaseError(f"unknown host key decision {decision!r}")
    comment = comment.strip()
    if not comment:
        raise LeaseError(f"host {host}: a comment is required (who checked the key, and how)")
    with write_transaction(db, f"recording the host key decision for {host}") as conn:
        append_audit(
            conn,
            ts=now_ts,
            operator=operator,
            action=KEY_ACTIONS[decision],
            subject=f"host:{host}",
            before={"fingerprints": list(old_fingerprints)},
            after={"fingerprint": new_fingerprint, "decision": decision, "comment": comment},
        )
        return apply()


class PendingKey(Protocol):
    # Read-only, so collection's frozen KeyChange satisfies it.
    @property
    def old_fingerprints(self) -> tuple[str, ...]: ...

    @property
    def new_fingerprint(self) -> str: ...


class KeyLedgerLike(Protocol):
    """What a decision needs of collection's ledger (`opsconsole.collect.host_keys`)."""

    def get(self, host: str) -> PendingKey | None: ...

    def settle(self, host: str, *, trust: bool) -> object: ...


def decide_host_key(
    db: sqlite_utils.Database,
    ledger: KeyLedgerLike,
    host: str,
    *,
    decision: str,
    comment: str,
    operator: str,
    now_ts: float,
) -> PendingKey:
    """Trust or reject the key waiting for `host`: audit row first, then the files, in one
    transaction. `opsconsole hosts trust-key` and the console's `K` both call this."""
    change = ledger.get(host)
    if change is None:
        raise LeaseError(f"host {host}: no changed host key is waiting for a decision")
    record_key_decision(
        db,
        host=host,
        decision=decision,
        old_fingerprints=list(change.old_fingerprints),
        new_fingerprint=change.new_fingerprint,
        comment=comment,
        operator=operator,
        now_ts=now_ts,
        apply=lambda: ledger.settle(host, trust=decision == "trust"),
    )
    return change
