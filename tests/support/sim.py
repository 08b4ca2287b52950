"""Shared pieces of the simulator tests: a fixed start time, a clock the test moves,
agents on simulated hosts, and client options built from a SimServer's files."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from opsconsole.sim.backend import make_agent
from opsconsole.sim.world import SimHost

T0 = 1_767_225_600.0
"""2026-01-01T00:00:00Z: every world in these tests starts here."""


class ManualClock:
    """The time an agent sees: moved by the test, never by the wall."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def agent_for(host: SimHost, clock: ManualClock, watchdog_timeout_s: float | None = None):
    return make_agent(host, clock, watchdog_timeout_s)


def step(host: SimHost, agent, clock: ManualClock, seconds: float = 2.0) -> dict:
    """Advance the host and the agent's clock together; return the agent's next sample."""
    clock.now += seconds
    host.advance(clock.now)
    return agent.sample()


def client_options(directory: Path, known_hosts: Path | None = None):
    """What a console builds from the written files: host keys checked, one key offered,
    nothing from ~/.ssh."""
    return asyncssh.SSHClientConnectionOptions(
        known_hosts=asyncssh.read_known_hosts(str(known_hosts or directory / "known_hosts")),
        client_keys=[str(directory / "id_ed25519")],
        username="opsconsole",
        config=None,
        agent_path=None,
        connect_timeout=10,
    )
