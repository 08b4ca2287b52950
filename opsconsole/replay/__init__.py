"""Replay: the fleet as it was, fed from the flight recorder into the same `FleetState`
the poller feeds, so the console's own views draw it. No Textual here."""

from opsconsole.replay.source import ReplayClock, ReplaySource

__all__ = ["ReplayClock", "ReplaySource"]
