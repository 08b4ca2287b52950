"""What the console consumes of whoever fills its `FleetState`, as protocols the console
owns (the poller, the alerting and plugin pollers and the replay satisfy them by shape,
without importing them). The polling thread asks for the optional parts with isinstance,
so a source without a store writer, an alert engine or plugins is still a source."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class FleetSource(Protocol):
    """Runs on the polling thread's loop until stopped; fills the state it was given."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Reconnects(Protocol):
    """Drops and reopens one host's connection (may return an awaitable)."""

    def reconnect(self, name: str) -> object: ...


class IngestStatus(Protocol):
    """The telemetry writer's trouble, for the header."""

    @property
    def last_error(self) -> str: ...

    @property
    def dropped_calls(self) -> int: ...


@runtime_checkable
class RecordsTelemetry(Protocol):
    @property
    def writer(self) -> IngestStatus | None: ...


class EngineStatus(Protocol):
    """The alert engine's trouble, or the console it stands by for, for the header."""

    @property
    def last_error(self) -> str: ...

    @property
    def standby_for(self) -> str | None: ...


@runtime_checkable
class RunsAlerts(Protocol):
    @property
    def engine(self) -> EngineStatus | None: ...


@runtime_checkable
class RunsPlugins(Protocol):
    @property
    def plugin_note(self) -> str:
        """Plugins in trouble, in one line, or ""."""
        ...
