"""The app's lease side, kept out of app.py: one worker that reads the leases into a
`LeaseBoard`, the handlers that spread a new board to every screen, and the navigation
to the Leases screen and the allocate dialog.

Why one board for the whole app: the fleet grid (TENANT column), the header (leased and
free GPUs), the host view and the Leases screen must agree on who holds what; they all
draw the same board, replaced whole when a read finishes (harlequin's results-as-messages).
A store that cannot be read leaves the last board in place and says why in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.screen import ModalScreen
from textual.worker import get_current_worker

from opsconsole.errors import LeaseError, StoreError
from opsconsole.leases import Lease
from opsconsole.leases.times import format_ts
from opsconsole.ui.controllers.broadcast import tell_screens
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import LeasesLoaded, LeaseStoreTrouble
from opsconsole.ui.screens.allocate import AllocateScreen
from opsconsole.ui.screens.leases import LeasesScreen
from opsconsole.ui.view.lease_board import LeaseBoard, LeaseFilter

if TYPE_CHECKING:
    from opsconsole.ui.gateway.lease_desk import LeaseDesk
    from opsconsole.ui.view.model import FleetModel

LEASE_REFRESH_S = 30.0
"""Leases also change from the CLI and other consoles, and reservations start by the clock."""
DONE = {"allocate": "Allocated", "extend": "Extended", "release": "Released", "cancel": "Cancelled"}


class LeasesMixin:
    """Mixed into OpsConsoleApp; expects `model`, `notify`, `screen_stack` and friends."""

    lease_desk: LeaseDesk | None
    model: FleetModel

    def init_leases(self, desk: LeaseDesk | None) -> None:
        self.lease_desk = desk
        self.lease_board: LeaseBoard | None = None
        self.lease_filter = LeaseFilter()
        self.lease_trouble = ""
        """One line on why the leases cannot be read now ("" when they can)."""
        self.model.leases_shown = desk is not None

    def start_leases(self) -> None:
        if self.lease_desk is not None:
            self.refresh_leases()
            self.set_interval(LEASE_REFRESH_S, self.refresh_leases)

    # --- reading ----------------------------------------------------------------------
    def refresh_leases(self) -> None:
        """Read the leases again, off the UI thread; the board arrives as a message."""
        if self.lease_desk is not None:
            self._load_leases(self.lease_filter)

    @work(thread=True, exclusive=True, group="lease-board", exit_on_error=False)
    def _load_leases(self, lease_filter: LeaseFilter) -> None:
        try:
            board = self.lease_desk.load_board(lease_filter)
        except (LeaseError, StoreError) as exc:
            self.post_message(LeaseStoreTrouble(str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(LeasesLoaded(board))

    def on_leases_loaded(self, message: LeasesLoaded) -> None:
        board = message.board
        if board.lease_filter != self.lease_filter:
            return  # read for a filter since changed; the newer read is on its way
        self.lease_board = board
        self.lease_trouble = ""
        self._leases_changed(self.model.apply_tenancy(board.by_host))

    def on_lease_store_trouble(self, message: LeaseStoreTrouble) -> None:
        self.lease_trouble = f"leases: {message.text}"
        self._leases_changed(set())

    def _leases_changed(self, changed_hosts: set[str]) -> None:
        tell_screens(self, "leases_changed", changed_hosts)

    # --- navigation -------------------------------------------------------------------
    def action_leases(self) -> None:
        if not isinstance(self.screen, ModalScreen):  # a key on a dialog is the dialog's
            self.go_leases()

    def go_leases(self, tenant: str | None = None) -> None:
        """Show the Leases screen; `tenant` sets its filter ("" or "all": every tenant)."""
        if tenant is not None:
            name = None if tenant.strip() in ("", "all", "*") else tenant.strip()
            self.lease_filter = LeaseFilter(name, self.lease_filter.states)
        if isinstance(self.screen, LeasesScreen):
            self.screen.leases_changed(set())
            self.refresh_leases()
            return
        self.go_fleet()
        self.push_screen(LeasesScreen())

    @changes_state("allocate lease")
    def open_allocate(self, tenant: str | None = None) -> None:
        if self.lease_desk is None:
            self.notify("This console has no lease store.", title="Leases", severity="error")
            return
        if not isinstance(self.screen, LeasesScreen):
            self.go_leases()
        self.push_screen(
            AllocateScreen(tenant if tenant is not None else self.lease_filter.tenant or ""),
            lambda lease: self.lease_written(lease, "allocate") if lease is not None else None,
        )

    def lease_written(self, lease: Lease, action: str) -> None:
        """A change committed: say so and read the leases again."""
        text = f"{DONE.get(action, action)} lease {lease.id} for {lease.tenant}"
        if action != "cancel":
            text += f": {lease.gpu_count} GPU(s) until {format_ts(lease.booked_end_ts)}"
        self.notify(text, title="Leases", markup=False)
        self.refresh_leases()
