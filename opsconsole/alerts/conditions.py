"""Conditions (what is wrong now) and the tracker that gives rules their `for` and
`keep_firing_for` durations.

Why a tracker apart from the rules: the rules look at one instant and stay pure; only the
tracker remembers time, so a temperature must stay high for `for_s` before it fires
(one hot sample is not an alert) and must stay clear for `keep_firing_for_s` before it
stops (a reading hovering at the threshold does not fire and resolve every two seconds).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

from opsconsole.config.alerts import Severity


class Kind(StrEnum):
    """A "condition" resolves by itself when it clears; an "event" (an XID) happened once
    and is resolved only by an operator."""

    CONDITION = "condition"
    EVENT = "event"


IDENTITY_LABELS = ("site", "rack", "host", "gpu", "port", "event", "lease")
"""Labels that say *which* thing is wrong; the fingerprint is built from these and the rule
name only, so a changing detail (the reason a host is down) does not open a new alert.
`lease` names the subject of a lease rule (one alert per lease). `tenant` and `leases`,
which lease impact adds to any alert, are deliberately not here: a lease starting or
ending on a broken GPU must not turn its alert into a new one."""


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    identity = {k: labels[k] for k in IDENTITY_LABELS if k in labels}
    text = json.dumps([rule, identity], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One active alert condition: which rule, on what (labels), how bad, and a one-line
    summary fit for the operator. Keyword arguments only: eight fields, two of them
    floats side by side, are too easy to swap by position. `severity` and `kind` given as
    their text ("critical", "event") are taken as the enums; other text is refused."""

    rule: str
    severity: Severity
    kind: Kind
    labels: dict[str, str]
    summary: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    from_readings: bool = True  # held while the host's readings are unknown
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if type(self.severity) is not Severity:
            object.__setattr__(self, "severity", Severity(self.severity))
        if type(self.kind) is not Kind:
            object.__setattr__(self, "kind", Kind(self.kind))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.rule, self.labels))

    def __hash__(self) -> int:  # labels are a dict; the fingerprint already names them
        return hash(self.fingerprint)

    @property
    def host(self) -> str:
        return self.labels.get("host", "")


class PendingTracker:
    """Remembers when each raw condition was first seen true and last seen true.

    `hold_hosts` are hosts whose readings are unknown right now (stale or down): their
    reading-based conditions are neither started nor cleared, because "we cannot see it" is not "it
    is fine" (the host alert covers that time).
    """

    def __init__(self) -> None:
        self._since_ts: dict[str, float] = {}
        self._firing: dict[str, tuple[Condition, float]] = {}  # fp -> (condition, last true)
        self._hosts: dict[str, str] = {}  # fp -> host of a reading-based condition

    def update(
        self, raw: list[Condition], now_ts: float, hold_hosts: frozenset[str] = frozenset()
    ) -> list[Condition]:
        """The conditions that are firing at `now_ts`, given those true at `now_ts`."""
        seen: set[str] = set()
        out: dict[str, Condition] = {}
        for cond in raw:
            fp = cond.fingerprint
            seen.add(fp)
            if cond.from_readings:
                self._hosts[fp] = cond.host
            since = self._since_ts.setdefault(fp, now_ts)
            if fp in self._firing or now_ts - since >= cond.for_s:
                self._firing[fp] = (cond, now_ts)
                out[fp] = cond
        for fp in list(self._since_ts):
            if fp in seen:
                continue
            held = self._firing.get(fp)
            if self._hosts.get(fp) in hold_hosts:
                if held is not None:
                    out[fp] = held[0]
                continue
            if held is not None and now_ts - held[1] < held[0].keep_firing_for_s:
                out[fp] = held[0]
                continue
            self._since_ts.pop(fp, None)
            self._firing.pop(fp, None)
            self._hosts.pop(fp, None)
        return list(out.values())

    def resume(self, conditions: list[Condition], now_ts: float) -> None:
        """Take alerts the store says are open as already firing (after a restart), so a
        `for_s` is not waited out again and a host still connecting does not clear them."""
        for cond in conditions:
            self._since_ts.setdefault(cond.fingerprint, now_ts)
            self._firing.setdefault(cond.fingerprint, (cond, now_ts))
            if cond.from_readings:
                self._hosts.setdefault(cond.fingerprint, cond.host)

    def pending(self) -> dict[str, float]:
        """Fingerprints seen true but not yet firing, with the time first seen."""
        return {fp: ts for fp, ts in self._since_ts.items() if fp not in self._firing}
