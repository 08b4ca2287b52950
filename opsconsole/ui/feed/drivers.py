"""Who owns the FleetState and when batches are published.

`InlineDriver`: nothing collects; the caller (a test, a replay) mutates the state on the
UI thread and the app publishes on a timer or on `publish_now()`.
`PollingThread`: the Poller runs on its own asyncio loop in a daemon thread, so SSH,
decoding and snapshot building never take the UI thread; it publishes once per interval.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from opsconsole.collect.state import FleetState
from opsconsole.config import Fleet
from opsconsole.ui.feed.feed import (
    BatchMailbox,
    FeedNotes,
    FleetFeed,
    console_note,
    ssh_agent_note,
)
from opsconsole.ui.feed.sources import (
    FleetSource,
    Reconnects,
    RecordsTelemetry,
    RunsAlerts,
    RunsPlugins,
)

log = logging.getLogger("opsconsole.ui")

PollerFactory = Callable[[Fleet, FleetState], FleetSource]
"""Builds the source the polling thread runs (the poller, or a replay)."""


class FeedDriver(Protocol):
    feed: FleetFeed
    mailbox: BatchMailbox
    threaded: bool

    def start(self, wake_ui: Callable[[], None]) -> None: ...
    def stop(self) -> None: ...
    def publish_now(self) -> None: ...
    def reconnect(self, name: str) -> str: ...


class InlineDriver:
    threaded = False

    def __init__(self, feed: FleetFeed, notes: FeedNotes | None = None) -> None:
        self.feed = feed
        self.mailbox = BatchMailbox()
        self.notes = notes or FeedNotes()
        self._wake_ui: Callable[[], None] = lambda: None
        self._sent_notes: FeedNotes | None = None

    def start(self, wake_ui: Callable[[], None]) -> None:
        self._wake_ui = wake_ui

    def stop(self) -> None:
        self.feed.close()

    def publish_now(self) -> None:
        notes = self.notes if self.notes != self._sent_notes else None
        batch = self.feed.collect(notes)
        if batch is not None:
            self._sent_notes = batch.notes or self._sent_notes
            if self.mailbox.put(batch):
                self._wake_ui()

    def reconnect(self, name: str) -> str:
        return "no poller is running in this console; nothing to reconnect"


class PollingThread:
    threaded = True

    def __init__(
        self,
        fleet: Fleet,
        feed: FleetFeed,
        poller_factory: PollerFactory,
        *,
        interval_s: float,
        store_note: str = "",
    ) -> None:
        self.fleet = fleet
        self.feed = feed
        self.mailbox = BatchMailbox()
        self.poller_factory = poller_factory
        self.interval_s = interval_s
        self.store_note = store_note
        self.poller: FleetSource | None = None
        self.collection_note = ""
        self._wake_ui: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._publish: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent_notes: FeedNotes | None = None

    def start(self, wake_ui: Callable[[], None]) -> None:
        self._wake_ui = wake_ui
        self._thread = threading.Thread(target=self._run, name="opsconsole-poller", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("polling thread failed")
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop, self._publish = asyncio.Event(), asyncio.Event()
        self._ready.set()
        poll_task: asyncio.Task[None] | None = None
        try:
            poller = self.poller = self.poller_factory(self.fleet, self.feed.state)
            poll_task = asyncio.create_task(poller.run(), name="poller")
        except Exception as exc:
            self.collection_note = f"collection could not start: {exc}"
        while not self._stop.is_set():
            if poll_task is not None and poll_task.done() and not self.collection_note:
                failure = poll_task.exception() if not poll_task.cancelled() else None
                self.collection_note = f"collection stopped: {failure or 'poller ended'}"
            if self.collection_note:
                self.feed.state.tick(self.feed.clock())  # the poller's ticker is gone too
            self._publish_batch()
            try:
                await asyncio.wait_for(self._publish.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._publish.clear()
        if self.poller is not None:
            try:
                await asyncio.wait_for(self.poller.stop(), 15.0)
            except Exception:
                log.exception("poller did not stop cleanly")
        if poll_task is not None:
            poll_task.cancel()
            await asyncio.gather(poll_task, return_exceptions=True)

    def _notes(self) -> FeedNotes:
        store = self.store_note
        # What else the source does is asked of it by shape (mypy takes a FleetSource that
        # is also one of these protocols for impossible: hence `object`).
        poller: object = self.poller
        writer = poller.writer if isinstance(poller, RecordsTelemetry) else None
        if writer is not None and writer.last_error:
            error = writer.last_error  # StoreError lines already start "store FILE: "
            store = error if error.startswith("store ") else f"store: {error}"
            if writer.dropped_calls:
                store += f" ({writer.dropped_calls} samples dropped)"
        engine = poller.engine if isinstance(poller, RunsAlerts) else None
        if engine is not None and engine.last_error:
            store = (store + "; " if store else "") + f"alerts: {engine.last_error}"
        elif engine is not None and engine.standby_for:
            store = (store + "; " if store else "") + f"alerts recorded by {engine.standby_for}"
        plugin_note = poller.plugin_note if isinstance(poller, RunsPlugins) else ""
        if plugin_note:
            store = (store + "; " if store else "") + plugin_note
        return FeedNotes(
            self.collection_note, store, ssh_agent_note(), console_note(self.feed.state)
        )

    def _publish_batch(self) -> None:
        notes = self._notes()
        batch = self.feed.collect(notes if notes != self._sent_notes else None)
        if batch is not None:
            self._sent_notes = batch.notes or self._sent_notes
            if self.mailbox.put(batch):
                self._wake_ui()

    def publish_now(self) -> None:
        """Publish at once (a host view opened and wants its detail); any thread."""
        if self._loop is not None and self._publish is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._publish.set)

    def reconnect(self, name: str) -> str:
        """Ask the poller to drop and re-open one host's connection; never blocks."""
        poller: object = self.poller
        if not isinstance(poller, Reconnects) or self._loop is None:
            return "this poller cannot reconnect a host on demand"

        async def call() -> None:
            result = poller.reconnect(name)
            if inspect.isawaitable(result):
                await result

        def done(future: Future[None]) -> None:
            if future.exception() is not None:
                log.error("reconnect %s: %s", name, future.exception())

        asyncio.run_coroutine_threadsafe(call(), self._loop).add_done_callback(done)
        return f"reconnecting {name}"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(20.0)
        self.feed.close()
