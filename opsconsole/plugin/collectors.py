"""Collector plugins on the poller's SSH connections.

The collect layer runs each collector's command on every connected host
(`collect.probes`) and hands the output here on the poller's loop; parsing runs on the
plugin's worker thread, and the readings come back to the loop (the only thread that may
touch the live state) with `call_soon_threadsafe`. A parse that raises clears that host's
readings from this plugin (rack power falls back to the GPU-sum estimate) and is logged
once per kind of error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial

from opsconsole.collect.state import HostState
from opsconsole.plugin.api import CollectorPlugin
from opsconsole.plugin.isolation import PluginWorker

log = logging.getLogger("opsconsole.plugins")
DEFAULT_TIMEOUT_S = 10.0


class CollectorRunner:
    """A collector plugin as a `collect.probes.HostProbe`."""

    def __init__(self, name: str, plugin: CollectorPlugin, worker: PluginWorker):
        self.name = name
        self.plugin = plugin
        self.worker = worker
        self.command = plugin.command
        self.interval_s = float(plugin.interval_s)
        self.timeout_s = float(getattr(plugin, "timeout_s", DEFAULT_TIMEOUT_S))
        self._keys: dict[str, set[str]] = {}  # host -> reading names this plugin set
        self._reported: set[str] = set()

    def accept(self, host: HostState, exit_status: int | None, stdout: str, now_ts: float) -> None:
        loop = asyncio.get_running_loop()
        job = partial(self._parse, loop, host, exit_status, stdout, now_ts)
        self.worker.submit(f"parse:{host.name}", job, coalesce=True)

    def _parse(
        self,
        loop: asyncio.AbstractEventLoop,
        host: HostState,
        exit_status: int | None,
        stdout: str,
        now_ts: float,
    ) -> None:
        try:
            readings = dict(self.plugin.parse(host.name, exit_status, stdout))
        except Exception as exc:
            kind = f"{type(exc).__name__}: {exc}"
            if kind not in self._reported:
                self._reported.add(kind)
                log.error("plugin %s: parse raised %s (host %s)", self.name, kind, host.name)
            readings = {}
        readings = {k: float(v) for k, v in readings.items() if isinstance(v, int | float)}
        try:
            loop.call_soon_threadsafe(self._apply, host, readings, now_ts)
        except RuntimeError:
            pass  # the poller's loop has closed: shutting down

    def _apply(self, host: HostState, readings: Mapping[str, float], now_ts: float) -> None:
        """On the poller's loop."""
        for key in self._keys.get(host.name, set()) - set(readings):
            host.extra_readings.pop(key, None)
        host.extra_readings.update(readings)
        host.extra_ts = now_ts
        self._keys[host.name] = set(readings)
