"""Textual's command palette (Ctrl+P) offering the same actions as keys and `:` commands.

Every entry calls the same app or screen method a key would, so the read-only guard on
those methods covers the palette too; guarded entries say so in their help text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from opsconsole.ui.view.fleet_rows import SORT_KEYS
from opsconsole.ui.view.metrics import METRICS

if TYPE_CHECKING:
    from opsconsole.ui.app import OpsConsoleApp

Entry = tuple[str, Callable[[], object], str]


def palette_entries(app: OpsConsoleApp) -> list[Entry]:
    refused = "  (refused: read-only console)" if app.read_only else ""
    entries: list[Entry] = [
        ("Fleet view", partial(app.run_command, "fleet"), "sites → racks → hosts"),
        ("Help: keys and commands", app.action_help, "every key of this screen"),
        ("Filter fleet…", app.filter_fleet, "/"),
        ("Clear fleet filter", partial(app.run_command, "filter"), "show every host"),
        (
            "Reconnect host",
            app.action_reconnect_current,
            "drop and reopen the SSH connection of the host in view" + refused,
        ),
    ]
    if app.leases.desk is not None:
        entries[2:2] = [
            ("Leases", partial(app.leases.go), "table of leases and the calendar per site"),
            ("Allocate GPUs…", app.leases.open_allocate, "book GPUs for a tenant" + refused),
        ]
    for key, metric in METRICS.items():
        entries.append(
            (f"Colour GPUs by {metric.label}", partial(app.run_command, f"metric {key}"), "")
        )
    for key in SORT_KEYS:
        entries.append((f"Sort fleet by {key}", partial(app.run_command, f"sort {key}"), ""))
    for host in app.model.fleet.hosts:
        entries.append(
            (f"Open host {host.name}", partial(app.open_host, host.name), f"rack {host.rack}")
        )
    board = app.leases.board
    for tenant in board.tenants if board is not None else ():
        entries.append((f"Leases of {tenant.name}", partial(app.leases.go, tenant.name), ""))
    return entries


class ConsoleCommands(Provider):
    @property
    def console(self) -> OpsConsoleApp:
        from opsconsole.ui.app import OpsConsoleApp  # the app imports this module

        app = self.app
        assert isinstance(app, OpsConsoleApp)
        return app

    async def discover(self) -> Hits:
        entries = palette_entries(self.console)
        shown = 5 + len(METRICS) + (2 if self.console.leases.desk is not None else 0)
        for title, callback, help_text in entries[:shown]:
            yield DiscoveryHit(title, callback, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in palette_entries(self.console):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text or None)
