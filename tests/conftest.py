"""Fixtures shared by the store, leases and alerts tests: a real SQLite file per test.
Also picks the Hypothesis profile (tests/support/profiles.py) before any test module loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from opsconsole.leases.times import current_zone, use_timezone
from opsconsole.store import open_store
from tests.support.profiles import load_profile

load_profile()


@pytest.fixture(autouse=True)
def _zone_kept() -> Iterator[None]:
    """A command run in-process (`main(argv)`) or a console sets the process's zone from its
    config; the next test starts from the zone this one found."""
    zone = current_zone()
    yield
    use_timezone(zone)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "opsconsole.db"


@pytest.fixture
def db(store_path: Path) -> Iterator[sqlite_utils.Database]:
    db = open_store(store_path)
    yield db
    db.close()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """interop and tmux tests start outside programs: they are slow too, so the quick loop
    (`-m "not slow"`) leaves them out without each test saying so twice."""
    for item in items:
        if item.get_closest_marker("interop") or item.get_closest_marker("tmux"):
            item.add_marker(pytest.mark.slow)
