"""The app's lease side, a controller the app holds (`app.leases`): it asks the gateway
for the leases as a `LeaseBoard`, keeps the newest board, tells every screen on the stack
that it changed (a `LeasesChanged` message), and opens the Leases screen and the
allocate dialog.

Why one board for the whole app: the fleet grid (TENANT column), the header (leased and
free GPUs), the host view and the Leases screen must agree on who holds what; they all
draw the same board, replaced whole when a read finishes (harlequin's results-as-messages).
A store that cannot be read leaves the last board in place and says why in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import ModalScreen

from opsconsole.errors import StoreError
from opsconsole.leases import Lease
from opsconsole.leases.times import format_ts
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import LeasesChanged, LeasesLoaded, LeaseStoreTrouble
from opsconsole.ui.gateway.lease_desk import LeaseDesk
from opsconsole.ui.screens.allocate import AllocateScreen
from opsconsole.ui.screens.leases import LeasesScreen
from opsconsole.ui.view.lease_board import LeaseBoard, LeaseFilter

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

LEASE_REFRESH_S = 30.0
"""Leases also change from the CLI and other consoles, and reservations start by the clock."""
DONE = {"allocate": "Allocated", "extend": "Extended", "release": "Released", "cancel": "Cancelled"}


class LeasesController:
    def __init__(self, app: OpsConsoleApp, desk: LeaseDesk | None) -> None:
        self.app = app
        self.desk = desk
        self.board: LeaseBoard | None = None
        self.filter = LeaseFilter()
        self.trouble = ""
        """One line on why the leases cannot be read now ("" when they can)."""
        app.model.leases_shown = desk is not None

    def need_desk(self) -> LeaseDesk:
        """The desk, for the dialogs and workers that open only when there is one."""
        if self.desk is None:
            raise StoreError("this console has no lease store")
        return self.desk

    def start(self) -> None:
        if self.desk is not None:
            self.refresh()
            self.app.set_interval(LEASE_REFRESH_S, self.refresh)

    # --- reading ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the leases again, off the UI thread; the board arrives as a message. A
        newer read cancels an older one still running (its board is dropped)."""
        desk = self.desk
        if desk is None:
            return
        lease_filter = self.filter
        desk.gateway.ask(
            self.app,
            lambda: desk.load_board(lease_filter),
            LeasesLoaded,
            LeaseStoreTrouble,
            group="lease-board",
        )

    def loaded(self, board: LeaseBoard) -> None:
        if board.lease_filter != self.filter:
            return  # read for a filter since changed; the newer read is on its way
        self.board = board
        self.trouble = ""
        self._changed(self.app.model.apply_tenancy(board.by_host))

    def unreadable(self, text: str) -> None:
        self.trouble = f"leases: {text}"
        self._changed(set())

    def _changed(self, changed_hosts: set[str]) -> None:
        self.app.tell_screens(LeasesChanged, changed_hosts)

    # --- navigation -------------------------------------------------------------------
    def action(self) -> None:
        """`l`: a key pressed on a dialog is the dialog's."""
        if not isinstance(self.app.screen, ModalScreen):
            self.go()

    def go(self, tenant: str | None = None) -> None:
        """Show the Leases screen; `tenant` sets its filter ("" or "all": every tenant)."""
        app = self.app
        if tenant is not None:
            name = None if tenant.strip() in ("", "all", "*") else tenant.strip()
            self.filter = LeaseFilter(name, self.filter.states)
        screen = app.screen
        if isinstance(screen, LeasesScreen):
            screen.show_board()
            self.refresh()
            return
        app.go_fleet()
        app.push_screen(LeasesScreen())

    @changes_state("allocate lease")
    def open_allocate(self, tenant: str | None = None) -> None:
        app = self.app
        if self.desk is None:
            app.notify("This console has no lease store.", title="Leases", severity="error")
            return
        if not isinstance(app.screen, LeasesScreen):
            self.go()

        def allocated(lease: Lease | None) -> None:
            if lease is not None:
                self.written(lease, "allocate")

        app.push_screen(
            AllocateScreen(tenant if tenant is not None else self.filter.tenant or ""), allocated
        )

    def written(self, lease: Lease, action: str) -> None:
        """A change committed: say so and read the leases again."""
        text = f"{DONE.get(action, action)} lease {lease.id} for {lease.tenant}"
        if action != "cancel":
            text += f": {lease.gpu_count} GPU(s) until {format_ts(lease.booked_end_ts)}"
        self.app.notify(text, title="Leases", markup=False)
        self.refresh()
