"""A small tmpfs of the test's own, for disk-full and read-only-mount faults.

Needs root; elsewhere the tests that use it are skipped, saying why. CI runs as root and
sets OPSCONSOLE_REQUIRE_TMPFS=1, so there a mount that fails is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    give_up = pytest.fail if os.environ.get("OPSCONSOLE_REQUIRE_TMPFS") == "1" else pytest.skip
    if os.geteuid() != 0:
        give_up("mounting a tmpfs needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        give_up(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete to free)."""
    filler = directory / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(block)
    return filler


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)
