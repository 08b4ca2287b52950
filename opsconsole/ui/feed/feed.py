"""From FleetState changes to immutable batches for the UI.

`FleetFeed` is a FleetState listener that only notes which hosts changed; `collect()`
turns those names into HostSnapshots. Both run on the thread that owns the state (the
poller's loop, or the UI thread when a test drives the state directly), so no live dict
or deque is ever read while another thread mutates it. The UI receives whole batches,
one per publish interval, however many samples arrived in between.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from opsconsole.collect.state import Change, FleetState, HostState
from opsconsole.ui.view.snapshot import HostDetail, HostSnapshot, host_detail, host_snapshot


@dataclass(frozen=True, slots=True)
class FeedNotes:
    """Conditions of the console itself, shown in the header rather than per host."""

    collection: str = ""  # "" while the poller runs; why it stopped otherwise
    store: str = ""  # the store's last error, or why there is no store
    ssh_agent: str = ""  # "lost" when SSH_AUTH_SOCK points at nothing
    console: str = ""  # the console's own loop starved: round trips are not the hosts'


@dataclass(frozen=True, slots=True)
class FleetBatch:
    now_ts: float
    snapshots: dict[str, HostSnapshot]
    detail: HostDetail | None = None
    notes: FeedNotes | None = None
    """None when the console's conditions have not changed since the last batch."""


def console_note(state: FleetState) -> str:
    """The console's own machine too busy to time the network: said once, in the header,
    instead of as slow round trips on every host."""
    if not state.console_starved:
        return ""
    return (
        f"console starved: its loop ran {state.console_lag_ms or 0:.0f} ms late; RTTs not counted"
    )


def ssh_agent_note() -> str:
    """An SSH agent the console was started with and that has since gone away."""
    sock = os.environ.get("SSH_AUTH_SOCK")
    if sock and not os.path.exists(sock):
        return f"SSH agent lost ({sock} is gone)"
    return ""


class FleetFeed:
    def __init__(self, state: FleetState, clock: Callable[[], float]):
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()
        self._dirty: set[str] = set(state.hosts)
        self._watched: str | None = None
        self._detail_due = False
        state.add_listener(self._note_change)

    def _note_change(self, host: HostState, change: Change) -> None:
        with self._lock:
            self._dirty.add(host.name)

    def watch(self, name: str | None) -> None:
        """Ask for the detail (history, ports, events) of one host in every batch that
        touches it; None when no host view is open. Callable from any thread."""
        with self._lock:
            self._watched = name
            self._detail_due = name is not None

    @property
    def watched(self) -> str | None:
        return self._watched

    def collect(self, notes: FeedNotes | None = None) -> FleetBatch | None:
        """Snapshots of every host changed since the last call; None when nothing did.
        Must run on the thread that owns the state."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            watched, detail_due = self._watched, self._detail_due
            self._detail_due = False
        now = self.clock()
        hosts = self.state.hosts
        detail = None
        if watched is not None and watched in hosts and (detail_due or watched in dirty):
            detail = host_detail(hosts[watched], now)
        if not dirty and detail is None and notes is None:
            return None
        snapshots = {name: host_snapshot(hosts[name], now) for name in dirty if name in hosts}
        if detail is not None:
            snapshots[detail.snapshot.name] = detail.snapshot
        return FleetBatch(now, snapshots, detail, notes)

    def close(self) -> None:
        try:
            self.state.remove_listener(self._note_change)
        except ValueError:
            pass


class BatchMailbox:
    """Hands batches from the collecting thread to the UI, merging them when the UI is
    behind: the UI applies the newest snapshot of each host once, never a backlog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: FleetBatch | None = None

    def put(self, batch: FleetBatch) -> bool:
        """Store a batch; True when the mailbox was empty (the UI needs a wake-up)."""
        with self._lock:
            old = self._pending
            if old is None:
                self._pending = batch
                return True
            snapshots = {**old.snapshots, **batch.snapshots}
            detail = batch.detail or old.detail
            if detail is not None and detail.snapshot.name in snapshots:
                newest = snapshots[detail.snapshot.name]
                if newest is not detail.snapshot and batch.detail is None:
                    detail = None  # an older detail would contradict the newer snapshot
            notes = batch.notes if batch.notes is not None else old.notes
            self._pending = FleetBatch(batch.now_ts, snapshots, detail, notes)
            return False

    def take(self) -> FleetBatch | None:
        with self._lock:
            batch, self._pending = self._pending, None
            return batch
