"""What the alert engine tells the world: one `AlertTransition` per change an operator
should hear about, handed to every `AlertNotifier` the engine was given.

Why transitions and not just "alerts to notify": a pager must also hear that an alert was
acknowledged in the console (so the page stops) and that it resolved. Acknowledgements
are written by other processes (a console, the CLI), so the engine reads them back from
`alert_history` after each recording rather than being told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from opsconsole.alerts.conditions import Condition
from opsconsole.alerts.store import Alert


class TransitionKind(StrEnum):
    FIRING = "firing"
    """A new firing, or a resolved alert that came back, or one whose silence ended."""
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    """An operator withdrew the acknowledgement: firing and unowned again."""
    RESOLVED = "resolved"
    REFIRED = "refired"
    """The acknowledgement timed out while the alert was still open."""


@dataclass(frozen=True, slots=True)
class AlertTransition:
    kind: TransitionKind
    alert: Alert
    """The alert as it is after the recording that saw this transition."""
    ts: float
    operator: str | None = None
    comment: str = ""


class AlertNotifier(Protocol):
    """Receives transitions on the engine's store thread, right after they are recorded.

    It must return at once (queue the work): the engine waits for it. Plugin notifiers
    are wrapped in their own worker thread by `opsconsole.plugin`, so a slow webhook
    never holds up the next recording."""

    def alert_transitions(self, transitions: Sequence[AlertTransition]) -> None: ...


class ConditionSource(Protocol):
    """Raw conditions from outside the built-in rules (rule plugins), asked for on the
    poller's loop at every evaluation; it must answer at once from what it already has.
    The engine times them with the same tracker as its own rules (`for_s`,
    `keep_firing_for_s`, held while the host cannot be seen)."""

    def current_conditions(self, now_ts: float) -> list[Condition]: ...
