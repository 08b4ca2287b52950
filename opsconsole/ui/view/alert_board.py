"""What the console knows about alerts at one moment, built on a worker thread from the
alert store and handed to the UI whole (like a lease board): the alerts worth listing, the
silences in force, and what the header and the fleet grid derive from them.

Why "silenced" is decided here and not read from `alerts.silenced_by`: that column names
the silence that held back a firing's notification and stays set after the silence
ends. What an operator needs is "is anyone being told about this now", which is the
silences in force at the board's time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opsconsole.alerts import Alert, Silence
from opsconsole.alerts.silences import label_names, silenced_by

History = Sequence[tuple[float | None, str | None, str, str | None, str | None]]
"""(ts, from_state, to_state, operator, comment) oldest first (no ts: a line of its own,
such as why the history cannot be read). A Sequence: the store's rows, whose ts is
never None, are one."""

SEVERITIES = ("critical", "warning", "info")
"""Group order on the Alerts screen, worst first."""
SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
RESOLVED_SHOWN_S = 24 * 3600.0
"""Resolved alerts stay listed this long, so operators watch them clear."""
SHOWN_STATES = ("firing", "silenced", "acknowledged", "resolved")
"""What a row says, in listing order inside a severity group."""
STATE_WORDS = {
    "firing": ("firing",),
    "silenced": ("silenced",),
    "acknowledged": ("acknowledged",),
    "acked": ("acknowledged",),
    "ack": ("acknowledged",),
    "resolved": ("resolved",),
    "open": ("firing", "silenced", "acknowledged"),
}
"""What `state=` accepts, and the shown states each word selects."""
FILTER_KEYS = ("state", "severity", "site", "rack", "host", "tenant", "rule")
KEY_ALIASES = {"sev": "severity", "tenants": "tenant", "status": "state"}
_TERM = re.compile(r"^([a-z]+)(!=|=|~)(.+)$")


class AlertFilterError(ValueError):
    """A filter the operator typed that cannot be understood; the message says why."""


def tenants_of(alert: Alert) -> tuple[str, ...]:
    """The tenants an alert touches (the label is comma-joined names)."""
    return tuple(label_names(alert.labels.get("tenant")))


def where_text(alert: Alert) -> str:
    """ "sg1-r01-n03 GPU 5 mlx5_0/1": the thing that is wrong, in few characters."""
    labels = alert.labels
    text = labels.get("host") or labels.get("rack") or labels.get("site") or "—"
    if "gpu" in labels:
        text += f" GPU {labels['gpu']}"
    if "port" in labels:
        text += f" {labels['port']}"
    return text


@dataclass(frozen=True, slots=True)
class AlertCounts:
    open: int = 0
    """Firing, silenced or acknowledged: the condition still holds (or nobody resolved it)."""
    unacked: int = 0
    """Firing and neither acknowledged nor silenced: nobody is on it."""
    unacked_critical: int = 0
    silenced: int = 0


@dataclass(frozen=True, slots=True)
class HostMark:
    """The fleet grid's marker for a host with open alerts."""

    severity: str
    loud: bool
    """Some alert on the host is unacknowledged and not silenced."""


@dataclass(frozen=True)
class AlertBoard:
    now_ts: float
    alerts: tuple[Alert, ...]
    """Open alerts and those resolved in the last RESOLVED_SHOWN_S."""
    silences: tuple[Silence, ...]
    """Silences in force at `now_ts`."""
    silenced: dict[int, int] = field(default_factory=dict)
    """Open alert id → the silence covering it now."""

    def shown_state(self, alert: Alert) -> str:
        if alert.state == "firing" and alert.id in self.silenced:
            return "silenced"
        return alert.state

    def alert(self, alert_id: int) -> Alert | None:
        return next((a for a in self.alerts if a.id == alert_id), None)

    def silence(self, silence_id: int | None) -> Silence | None:
        return next((s for s in self.silences if s.id == silence_id), None)

    def counts(self) -> AlertCounts:
        open_, unacked, critical, silenced = 0, 0, 0, 0
        for alert in self.alerts:
            state = self.shown_state(alert)
            if state == "resolved":
                continue
            open_ += 1
            silenced += state == "silenced"
            if state == "firing":
                unacked += 1
                critical += alert.severity == "critical"
        return AlertCounts(open_, unacked, critical, silenced)

    def host_marks(self) -> dict[str, HostMark]:
        """host → a marker for its open alerts: loud, in the colour of the worst alert
        nobody is on, while one is unacknowledged and unsilenced; else muted, in the
        colour of the worst open one."""
        loud: dict[str, str] = {}
        muted: dict[str, str] = {}
        for alert in self.alerts:
            host = alert.labels.get("host")
            state = self.shown_state(alert)
            if not host or state == "resolved":
                continue
            worst = loud if state == "firing" else muted
            if host not in worst or _rank(alert.severity) < _rank(worst[host]):
                worst[host] = alert.severity
        marks = {host: HostMark(severity, False) for host, severity in muted.items()}
        marks.update((host, HostMark(severity, True)) for host, severity in loud.items())
        return marks

    def grouped(self, alert_filter: AlertFilter) -> list[tuple[str, list[Alert]]]:
        """(severity, alerts) worst first; inside a group firing before silenced before
        acknowledged before resolved, newest first."""
        groups: dict[str, list[Alert]] = {}
        for alert in self.alerts:
            if alert_filter.matches(alert, self.shown_state(alert)):
                groups.setdefault(alert.severity, []).append(alert)
        out = []
        for severity in sorted(groups, key=_rank):
            alerts = sorted(
                groups[severity],
                key=lambda a: (SHOWN_STATES.index(self.shown_state(a)), -a.fired_ts, a.id),
            )
            out.append((severity, alerts))
        return out


