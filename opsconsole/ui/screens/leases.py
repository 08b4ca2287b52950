"""Leases: who holds which GPUs, in a table filtered by tenant and state, and the next
weeks per site in a calendar. Opened with `l`, `:leases [TENANT]` or the palette.

Everything here reads `app.leases.board`, which a worker rebuilds after every change and
on a timer; the screen never queries the store itself. Changes (allocate, extend,
release, cancel) ask first and pass the read-only guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import hostlist
from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Static

from opsconsole.leases import Lease
from opsconsole.leases.slotspec import format_slots
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import LeaseRefused, LeasesChanged, LeaseWritten
from opsconsole.ui.screens.confirm import ConfirmScreen
from opsconsole.ui.screens.extend import ExtendScreen
from opsconsole.ui.screens.prompt import PromptScreen
from opsconsole.ui.view.lease_board import LeaseBoard, LeaseFilter
from opsconsole.ui.view.lease_text import DIM, lease_title, short_ts
from opsconsole.ui.widgets.fleet_summary import FleetSummary
from opsconsole.ui.widgets.key_bar import KeyBar
from opsconsole.ui.widgets.lease_calendar import LeaseCalendar
from opsconsole.ui.widgets.lease_table import LeaseTable

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp


def handover_words(board: LeaseBoard) -> str:
    """ "2 cleaning (n[01-02]), 1 failed-validation (n05)": nodes between tenants."""
    by_state: dict[str, list[str]] = {}
    for host, node in sorted(board.handover.items()):
        by_state.setdefault(str(node.state), []).append(host)
    return ", ".join(
        f"{len(hosts)} {state} ({hostlist.collect_hostlist(hosts)})"
        for state, hosts in by_state.items()
    )


NO_STORE = (
    " This console has no lease store (started without one, or it could not be opened);"
    " leases cannot be shown or changed here."
)


class LeasesScreen(Screen[None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "allocate", "Allocate"),
        Binding("e", "extend", "Extend"),
        Binding("x", "release", "Release"),
        Binding("c", "cancel_lease", "Cancel lease"),
        Binding("t", "tenant_filter", "Tenant"),
        Binding("s", "next_states", "State"),
    ]

    def __init__(self) -> None:
        super().__init__(id="leases")

    def compose(self) -> ComposeResult:
        yield FleetSummary(id="summary")
        yield Static(id="lease-status")
        yield LeaseTable(id="lease-table")
        yield Static(id="lease-detail")
        yield LeaseCalendar(self.app.model.fleet, id="lease-calendar")
        yield KeyBar()  # the screen's keys and q Quit, at 120 columns

    @property
    def table(self) -> LeaseTable:
        return self.query_one(LeaseTable)

    def on_mount(self) -> None:
        self.sub_title = "leases"
        self.table.focus()
        self.show_board()
        self.app.leases.refresh()

    def on_screen_resume(self) -> None:
        self.show_board()

    # --- drawing ----------------------------------------------------------------------
    def on_leases_changed(self, message: LeasesChanged) -> None:
        try:
            self.show_board()
        except NoMatches:
            pass  # the screen is being taken down as the board arrived

    def show_board(self) -> None:
        """The app has a new board (or new trouble): redraw everything from it."""
        app = self.app
        board = app.leases.board
        self._show_status()
        if board is not None:
            self.table.show(board)
        self.query_one(LeaseCalendar).show(board)
        self._show_detail()
        self.query_one(FleetSummary).update_summary()

    def _show_status(self) -> None:
        app = self.app
        text = Text(no_wrap=True, overflow="ellipsis")
        if app.leases.desk is None:
            text.append(NO_STORE, "#ffd75f")
            self.query_one("#lease-status", Static).update(text)
            return
        lease_filter = app.leases.filter
        text.append(" tenant ", DIM)
        text.append(lease_filter.tenant or "all", "bold #ffd75f" if lease_filter.tenant else "bold")
        text.append("   state ", DIM)
        text.append(lease_filter.states_label, "bold")
        board = app.leases.board
        if board is not None:
            text.append(f"   {len(board.listed)} lease(s)", DIM)
            text.append(f"   as of {short_ts(board.now_ts)}", DIM)
        elif not app.leases.trouble:
            text.append("   loading…", DIM)
        if board is not None and board.handover:
            text.append("   handover ", DIM)
            text.append(handover_words(board), "bold #d7af5f")
        if app.leases.trouble:
            text.append(f"   ⚠ {app.leases.trouble}", "bold #ffd75f")
        self.query_one("#lease-status", Static).update(text)

    def _show_detail(self) -> None:
        lease = self.current_lease
        board = self.app.leases.board
        text = Text(no_wrap=True, overflow="ellipsis")
        if lease is not None and board is not None:
            text.append(" " + lease_title(lease, board.now_ts), "bold")
            text.append(f" · by {lease.created_by} {short_ts(lease.created_ts)}", DIM)
            if lease.note:
                text.append(f" · {lease.note}", DIM)
            text.append(f"\n {lease.placement}\n {format_slots(lease.slots)}")
        self.query_one("#lease-detail", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @property
    def current_lease(self) -> Lease | None:
        board = self.app.leases.board
        lease_id = self.table.current_lease_id
        return board.lease(lease_id) if board is not None and lease_id is not None else None

    # --- filters ----------------------------------------------------------------------
    def set_filter(self, lease_filter: LeaseFilter) -> None:
        self.app.leases.filter = lease_filter
        self._show_status()
        self.app.leases.refresh()

    def action_next_states(self) -> None:
        self.set_filter(self.app.leases.filter.next_states())

    def action_tenant_filter(self) -> None:
        board = self.app.leases.board
        names = [t.name for t in board.tenants] if board is not None else []
        current = self.app.leases.filter

        def done(text: str | None) -> None:
            if text is not None:
                self.set_filter(LeaseFilter(text.strip() or None, current.states))

        self.app.push_screen(
            PromptScreen(
                "tenant", value=current.tenant or "", placeholder="empty: all", suggestions=names
            ),
            done,
        )

    def action_back(self) -> None:
        self.app.go_fleet()

    # --- changes ------------------------------------------------------------------------
    @changes_state("allocate lease")
    def action_allocate(self) -> None:
        self.app.leases.open_allocate()

    def _selected(self, doing: str, states: tuple[str, ...], hint: str) -> Lease | None:
        """The lease under the cursor if `doing` fits its state, else a message."""
        lease = self.current_lease
        board = self.app.leases.board
        if lease is None or board is None:
            self.notify(f"Move the cursor to a lease to {doing}.", severity="warning")
            return None
        state = lease.state(board.now_ts)
        if state not in states:
            self.notify(
                f"Lease {lease.id} is {state}: cannot {doing} it{hint}.", severity="warning"
            )
            return None
        return lease

    @changes_state("extend lease")
    def action_extend(self) -> None:
        lease = self._selected("extend", ("reserved", "active"), "; allocate a new lease")
        if lease is not None:
            self.app.push_screen(ExtendScreen(lease), self._written("extend"))

    @changes_state("release lease")
    def action_release(self) -> None:
        lease = self._selected("release", ("active",), " (a reservation is cancelled: c)")
        if lease is None:
            return
        question = (
            f"Release lease {lease.id} ({lease.tenant}, {lease.gpu_count} GPUs) now?"
            " Its GPUs are free from this moment."
        )
        self.app.push_screen(
            ConfirmScreen(question),
            lambda yes: self.release_now(lease.id) if yes else None,
        )

    @changes_state("cancel lease")
    def action_cancel_lease(self) -> None:
        lease = self._selected("cancel", ("reserved",), " (an active lease is released: x)")
        if lease is None:
            return
        question = (
            f"Cancel reservation {lease.id} ({lease.tenant}, {lease.gpu_count} GPUs from"
            f" {short_ts(lease.start_ts)})? It will never start."
        )
        self.app.push_screen(
            ConfirmScreen(question),
            lambda yes: self.cancel_now(lease.id) if yes else None,
        )

    def _written(self, action: str) -> Callable[[Lease | None], None]:
        def done(lease: Lease | None) -> None:
            if lease is not None:
                self.app.leases.written(lease, action)

        return done

    @changes_state("release lease")
    def release_now(self, lease_id: int) -> None:
        self._change_in_thread("release", lease_id)

    @changes_state("cancel lease")
    def cancel_now(self, lease_id: int) -> None:
        self._change_in_thread("cancel", lease_id)

    def _change_in_thread(self, action: str, lease_id: int) -> None:
        desk = self.app.leases.need_desk()
        change = desk.release if action == "release" else desk.cancel
        desk.gateway.ask(
            self,
            lambda: change(lease_id),
            lambda lease: LeaseWritten(lease, action),
            lambda text: LeaseRefused(text, action),
            group="lease-change",
            exclusive=False,
        )

    def on_lease_written(self, message: LeaseWritten) -> None:
        message.stop()
        self.app.leases.written(message.lease, message.action)

    def on_lease_refused(self, message: LeaseRefused) -> None:
        message.stop()
        self.notify(
            message.text, title=f"Lease {message.action} refused", severity="error", markup=False
        )
