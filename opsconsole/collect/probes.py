"""Extra commands run on each host over its existing SSH connection (collector plugins).

A probe is a shell command run every `interval_s` on a connected host, beside the agent's
stream, with a time limit; its output goes to `accept` on the poller's loop, which must
only hand it on (the plugin layer parses it on the plugin's own thread). Output is cut at
`MAX_OUTPUT_BYTES`: the host is not trusted to keep it short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import asyncssh

if TYPE_CHECKING:
    from opsconsole.collect.state import HostState

log = logging.getLogger("opsconsole.collect")

MAX_OUTPUT_BYTES = 64 * 1024


class HostProbe(Protocol):
    name: str
    command: str
    interval_s: float
    timeout_s: float

    def accept(self, host: HostState, exit_status: int | None, stdout: str, now_ts: float) -> None:
        """The command's result (`exit_status` None: it failed or timed out); called on
        the poller's loop, so it must return at once."""


async def run_probe(
    conn: asyncssh.SSHClientConnection,
    host: HostState,
    probe: HostProbe,
    clock: Callable[[], float],
) -> None:
    """Run `probe` every interval until cancelled (the connection's end cancels it)."""
    while True:
        status: int | None = None
        out = ""
        try:
            result = await asyncio.wait_for(
                conn.run(probe.command, check=False, encoding="utf-8", errors="replace"),
                probe.timeout_s,
            )
            status = result.exit_status
            out = str(result.stdout or "")[:MAX_OUTPUT_BYTES]
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            log.debug("%s: probe %s failed: %s", host.name, probe.name, exc)
        probe.accept(host, status, out, clock())
        await asyncio.sleep(probe.interval_s)