def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, len(SEVERITIES))


def build_alert_board(alerts: list[Alert], silences: list[Silence], now_ts: float) -> AlertBoard:
    """Keep open alerts and recently resolved ones; note which open ones a silence in
    force covers."""
    in_force = tuple(s for s in silences if s.active_at(now_ts))
    kept = tuple(
        a
        for a in alerts
        if a.state != "resolved"
        or (a.resolved_ts is not None and now_ts - a.resolved_ts <= RESOLVED_SHOWN_S)
    )
    silenced = {}
    for alert in kept:
        if alert.state != "resolved":
            # the store's own matching, so "silenced" here means "nobody is told" there
            silence_id = silenced_by(list(in_force), alert.rule, alert.labels)
            if silence_id is not None:
                silenced[alert.id] = silence_id
    return AlertBoard(now_ts, kept, in_force, silenced)


# --- the filter line (`/` on the Alerts screen) ---------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """Space-separated terms, all must match:
    word  rule, where, tenant or summary contains it (!word: does not)
    state=firing|silenced|acknowledged|resolved|open (comma: any of)
    severity=critical  site=SG1  rack=…  host=…  tenant=…  rule=…  (also != and ~)"""

    text: str = ""
    terms: tuple[Callable[[Alert, str], bool], ...] = ()

    def matches(self, alert: Alert, shown_state: str) -> bool:
        return all(term(alert, shown_state) for term in self.terms)


def parse_alert_filter(text: str) -> AlertFilter:
    terms = []
    for word in text.split():
        match = _TERM.match(word.lower())
        if match is None:
            negate = word.startswith("!")
            needle = word.lstrip("!").lower()
            if needle:
                terms.append(_anywhere(needle, negate))
            continue
        key, op, value = match.groups()
        key = KEY_ALIASES.get(key, key)
        if key not in FILTER_KEYS:
            raise AlertFilterError(f"unknown filter {key!r} (use {', '.join(FILTER_KEYS)})")
        if key == "state":
            states: set[str] = set()
            for name in value.split(","):
                if name not in STATE_WORDS:
                    known = ", ".join(STATE_WORDS)
                    raise AlertFilterError(f"state {name!r}: use one of {known}")
                states.update(STATE_WORDS[name])
            terms.append(_state_term(frozenset(states), negate=op == "!="))
        else:
            terms.append(_label_term(key, op, value))
    return AlertFilter(text.strip(), tuple(terms))


def _values(key: str, alert: Alert) -> tuple[str, ...]:
    if key == "tenant":
        return tuple(t.lower() for t in tenants_of(alert))
    if key == "rule":
        return (alert.rule.lower(),)
    if key == "severity":
        return (alert.severity.lower(),)
    return (alert.labels.get(key, "").lower(),)


def _anywhere(needle: str, negate: bool) -> Callable[[Alert, str], bool]:
    def term(alert: Alert, shown_state: str) -> bool:
        texts = (alert.rule, where_text(alert), alert.labels.get("tenant", ""), alert.summary)
        return any(needle in t.lower() for t in texts) != negate

    return term


def _state_term(states: frozenset[str], *, negate: bool) -> Callable[[Alert, str], bool]:
    def term(alert: Alert, shown_state: str) -> bool:
        return (shown_state in states) != negate

    return term


def _label_term(key: str, op: str, value: str) -> Callable[[Alert, str], bool]:
    def term(alert: Alert, shown_state: str) -> bool:
        values = _values(key, alert)
        if op == "~":
            return any(value in v for v in values)
        found = value in values
        return found if op == "=" else not found

    return term
