"""Exporters ride beside the poller, as the alert engine does (`alerts.runner`).

Every `publish_interval_s` the poller's loop (the only thread that may read the live
state) captures references to each host's latest sample (`view.capture`); the host
dicts, leases and open alerts are built on a thread of our own with its own store
connection, and the resulting `FleetView` is queued for each exporter's and rule
plugin's worker. Nothing here waits for a plugin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opsconsole.collect.companion import PollerCompanion
from opsconsole.config import Fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.plugin.api import FleetView
from opsconsole.plugin.host import PluginSet
from opsconsole.plugin.view import HostRef, LazyHosts, capture

log = logging.getLogger("opsconsole.plugins")


def publish_interval(fleet: Fleet) -> float:
    """As often as samples arrive, but at most every 5 s: a rule plugin reads every host
    of each view (about 2 s of its thread at 1,000 hosts here), and Prometheus scrapes
    every 15 s or more anyway."""
    return max(5.0, fleet.config.polling.interval_s)


class StoreReader:
    """Leases and open alerts for the view, on its own connection (opened lazily)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._db: Any = None
        self.last_error = ""

    def read(
        self, now_ts: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[tuple[str, int], str]]:
        if self.path is None:
            return [], [], {}
        from opsconsole.alerts.store import list_alerts
        from opsconsole.leases.lifecycle import list_leases
        from opsconsole.leases.model import LeaseState
        from opsconsole.store import open_store

        try:
            if self._db is None:
                self._db = open_store(self.path, check_same_thread=False)
            leases = list_leases(self._db, states=[LeaseState.ACTIVE], now_ts=now_ts)
            alerts = list_alerts(self._db)
        except (OpsconsoleError, OSError) as exc:
            if str(exc) != self.last_error:
                log.error("plugins: leases and alerts not read: %s", exc)
            self.last_error = str(exc)
            return [], [], {}
        self.last_error = ""
        tenants = {(s.host, s.gpu_index): lease.tenant for lease in leases for s in lease.slots}
        lease_rows = [
            {
                "id": lease.id,
                "tenant": lease.tenant,
                "start_ts": lease.start_ts,
                "end_ts": lease.end_ts,
                "gpu_count": lease.gpu_count,
                "slots": [{"host": s.host, "gpu_index": s.gpu_index} for s in lease.slots],
            }
            for lease in leases
        ]
        alert_rows = [
            {
                "id": a.id,
                "rule": a.rule,
                "severity": a.severity,
                "state": a.state,
                "labels": dict(a.labels),
                "fired_ts": a.fired_ts,
            }
            for a in alerts
        ]
        return lease_rows, alert_rows, tenants

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class PluginPoller(PollerCompanion):
    """The plugins' publisher beside the poller (`collect.companion`)."""

    def __init__(
        self,
        poller: Any,
        plugins: PluginSet,
        *,
        store_path: Path | None,
        publish_interval_s: float = 5.0,
    ):
        super().__init__(poller)
        self.plugins = plugins
        self.publish_interval_s = publish_interval_s
        self.reader = StoreReader(store_path)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def engine(self) -> Any:
        return getattr(self.poller, "engine", None)

    @property
    def plugin_note(self) -> str:
        """For the console's header: plugins in trouble, or ""."""
        troubled = self.plugins.trouble()
        return f"plugins: {', '.join(troubled)} (opsconsole plugins)" if troubled else ""

    def _start_beside(self) -> None:
        if self._task is None:
            self.plugins.start()
            self._stop.clear()
            if self.plugins.wants_views:
                self._task = asyncio.create_task(self._publish_loop(), name="plugins")

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="opsconsole-plugins") as pool:
            while not self._stop.is_set():
                now_ts = time.time()
                refs = capture(self.state)  # references only: the loop is the poller's
                view = await loop.run_in_executor(pool, self._build, now_ts, refs)
                self.plugins.publish(view)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.publish_interval_s)
                except TimeoutError:
                    pass
            await loop.run_in_executor(pool, self.reader.close)

    def _build(self, now_ts: float, refs: list[HostRef]) -> FleetView:
        """On the publish thread: host dicts, leases and alerts into one view."""
        hosts = LazyHosts(refs)  # built on the plugin's thread that reads them
        extra = {ref.name: ref.extra for ref in refs if ref.extra and ref.status == "fresh"}
        leases, alerts, tenants = self.reader.read(now_ts)
        return FleetView(now_ts, hosts, leases, alerts, tenants, extra)

    async def _stop_beside(self) -> None:
        task, self._task = self._task, None
        self._stop.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, 15.0)
            except Exception:
                log.exception("the plugin publisher did not stop cleanly")
        await asyncio.to_thread(self.plugins.close)
