"""Run `opsconsole ARGS` in this process through `opsconsole.cli.main(argv)`: the exit
status, stdout and stderr as a subprocess would give them, without a new interpreter
(most of a second each). One subprocess smoke test per command group still runs the
real entry point.

The CLI touches a little process-wide state on its way: the warnings filters
(`quiet_third_party_warnings`), the zone times are read in (`use_timezone`), the root
logger (`poll`), the working directory and environment a test hands it. Each run puts all
of them back. Commands that run an event loop with signal handlers (`poll` without
`--once`, `sim serve`, `console`) stay in subprocess tests."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from opsconsole.cli import main
from opsconsole.leases.times import current_zone, use_timezone


@dataclass(frozen=True)
class CliResult:
    """What `subprocess.run(..., capture_output=True, text=True)` returns, in short."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *argv: str, env: Mapping[str, str] | None = None, cwd: Path | str | None = None
) -> CliResult:
    """`opsconsole *argv` in-process; `env` is laid over os.environ for the run."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(env or {}),
        _working_directory(cwd),
        _zone_kept(),
        _logging_kept(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # --help and --version exit through argparse
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _working_directory(cwd: Path | str | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    with contextlib.chdir(cwd):
        yield


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """`poll` configures the root logger when it has no handler yet."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextlib.contextmanager
def _zone_kept() -> Iterator[None]:
    zone = current_zone()
    try:
        yield
    finally:
        use_timezone(zone)
