"""Allocate GPUs to a tenant: fill the form, Enter shows the placement the leases layer
would choose (slots and its one-line why), Enter again books exactly that request.

Why two Enters and not a separate yes/no: the preview is the question. An edit after a
preview makes it stale, and the next Enter previews again rather than booking something
the operator has not seen. Refusals (LeaseError, a locked store) stay in the dialog as
one line; nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static

from opsconsole.errors import LeaseError
from opsconsole.leases import Lease, LeaseRequest, Placement
from opsconsole.leases.slotspec import format_slots
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import LeasePreviewed, LeaseRefused, LeaseWritten
from opsconsole.ui.gateway.lease_desk import Health
from opsconsole.ui.view.lease_form import (
    LOCALITIES,
    AllocateForm,
    build_request,
    placement_health,
)
from opsconsole.ui.view.lease_text import DIM

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

FIELDS = (
    # field, label, initial value, placeholder, hint
    ("tenant", "Tenant", "", "tenant name", ""),
    ("amount", "GPUs", "8", "8, or 2 nodes", "a GPU count, or whole nodes: 2 nodes"),
    ("start", "Start", "now", "now, +2h, ISO 8601", "now, +2h, +7d, ISO 8601 (config timezone)"),
    ("end", "End", "+7d", "+7d or ISO 8601", ""),
    ("site", "Site", "", "any", ""),
    ("locality", "Locality", "", "any", f"all GPUs in one {' / '.join(LOCALITIES)}"),
)

KEYS_PREVIEW = "[b]Enter[/b] preview    [b]Tab[/b] next field    [b]Esc[/b] cancel"
KEYS_CONFIRM = "[b]Enter[/b] again: allocate these slots    [b]Esc[/b] cancel"


class AllocateScreen(ModalScreen[Lease | None]):
    if TYPE_CHECKING:
        app = getters.app(OpsConsoleApp)

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, tenant: str = "") -> None:
        super().__init__()
        self.initial_tenant = tenant
        self.previewed: AllocateForm | None = None
        """The form the shown preview belongs to; None when none is shown (or it failed)."""
        self.placement: Placement | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        board = self.app.leases.board
        tenants = [t.name for t in board.tenants] if board is not None else []
        sites = list(self.app.model.fleet.sites)
        suggestions: dict[str, list[str]] = {
            "tenant": tenants,
            "site": sites,
            "locality": list(LOCALITIES),
        }
        with Vertical(id="allocate-box", classes="dialog"):
            yield Label("Allocate GPUs", classes="dialog-title")
            for field, label, value, placeholder, hint in FIELDS:
                if field == "tenant":
                    value = self.initial_tenant
                if field == "site":
                    hint = f"optional: {', '.join(sites)}"
                words = suggestions.get(field)
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(
                        value,
                        placeholder=placeholder,
                        id=f"allocate-{field}",
                        suggester=SuggestFromList(words, case_sensitive=False) if words else None,
                    )
                    yield Label(hint, id=f"allocate-{field}-hint", classes="form-hint")
            yield Static(id="allocate-preview")
            yield Label(id="allocate-error", classes="dialog-error")
            yield Label(KEYS_PREVIEW, id="allocate-keys", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#allocate-tenant", Input).focus()
        self._show_tenant(self.initial_tenant)

    def form(self) -> AllocateForm:
        values = {field: self.query_one(f"#allocate-{field}", Input).value for field, *_ in FIELDS}
        return AllocateForm(**values)

    def _show_tenant(self, name: str) -> None:
        """Beside the tenant field: the contract limits placement will apply."""
        board = self.app.leases.board
        tenant = next((t for t in board.tenants if t.name == name.strip()), None) if board else None
        hint = ""
        if tenant is not None:
            sites = ", ".join(tenant.allowed_sites) if tenant.allowed_sites else "any site"
            hint = f"{sites} · quota {tenant.gpu_quota} GPUs"
        self.query_one("#allocate-tenant-hint", Label).update(hint)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "allocate-tenant":
            self._show_tenant(event.value)
        if self.previewed is not None and self.form() != self.previewed:
            self.previewed = None  # the preview no longer describes the form: show it stale
            self.query_one("#allocate-preview", Static).update(
                Text(" (changed since the preview: Enter to preview again)", DIM)
            )
            self.query_one("#allocate-keys", Label).update(KEYS_PREVIEW)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        form = self.form()
        if self.previewed is not None and form == self.previewed:
            self.allocate(form)
        else:
            self.preview(form)

    def _parse(self, form: AllocateForm) -> LeaseRequest | None:
        try:
            return build_request(form, self.app.clock(), self.app.model.fleet)
        except LeaseError as exc:
            self._refused(str(exc))
            return None

    def preview(self, form: AllocateForm) -> None:
        request = self._parse(form)
        if request is not None:
            self._start("previewing…")
            self._preview_in_thread(form, request, placement_health(self.app.model))

    @changes_state("allocate lease")
    def allocate(self, form: AllocateForm) -> None:
        request = self._parse(form)  # again: "now" and "+7d" move with the clock
        if request is not None:
            self._start("allocating…")
            self._allocate_in_thread(request, placement_health(self.app.model))

    def _start(self, doing: str) -> None:
        self.busy = True
        self.query_one("#allocate-error", Label).update(f"[#8a8a8a]{doing}[/]")

    def _preview_in_thread(self, form: AllocateForm, request: LeaseRequest, health: Health) -> None:
        desk = self.app.leases.need_desk()
        desk.gateway.ask(
            self,
            lambda: desk.preview(request, health),
            lambda placement: LeasePreviewed(placement, form),
            lambda text: LeaseRefused(text, "preview"),
            group="allocate",
            answer_when_cancelled=True,
        )

    def _allocate_in_thread(self, request: LeaseRequest, health: Health) -> None:
        desk = self.app.leases.need_desk()
        desk.gateway.ask(
            self,
            lambda: desk.allocate(request, health),
            lambda lease: LeaseWritten(lease, "allocate"),
            lambda text: LeaseRefused(text, "allocate"),
            group="allocate",
            answer_when_cancelled=True,
        )

    def on_lease_previewed(self, message: LeasePreviewed) -> None:
        message.stop()
        self.busy = False
        placement = message.placement
        self.query_one("#allocate-error", Label).update("")
        if message.form != self.form():
            return  # edited while the worker ran; the stale-preview note is already shown
        self.previewed, self.placement = message.form, placement
        text = Text()
        text.append(f" {len(placement.slots)} GPU(s): ", "bold")
        text.append(format_slots(placement.slots), "bold #5fd75f")
        text.append(f"\n {placement.explanation}")
        for warning in placement.warnings:
            text.append(f"\n override: {warning}", "#ffd75f")
        self.query_one("#allocate-preview", Static).update(text)
        self.query_one("#allocate-keys", Label).update(KEYS_CONFIRM)

    def _refused(self, text: str) -> None:
        self.busy = False
        self.previewed = self.placement = None
        self.query_one("#allocate-preview", Static).update("")
        self.query_one("#allocate-error", Label).update(Text(text))
        self.query_one("#allocate-keys", Label).update(KEYS_PREVIEW)

    def on_lease_refused(self, message: LeaseRefused) -> None:
        message.stop()
        self._refused(message.text)

    def on_lease_written(self, message: LeaseWritten) -> None:
        message.stop()
        self.dismiss(message.lease)

    def action_close(self) -> None:
        self.dismiss(None)
