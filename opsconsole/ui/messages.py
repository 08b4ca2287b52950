"""Messages between the collecting side and the UI."""

from __future__ import annotations

from textual.message import Message


class FleetBatchReady(Message):
    """A batch waits in the driver's mailbox. Carries no data on purpose: batches merge
    in the mailbox, so a UI that fell behind applies one batch, not a backlog."""


class ReconnectRequested(Message):
    """A confirmed request to drop and reopen one host's connection."""

    def __init__(self, host_name: str) -> None:
        super().__init__()
        self.host_name = host_name
