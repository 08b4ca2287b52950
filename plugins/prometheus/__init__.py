"""`prometheus`: the fleet on `/metrics` for a Prometheus to scrape.

prometheus-client serves the page from its own thread; each scrape renders the newest
`FleetView` the plugin host published (every few seconds), so a scrape never reads the
live state or the store. Loopback by default: the metrics name every host and tenant, so
exposing them takes an explicit `allow_non_loopback = true`.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from pydantic import Field, model_validator

from opsconsole.plugin import (
    FleetView,
    PluginConfig,
    PluginContext,
    PluginError,
    PluginInfo,
    PluginKind,
)

from .metrics import families


class PrometheusConfig(PluginConfig):
    listen: str = "127.0.0.1"
    """Address to bind; anything but loopback needs `allow_non_loopback`."""
    port: int = Field(9464, ge=0, le=65535)
    """TCP port of /metrics (9464 is the exporter port registered for OpenTelemetry-style
    exporters; 0 picks a free one)."""
    allow_non_loopback: bool = False

    @model_validator(mode="after")
    def _loopback(self) -> PrometheusConfig:
        if not self.allow_non_loopback and not is_loopback(self.listen):
            raise ValueError(
                f'listen = "{self.listen}" is not loopback; set allow_non_loopback = true'
                " to expose host and tenant names on the network"
            )
        return self


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class _ViewCollector:
    def __init__(self) -> None:
        self.view: FleetView | None = None

    def collect(self) -> Iterator[Metric]:  # called on the HTTP server's thread per scrape
        return families(self.view)


class PrometheusExporter:
    def __init__(self, config: PrometheusConfig, context: PluginContext):
        self.config = config
        self.log = context.log
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = _ViewCollector()
        self.registry.register(self.collector)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(
                self.config.port, addr=self.config.listen, registry=self.registry
            )
        except OSError as exc:
            raise PluginError(
                f"cannot listen on {self.config.listen}:{self.config.port}: {exc.strerror}"
            ) from None
        self.port = self._server.server_address[1]
        self.log.info("prometheus metrics on http://%s:%d/metrics", self.config.listen, self.port)

    def publish(self, view: FleetView) -> None:
        self.collector.view = view  # one reference swap: a scrape sees one whole view

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


PLUGIN = PluginInfo(
    kind=PluginKind.EXPORTER,
    name="prometheus",
    version="1.0",
    config_schema=PrometheusConfig,
    factory=PrometheusExporter,
    description="fleet, lease and alert metrics on /metrics for Prometheus",
)
