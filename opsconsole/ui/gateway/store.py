"""The console's one door to the store: every leases, alerts, capacity and validation call
the UI makes goes through a `StoreGateway`, on a thread worker, and comes back as a
message (harlequin's queries-as-workers, results-as-messages). Screens never open the
store; the desks (`lease_desk.py`, `alert_desk.py`) name the calls, this module runs them.

Why one lock: the console's store connection is shared by every worker thread, and SQLite
transactions belong to a connection, not a thread: two workers inside one connection
would share (and commit) each other's transaction. One call at a time keeps each
leases- or alerts-layer function in its own transaction, and turns a raw sqlite3 error (a
locked or vanished file) into the store's one-line StoreError.

Why its own connection (see `cli/console.py`): the poller's ingest thread writes
telemetry through the other one, in transactions of its own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import sqlite_utils
from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, get_current_worker

from opsconsole.errors import OpsconsoleError, StoreError
from opsconsole.store import open_store
from opsconsole.store.transaction import database_path, describe_error

T = TypeVar("T")


class StoreGateway:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.lock = threading.Lock()
        self._retired = False

    @property
    def path(self) -> str:
        """The store's file (":memory:" or "?" when there is none to open again)."""
        return database_path(self.db)

    def call(self, doing: str, call: Callable[[], T]) -> T:
        """Run one call alone on the connection; a raw sqlite3 error becomes the store's
        one-line StoreError naming what was being done."""
        with self.lock:
            if self._retired:
                raise StoreError(f"not {doing}: the console is closing")
            try:
                return call()
            except sqlite3.Error as exc:
                raise StoreError(describe_error(database_path(self.db), exc, doing)) from None

    def call_apart(self, doing: str, call: Callable[[sqlite_utils.Database], T]) -> T:
        """A long call (capacity's rollup aggregates can take seconds on a big fleet, a
        validation run minutes) on a connection of its own, so it never holds the shared
        lock, and every lease change behind it, for that long. In WAL a read never blocks
        a writer, and a run's writes are short transactions. An in-memory store has no
        file to open again: the call shares the connection."""
        path = self.call("finding the store", lambda: database_path(self.db))
        if path in ("", "?", ":memory:"):
            return self.call(doing, lambda: call(self.db))
        db = open_store(path)
        try:
            return call(db)
        except sqlite3.Error as exc:
            raise StoreError(describe_error(path, exc, doing)) from None
        finally:
            db.close()

    def ask(
        self,
        node: DOMNode,
        call: Callable[[], T],
        answer: Callable[[T], Message],
        refused: Callable[[str], Message],
        *,
        group: str,
        exclusive: bool = True,
        answer_when_cancelled: bool = False,
    ) -> Worker[None]:
        """Run `call` on a thread worker of `node` and post `answer(result)` to it, or
        `refused(one line)` when the store or a layer refuses. With `exclusive`, a newer
        ask in the same group cancels the older one, whose answer is then dropped, unless
        `answer_when_cancelled` (a write: a thread cannot be stopped, so the change is
        made either way, and the screen must hear of it)."""

        def run() -> None:
            try:
                result = call()
            except OpsconsoleError as exc:
                node.post_message(refused(str(exc)))
                return
            if answer_when_cancelled or not get_current_worker().is_cancelled:
                node.post_message(answer(result))

        return node.run_worker(
            run, group=group, exclusive=exclusive, thread=True, exit_on_error=False
        )

    def retire(self) -> None:
        """No call from now on; returns once none is running. The app calls it as it
        goes away, so whoever owns the connection may close it: sqlite3 crashes (not
        raises) when a connection is closed while another thread is inside it, and a
        thread worker queued before the exit could otherwise still start a read."""
        with self.lock:
            self._retired = True

    def close(self) -> None:
        """Close the connection once no worker is inside a call (at console exit)."""
        with self.lock:
            self._retired = True
            self.db.close()
