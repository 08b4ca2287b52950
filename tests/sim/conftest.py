"""Simulator fixtures: a started SimServer with its files written (tests/support/sim.py)."""

from __future__ import annotations

import pytest

from opsconsole.sim.server import SimServer


@pytest.fixture
async def sim(tmp_path):
    """A started three-host SimServer (seed 5) with its files in tmp_path/fleet."""
    server = SimServer(3, seed=5, watchdog_timeout_s=0.3)
    await server.start()
    server.files_dir = tmp_path / "fleet"
    server.write_files(server.files_dir)
    yield server
    await server.stop()
