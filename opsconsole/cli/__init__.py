"""Command-line entry point. Each sub-command lives in its own module with a
`register(subparsers)` function; errors an operator can fix print one line, never a
traceback."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from typing import NoReturn

from opsconsole import __version__
from opsconsole.cli.negative_times import join_negative_times
from opsconsole.errors import OpsconsoleError

# Each command and the module that registers it. Only the module of the command being run
# is imported (asyncssh, pydantic and sqlite-utils cost ~0.5 s to import; a lease command
# should not pay for the poller); `opsconsole --help` imports them all to list them.
COMMANDS = {
    "check-config": "opsconsole.cli.check_config",
    "poll": "opsconsole.cli.poll",
    "sim": "opsconsole.cli.sim",
    "console": "opsconsole.cli.console",
    "demo": "opsconsole.cli.demo",
    "tenant": "opsconsole.cli.tenant",
    "lease": "opsconsole.cli.lease",
    "drain": "opsconsole.cli.drain",
    "undrain": "opsconsole.cli.drain",
    "usage": "opsconsole.cli.usage",
    "audit": "opsconsole.cli.audit",
    "alerts": "opsconsole.cli.alerts",
    "capacity": "opsconsole.cli.capacity",
    "hosts": "opsconsole.cli.hosts",
    "plugins": "opsconsole.cli.plugins",
    "serve": "opsconsole.cli.serve",
    "report": "opsconsole.cli.report",
    "keys": "opsconsole.cli.keys",
    "replay": "opsconsole.cli.replay",
    "validate": "opsconsole.cli.validate",
}


EXIT_CODES = {"failed": 1, "config": 1, "usage": 2, "not_found": 3, "refused": 4, "hosts_down": 5}
"""Exit status per error code (documented in ARCHITECTURE.md, "Scripting")."""


class UsageError(OpsconsoleError):
    """The command line itself is wrong (unknown option, missing argument)."""

    code = "usage"
    usage = ""
    """The parser's usage line, shown before the error as argparse itself does."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `--json` can report a usage error as
    JSON like any other; sub-command parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        exc = UsageError(f"{self.prog}: {message}")
        exc.usage = self.format_usage()
        raise exc


def build_parser(
    argv: list[str] | None = None,
    *,
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """The parser for `argv`: just the named command's module when there is one."""
    parser = parser_class(prog="opsconsole", description="NOC console for leased GPU fleets.")
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def quiet_third_party_warnings() -> None:
    """Keep libraries' deprecation notices off an operator's terminal.

    A warning raised inside a dependency (asyncssh importing cryptography's DSA, say) is
    for the developers who pin versions, not for the NOC; the test suite still shows them.
    Our own code's warnings still print. `python -W ...` or PYTHONWARNINGS overrides this.
    """
    if not sys.warnoptions:
        warnings.filterwarnings("ignore", module=r"(?!opsconsole\b)")


def report_error(exc: OpsconsoleError, *, as_json: bool) -> int:
    """One line on stderr; with `--json` also `{"error": ..., "code": ...}` on stdout, so a
    script reading stdout never has to parse a human sentence. Returns the exit status."""
    if isinstance(exc, UsageError) and exc.usage and not as_json:
        print(exc.usage, end="", file=sys.stderr)
    print(f"opsconsole: {exc}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": str(exc), "code": exc.code}))
    return EXIT_CODES.get(exc.code, 1)


def main(argv: list[str] | None = None) -> int:
    argv = join_negative_times(sys.argv[1:] if argv is None else argv)
    quiet_third_party_warnings()
    as_json = "--json" in argv
    parser = build_parser(argv, parser_class=_Parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return report_error(exc, as_json=as_json)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except OpsconsoleError as exc:
        return report_error(exc, as_json=bool(getattr(args, "json", as_json)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as other CLI tools do.
        sys.stderr.close()
        return 0
    finally:
        _close_contexts()


def _close_contexts() -> None:
    """`cli.common` is imported only by the commands that open a store."""
    common = sys.modules.get("opsconsole.cli.common")
    if common is not None:
        common.close_contexts()


if __name__ == "__main__":
    sys.exit(main())
