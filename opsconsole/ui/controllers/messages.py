"""Messages between the collecting side, the gateway's workers, the controllers and the
screens. Screens never call each other (or the app's other screens) by method name: a
new board reaches every screen on the stack as a `LeasesChanged` or `AlertsChanged`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from opsconsole.alerts import Silence
    from opsconsole.leases import Lease, Placement
    from opsconsole.ui.view.alert_board import AlertBoard, History
    from opsconsole.ui.view.lease_board import LeaseBoard
    from opsconsole.ui.view.lease_form import AllocateForm
    from opsconsole.validate.store import RunRecord


class FleetBatchReady(Message):
    """A batch waits in the driver's mailbox. Carries no data on purpose: batches merge
    in the mailbox, so a UI that fell behind applies one batch, not a backlog."""


class LeasesChanged(Message, bubble=False):
    """The app holds a new lease board (or cannot read one: `app.leases.trouble`); the
    hosts named changed holders, so their fleet-grid lines repaint."""

    def __init__(self, changed_hosts: set[str]) -> None:
        super().__init__()
        self.changed_hosts = changed_hosts


class AlertsChanged(Message, bubble=False):
    """The app holds a new alert board (or cannot read one: `app.alerts.trouble`); the
    hosts named changed their alert marker."""

    def __init__(self, changed_hosts: set[str]) -> None:
        super().__init__()
        self.changed_hosts = changed_hosts


class LeasesLoaded(Message):
    """A worker read the leases; the board replaces the app's whole picture of them."""

    def __init__(self, board: LeaseBoard) -> None:
        super().__init__()
        self.board = board


class LeaseStoreTrouble(Message):
    """A worker could not read the leases (locked, missing or corrupt store): a state the
    console shows, keeping the last board it had."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LeasePreviewed(Message):
    def __init__(self, placement: Placement, form: AllocateForm) -> None:
        super().__init__()
        self.placement = placement
        self.form = form
        """The form the placement was computed for: a later edit makes it stale."""


class LeaseWritten(Message):
    """The leases layer committed a change (allocate, extend, release, cancel)."""

    def __init__(self, lease: Lease, action: str) -> None:
        super().__init__()
        self.lease = lease
        self.action = action


class LeaseRefused(Message):
    """LeaseError or StoreError as one line; nothing was written."""

    def __init__(self, text: str, action: str = "") -> None:
        super().__init__()
        self.text = text
        self.action = action


class ValidationRan(Message):
    """A validation run asked from the host view finished (passed, failed or refused)."""

    def __init__(self, run: RunRecord) -> None:
        super().__init__()
        self.run = run


class ValidationRefused(Message):
    """ValidateError or StoreError as one line: the run could not start."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class AlertsLoaded(Message):
    """A worker read the alerts; the board replaces the app's whole picture of them."""

    def __init__(self, board: AlertBoard) -> None:
        super().__init__()
        self.board = board


class AlertStoreTrouble(Message):
    """A worker could not read the alerts: the console keeps the last board and says why."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class AlertHistoryLoaded(Message):
    """The transitions of one alert, for the Alerts screen's history pane."""

    def __init__(self, alert_id: int, rows: History) -> None:
        super().__init__()
        self.alert_id = alert_id
        self.rows = rows


class SilencesLoaded(Message):
    def __init__(self, silences: list[Silence]) -> None:
        super().__init__()
        self.silences = silences


class AlertWritten(Message):
    """The alert store committed a change; `text` says what, for a toast."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class AlertRefused(Message):
    """AlertError or StoreError as one line; nothing was written."""

    def __init__(self, text: str, action: str = "") -> None:
        super().__init__()
        self.text = text
        self.action = action
