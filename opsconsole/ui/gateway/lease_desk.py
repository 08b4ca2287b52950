"""The leases layer, as the console asks it: each method is one leases-layer call (or a
read that builds a `LeaseBoard`) run through the `StoreGateway`'s lock. Called only from
thread workers; it never touches Textual widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlite_utils
from textual.color import Color, ColorParseError

from opsconsole.config import Fleet
from opsconsole.leases import (
    Lease,
    LeaseRequest,
    Placement,
    Tenant,
    allocate_lease,
    cancel_lease,
    extend_lease,
    list_leases,
    list_tenants,
    preview_lease,
    release_lease,
)
from opsconsole.leases.handover import HANDOVER_STATES, node_states
from opsconsole.leases.host_gpus import GpuLedgerLike, PendingGpus, accept_extra_gpus
from opsconsole.leases.host_keys import KeyLedgerLike, PendingKey, decide_host_key
from opsconsole.leases.model import OPEN_STATES
from opsconsole.ui.gateway.store import StoreGateway
from opsconsole.ui.view.lease_board import LeaseBoard, LeaseFilter, build_board, fallback_colour
from opsconsole.validate.store import RunRecord, latest_by_host

T = TypeVar("T")
Health = dict[object, str]
"""Live health in the leases layer's words: host name or (host, GPU index) -> state."""


def tenant_colour(tenant: Tenant) -> str:
    """The tenant's own colour as #rrggbb (names like "teal" too), else one by name."""
    if tenant.colour:
        try:
            return Color.parse(tenant.colour).hex
        except ColorParseError:
            pass
    return fallback_colour(tenant.name)


class LeaseDesk:
    def __init__(
        self,
        gateway: StoreGateway,
        fleet: Fleet,
        *,
        operator: str,
        clock: Callable[[], float],
    ) -> None:
        self.gateway = gateway
        self.fleet = fleet
        self.operator = operator
        self.clock = clock

    @property
    def db(self) -> sqlite_utils.Database:
        return self.gateway.db

    def call(self, doing: str, call: Callable[[], T]) -> T:
        """One call alone on the console's connection (see `StoreGateway.call`)."""
        return self.gateway.call(doing, call)

    # --- reading ----------------------------------------------------------------------
    def load_board(self, lease_filter: LeaseFilter) -> LeaseBoard:
        now_ts = self.clock()

        def read() -> LeaseBoard:
            tenants = list_tenants(self.db)
            open_leases = list_leases(self.db, states=OPEN_STATES, now_ts=now_ts)
            if lease_filter == LeaseFilter():
                listed = open_leases
            else:
                listed = list_leases(
                    self.db, tenant=lease_filter.tenant, states=lease_filter.states, now_ts=now_ts
                )
            states = node_states(self.db, self.fleet, now_ts=now_ts)
            in_handover = {h: s for h, s in states.items() if s.state in HANDOVER_STATES}
            return build_board(
                self.fleet, now_ts, lease_filter, tenants, open_leases, listed,
                handover=in_handover, validations=latest_by_host(self.db),
                colour_of=tenant_colour,
            )  # fmt: skip

        return self.call("reading leases", read)

    # --- allocating -------------------------------------------------------------------
    def preview(self, request: LeaseRequest, health: Health) -> Placement:
        """The slots allocation would choose now (within the request's site and
        locality, which the leases layer applies)."""
        now_ts = self.clock()
        return self.call(
            f"previewing a lease for {request.tenant}",
            lambda: preview_lease(self.db, self.fleet, request, health=health, now_ts=now_ts),
        )

    def allocate(self, request: LeaseRequest, health: Health) -> Lease:
        now_ts = self.clock()
        return self.call(
            f"allocating a lease for {request.tenant}",
            lambda: allocate_lease(
                self.db, self.fleet, request, operator=self.operator, health=health, now_ts=now_ts
            ),
        )

    # --- changing ---------------------------------------------------------------------
    def extend(self, lease_id: int, end_ts: float, health: Health) -> Lease:
        now_ts = self.clock()
        return self.call(
            f"extending lease {lease_id}",
            lambda: extend_lease(
                self.db,
                self.fleet,
                lease_id,
                end_ts,
                operator=self.operator,
                health=health,
                now_ts=now_ts,
            ),
        )

    def release(self, lease_id: int) -> Lease:
        now_ts = self.clock()
        return self.call(
            f"releasing lease {lease_id}",
            lambda: release_lease(self.db, lease_id, operator=self.operator, now_ts=now_ts),
        )

    def cancel(self, lease_id: int) -> Lease:
        now_ts = self.clock()
        return self.call(
            f"cancelling lease {lease_id}",
            lambda: cancel_lease(self.db, lease_id, operator=self.operator, now_ts=now_ts),
        )

    # --- hosts (the host view's `v`, `K` and `G`) ---------------------------------------
    def validate(self, host: str, level: str) -> RunRecord:
        """A validation run on `host` (refused, and stored as refused, while its GPUs are
        leased), on a connection of its own: a run takes seconds to minutes."""
        from opsconsole.ui.gateway.validation_run import run_validation

        return self.gateway.call_apart(
            f"validating {host}",
            lambda db: run_validation(
                db, self.fleet, [host], level=level, operator=self.operator, clock=self.clock
            ),
        )

    def trust_host_key(self, ledger: KeyLedgerLike, host: str, comment: str) -> PendingKey:
        """The key `host` now offers becomes its known key (audit row and known_hosts
        edit in one transaction)."""
        now_ts = self.clock()
        return self.call(
            f"trusting the host key of {host}",
            lambda: decide_host_key(
                self.db, ledger, host,
                decision="trust", comment=comment, operator=self.operator, now_ts=now_ts,
            ),
        )  # fmt: skip

    def accept_extra_gpus(self, ledger: GpuLedgerLike, host: str, comment: str) -> PendingGpus:
        """The GPUs `host` reports beyond its accepted count are accepted (audit row and
        ledger edit in one transaction)."""
        now_ts = self.clock()
        return self.call(
            f"accepting the extra GPUs of {host}",
            lambda: accept_extra_gpus(
                self.db, ledger, host, comment=comment, operator=self.operator, now_ts=now_ts
            ),
        )
