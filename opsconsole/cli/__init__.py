"""Command-line entry point. Each sub-command lives in its own module with a
`register(subparsers)` function; errors an operator can fix print one line, never a
traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from opsconsole import __version__
from opsconsole.errors import OpsconsoleError

# Sub-command modules, imported lazily so `opsconsole --help` stays fast.
COMMAND_MODULES = (
    "opsconsole.cli.check_config",
    "opsconsole.cli.poll",
    "opsconsole.cli.sim",
    "opsconsole.cli.console",
    "opsconsole.cli.demo",
    "opsconsole.cli.tenant",
    "opsconsole.cli.lease",
    "opsconsole.cli.drain",
    "opsconsole.cli.usage",
    "opsconsole.cli.audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsconsole", description="NOC console for leased GPU fleets."
    )
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except OpsconsoleError as exc:
        print(f"opsconsole: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
