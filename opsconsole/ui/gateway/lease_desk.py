"""The console's one door to the leases layer. Screens call it only from thread workers;
it never touches Textual.

Why a lock: the console's lease connection is shared by every worker thread, and SQLite
transactions belong to a connection, not a thread: two workers inside one connection
would share (and commit) each other's transaction. One call at a time keeps each
leases-layer function in its own transaction.

Why its own connection (see `cli/console.py`): the poller's ingest thread writes
telemetry through the other one, in transactions of its own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import sqlite_utils
from textual.color import Color, ColorParseError

from opsconsole.config import Fleet
from opsconsole.errors import StoreError
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
from opsconsole.leases.model import OPEN_STATES
from opsconsole.store.transaction import database_path, describe_error
from opsconsole.ui.view.lease_board import LeaseBoard, LeaseFilter, build_board, fallback_colour
from opsconsole.validate.store import latest_by_host

T = TypeVar("T")
Health = dict[object, str]


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
        db: sqlite_utils.Database,
        fleet: Fleet,
        *,
        operator: str,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.fleet = fleet
        self.operator = operator
        self.clock = clock
        self._lock = threading.Lock()
        self._retired = False

    def call(self, doing: str, call: Callable[[], T]) -> T:
        """Run one leases-layer call alone on the connection; a raw sqlite3 error (a
        locked or vanished file) becomes the store's one-line StoreError."""
        with self._lock:
            if self._retired:
                raise StoreError(f"not {doing}: the console is closing")
            try:
                return call()
            except sqlite3.Error as exc:
                raise StoreError(describe_error(database_path(self.db), exc, doing)) from None

    def retire(self) -> None:
        """No call from now on; returns once none is running. The app calls it as it
        goes away, so whoever owns the connection may close it: sqlite3 crashes (not
        raises) when a connection is closed while another thread is inside it, and a
        thread worker queued before the exit could otherwise still start a read."""
        with self._lock:
            self._retired = True

    def close(self) -> None:
        """Close the connection once no worker is inside a call (at console exit)."""
        with self._lock:
            self._retired = True
            self.db.close()

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
