"""The command lines the console runs on hosts, as built by the agent package.

A seam: tests hand the poller their own `HostCommands` (the in-test SSH servers ignore
the command anyway); the real one asks `opsconsole.agent`. The agent bundle is built once
per (python, interval) pair: it compresses the agent's source, which costs milliseconds,
and 1,000 hosts usually share one pair.
"""

from __future__ import annotations

from typing import Any, Protocol

from opsconsole.agent.agentless import (
    AGENTLESS_COMMAND,
    parse_agentless_hello,
    parse_agentless_output,
)
from opsconsole.agent.bundle import agent_command
from opsconsole.config import Host


class HostCommands(Protocol):
    agentless_command: str

    def agent_command(self, host: Host, interval_s: float) -> str: ...

    def parse_agentless(self, text: str, seq: int, ts: float) -> dict[str, Any]:
        """A protocol `sample` dict from one run of the agentless command."""
        ...

    def parse_agentless_hello(self, text: str, ts: float) -> dict[str, Any]:
        """A protocol `hello` dict (inventory, host facts) from the same output."""
        ...


class AgentCommands:
    """Commands and parsers from `opsconsole.agent`."""

    agentless_command = AGENTLESS_COMMAND

    def __init__(self) -> None:
        self._agent_commands: dict[tuple[str, float], str] = {}

    def agent_command(self, host: Host, interval_s: float) -> str:
        key = (host.python, interval_s)
        command = self._agent_commands.get(key)
        if command is None:
            command = self._agent_commands[key] = agent_command(interval_s, python=host.python)
        return command

    def parse_agentless(self, text: str, seq: int, ts: float) -> dict[str, Any]:
        return parse_agentless_output(text, seq, ts)

    def parse_agentless_hello(self, text: str, ts: float) -> dict[str, Any]:
        return parse_agentless_hello(text, ts)
