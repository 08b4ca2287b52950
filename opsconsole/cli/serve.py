"""`opsconsole serve`: the console in a browser, through textual-serve.

textual-serve runs one `opsconsole console` per browser session as a subprocess and
relays its terminal over a WebSocket to xterm.js, so the browser shows exactly the
terminal console. Loopback by default: anyone who can reach the port gets a console, and
textual-serve has no authentication, so binding elsewhere takes `--allow-non-loopback`
(put it behind an authenticating proxy). Sessions are `--read-only` unless started with
`--read-write`: a wall screen or a colleague's browser should not drain a node by accident.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from pathlib import Path

from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import default_config_path, load_fleet
from opsconsole.errors import OpsconsoleError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="show the console in a browser (textual-serve)")
    add_config_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="bind an address other than loopback (no authentication: use a proxy that has it)",
    )
    parser.add_argument(
        "--read-write",
        action="store_true",
        help="let browser sessions change things (default: read-only)",
    )
    parser.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def session_command(config: Path, *, read_write: bool) -> str:
    """The shell command textual-serve runs for each browser session."""
    parts = [sys.executable, "-m", "opsconsole", "console", "--config", str(config)]
    if not read_write:
        parts.append("--read-only")
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_non_loopback:
        raise OpsconsoleError(
            f"refusing to serve the console on {args.host}: it has no authentication;"
            " pass --allow-non-loopback to do it anyway (behind an authenticating proxy)",
            code="refused",
        )
    if not 0 < args.port < 65536:
        raise OpsconsoleError(f"--port {args.port}: expected 1-65535", code="usage")
    config = Path(args.config) if args.config else default_config_path()
    fleet = load_fleet(config)  # a bad config is one line here, not in every browser tab
    from textual_serve.server import Server

    mode = "read-write" if args.read_write else "read-only"
    server = Server(
        session_command(fleet.path.resolve(), read_write=args.read_write),
        host=args.host,
        port=args.port,
        title=f"opsconsole ({mode})",
    )
    server.serve()
    return 0
