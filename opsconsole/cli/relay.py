"""`opsconsole poll --relay --site SITE`: collect one site and serve it on stdout.

The console runs this over SSH on the site's relay host (see opsconsole.collect.relay);
it stops when its stdin reaches EOF (the console closed the channel) or on SIGINT/SIGTERM.
Logs go to stderr; stdout carries nothing but relay lines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from opsconsole.collect.poller import Poller
from opsconsole.collect.relay import LineSink, serve_relay, site_fleet
from opsconsole.config import Fleet, load_fleet
from opsconsole.errors import OpsconsoleError
from opsconsole.plugin.host import PluginSet, load_plugins
from opsconsole.plugin.runner import PluginPoller, publish_interval


def run_relay(args: argparse.Namespace) -> int:
    if not args.relay:
        raise OpsconsoleError("--site goes with --relay")
    if not args.site:
        raise OpsconsoleError("--relay needs --site SITE (the site whose hosts it collects)")
    if args.once or args.json or args.no_store:
        raise OpsconsoleError("--relay runs until its stdin closes; drop --once/--json/--no-store")
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    fleet = load_fleet(args.config)
    site_fleet(fleet, args.site)  # an unknown site is a one-line error before any I/O
    plugins = load_plugins(fleet) if fleet.config.plugins else None
    try:
        return asyncio.run(_serve(fleet, args.site, plugins))
    finally:
        if plugins is not None:
            plugins.close()


async def _serve(fleet: Fleet, site: str, plugins: PluginSet | None) -> int:
    loop = asyncio.get_running_loop()
    out: LineSink
    transport = None
    try:
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, sys.stdout.buffer
        )
        out = asyncio.StreamWriter(transport, protocol, None, loop)
    except ValueError:  # stdout is a regular file (a test, a capture): plain writes
        out = _FileOut()
    stop = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, finish)
    stdin = asyncio.StreamReader()
    reader: asyncio.StreamReader | None = stdin
    try:  # stdin carries the console's requests (`wire 2`); its EOF ends the relay
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    except (ValueError, OSError):  # stdin a regular file: signals only
        reader = None
    try:
        await serve_relay(
            fleet, site, out, stop, requests=reader, wrap=_with_exporters(fleet, plugins)
        )
    finally:
        if transport is not None:
            transport.close()
        else:
            sys.stdout.flush()
    return 0


async def _until_eof(reader: asyncio.StreamReader, finish: Callable[[], None]) -> None:
    while await reader.read(65536):
        pass
    finish()


def _with_exporters(
    fleet: Fleet, plugins: PluginSet | None
) -> Callable[[Poller], PluginPoller] | None:
    """A relay serves exporter plugins (the Prometheus endpoint) for its site's hosts, so
    a site-local Prometheus keeps their history; with no store, no leases or alerts."""
    if plugins is None:
        return None
    return lambda poller: PluginPoller(
        poller, plugins, store_path=None, publish_interval_s=publish_interval(fleet)
    )


class _FileOut:
    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)

    async def drain(self) -> None:
        sys.stdout.buffer.flush()
