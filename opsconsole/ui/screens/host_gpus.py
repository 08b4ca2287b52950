"""Accept the GPUs a host reports beyond its configured count, from the host view (`G`):
the console's side of `opsconsole hosts accept-gpus`.

The dialog shows configured, accepted and reported counts with the extra UUIDs and will
not write without a comment. The audit row and the GPU ledger edit are one transaction,
run through the console's store gateway on a worker; the poller reads the ledger within
a second and counts the GPUs from the host's next sample.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from opsconsole.collect.gpu_ledger import ExtraGpus, GpuLedger
from opsconsole.leases.times import format_ts
from opsconsole.ui.controllers.guard import changes_state
from opsconsole.ui.controllers.messages import AlertRefused, AlertWritten
from opsconsole.ui.screens.alert_dialog import AlertDialog

UUIDS_SHOWN = 8


class AcceptGpusScreen(AlertDialog):
    """Dismissed with one line saying what was accepted, or None when cancelled."""

    ERROR_LABEL = "accept-gpus-error"

    def __init__(self, ledger: GpuLedger, extra: ExtraGpus) -> None:
        super().__init__()
        self.ledger = ledger
        self.extra = extra

    def compose(self) -> ComposeResult:
        extra, dim = self.extra, "#8a8a8a"
        uuids = ", ".join(extra.extra_uuids[:UUIDS_SHOWN]) or "(none given)"
        if len(extra.extra_uuids) > UUIDS_SHOWN:
            uuids += f" and {len(extra.extra_uuids) - UUIDS_SHOWN} more"
        with Vertical(id="accept-gpus-box", classes="dialog"):
            yield Label(Text(f"More GPUs than configured on {extra.host}"), classes="dialog-title")
            yield Label(
                Text(
                    f"configured {extra.configured}   accepted {extra.accepted}"
                    f"   reports {extra.reported}"
                ),
                id="accept-gpus-counts",
            )
            yield Label(Text(f"extra    {uuids}"), id="accept-gpus-uuids")
            yield Label(Text(f"seen     {format_ts(extra.seen_ts)}", dim))
            yield Label(
                Text("Accept only a host really upgraded: they then count in totals.", dim),
                classes="dialog-keys",
            )
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input(placeholder="why the extra GPUs are real", id="accept-gpus-comment")
                yield Label("required", classes="form-hint")
            yield Label(
                Text(f"recorded as {self.app.leases.need_desk().operator}", dim),
                classes="dialog-keys",
            )
            yield Label(id="accept-gpus-error", classes="dialog-error")
            yield Label(
                f"[b]Enter[/b] count {extra.reported} GPUs    [b]Esc[/b] cancel",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#accept-gpus-comment", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#accept-gpus-error", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        comment = self.query_one("#accept-gpus-comment", Input).value.strip()
        if not comment:
            self._error("a comment is required: why the extra GPUs are real")
            return
        self.accept(comment)

    @changes_state("accept extra GPUs")
    def accept(self, comment: str) -> None:
        self.busy = True
        self.query_one("#accept-gpus-error", Label).update("[#8a8a8a]writing…[/]")
        self._accept_in_thread(comment)

    def _accept_in_thread(self, comment: str) -> None:
        desk, host, ledger = self.app.leases.need_desk(), self.extra.host, self.ledger
        desk.gateway.ask(
            self,
            lambda: desk.accept_extra_gpus(ledger, host, comment),
            lambda extra: AlertWritten(f"{host}: {extra.reported} GPUs accepted"),
            lambda text: AlertRefused(text, "accept-gpus"),
            group="accept-gpus",
            answer_when_cancelled=True,
        )
