"""The three bodies the webhook sends: generic JSON, Slack-compatible, PagerDuty Events v2.

Pure functions of one transition, so each shape is tested without a network.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsconsole.plugin import AlertTransition, TransitionKind

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_PD_ACTION = {
    TransitionKind.FIRING: "trigger",
    TransitionKind.REFIRED: "trigger",
    TransitionKind.UNACKNOWLEDGED: "trigger",
    TransitionKind.ACKNOWLEDGED: "acknowledge",
    TransitionKind.RESOLVED: "resolve",
}
_SLACK_ICON = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":information_source:",
}
_SLACK_COLOUR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dedup_key(t: AlertTransition) -> str:
    """Stable for the alert's whole life: the fingerprint is its identity (rule + labels
    that name the thing), so firing, ack and resolve of one alert reach one incident."""
    return f"opsconsole-{t.alert.fingerprint}"


def generic(t: AlertTransition) -> dict[str, Any]:
    a = t.alert
    return {
        "version": 1,
        "transition": str(t.kind),
        "ts": t.ts,
        "time": iso(t.ts),
        "operator": t.operator,
        "comment": t.comment,
        "dedup_key": dedup_key(t),
        "alert": {
            "id": a.id,
            "fingerprint": a.fingerprint,
            "rule": a.rule,
            "kind": a.kind,
            "severity": a.severity,
            "state": a.state,
            "summary": a.summary,
            "labels": dict(a.labels),
            "first_fired_ts": a.first_fired_ts,
            "fired_ts": a.fired_ts,
            "fire_count": a.fire_count,
            "acked_by": a.acked_by,
            "resolved_by": a.resolved_by,
        },
    }


def headline(t: AlertTransition) -> str:
    a = t.alert
    who = f" by {t.operator}" if t.operator else ""
    why = f": {t.comment}" if t.comment and t.kind != TransitionKind.FIRING else ""
    return f"[{a.severity.upper()}] {str(t.kind).upper()}{who} {a.rule} #{a.id}: {a.summary}{why}"


def slack(t: AlertTransition) -> dict[str, Any]:
    a = t.alert
    resolved = t.kind == TransitionKind.RESOLVED
    icon = ":white_check_mark:" if resolved else _SLACK_ICON.get(a.severity, "")
    fields = [{"title": k, "value": v, "short": True} for k, v in sorted(a.labels.items())]
    return {
        "text": f"{icon} {headline(t)}".strip(),
        "attachments": [
            {
                "color": "#2ca02c" if resolved else _SLACK_COLOUR.get(a.severity, "#999999"),
                "fields": fields,
                "footer": "opsconsole",
                "ts": int(t.ts),
            }
        ],
    }


def pagerduty(t: AlertTransition, routing_key: str) -> dict[str, Any]:
    a = t.alert
    action = _PD_ACTION[t.kind]
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(t),
    }
    if action == "trigger":
        labels = a.labels
        body["payload"] = {
            "summary": f"{a.rule}: {a.summary}"[:1024],
            "source": labels.get("host")
            or labels.get("rack")
            or labels.get("site")
            or "opsconsole",
            "severity": a.severity if a.severity in ("critical", "warning", "info") else "error",
            "timestamp": iso(a.fired_ts),
            "component": f"gpu{labels['gpu']}" if labels.get("gpu") else labels.get("port"),
            "group": labels.get("rack") or labels.get("site"),
            "class": a.rule,
            "custom_details": dict(labels) | {"alert_id": a.id, "transition": str(t.kind)},
        }
        body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
    return body
