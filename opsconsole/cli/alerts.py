"""`opsconsole alerts ...`: list, show, acknowledge, withdraw an acknowledgement, resolve
and silence alerts from the command line, against the same store the console uses.

Sub-commands: list, show ID, ack ID, unack ID, resolve ID, silence, silences, unsilence
ID, each with --json. Every refusal (unknown id, already resolved, acknowledged by
someone else, not acknowledged, a bad silence) is one line on stderr, exit 1, and
nothing written: the checks run inside the store's write transaction, which rolls back.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from opsconsole.alerts.silences import (
    MATCHERS,
    Silence,
    active_silences,
    create_silence,
    expire_silence,
    label_names,
    list_silences,
    silenced_by,
)
from opsconsole.alerts.store import (
    RESOLVED,
    Alert,
    acknowledge,
    alert_history,
    get_alert,
    list_alerts,
    resolve,
    unack,
)
from opsconsole.alerts.xid_catalogue import xid_info
from opsconsole.cli.common import Context, add_common, emit, open_context, table
from opsconsole.errors import AlertError
from opsconsole.leases import parse_duration
from opsconsole.leases.times import format_ts

STATES = ("firing", "acknowledged", "resolved", "silenced", "all")
SEVERITIES = ("info", "warning", "critical")
LABEL_FILTERS = ("site", "rack", "host", "tenant")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("alerts", help="list, acknowledge, resolve and silence alerts")
    sub = parser.add_subparsers(dest="alerts_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))
    _register_reads(sub)
    _register_lifecycle(sub)
    _register_silences(sub)


def _register_reads(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="alerts, newest firing first (default: not resolved)")
    add_common(p)
    p.add_argument("--state", choices=STATES, help="only this state (default: open ones)")
    for label in LABEL_FILTERS:
        p.add_argument(f"--{label}", help=f"only alerts labelled with this {label}")
    p.add_argument("--severity", choices=SEVERITIES, help="only this severity")
    p.set_defaults(handler=run_list)

    p = sub.add_parser("show", help="one alert, its labels, history and XID advice")
    add_common(p)
    p.add_argument("id", type=int)
    p.set_defaults(handler=run_show)


def _register_lifecycle(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ack", help="acknowledge a firing alert")
    add_common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True, help="what you are doing about it")
    p.add_argument(
        "--timeout",
        help="fire again if still open this long after (2h, 30m; default: the config's"
        " alerts.ack_timeout_default_s, else never)",
    )
    p.set_defaults(handler=run_ack)

    p = sub.add_parser("unack", help="withdraw an acknowledgement: firing and unowned again")
    add_common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True, help="why (handed over, wrong alert)")
    p.set_defaults(handler=run_unack)

    p = sub.add_parser("resolve", help="resolve an alert by hand")
    add_common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True, help="what was done")
    p.set_defaults(handler=run_resolve)


def _register_silences(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("silence", help="hold back notifications matching labels for a time")
    add_common(p)
    p.add_argument(
        "--match",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help=f"exact label match; keys: {', '.join(MATCHERS)}",
    )
    p.add_argument("--end", required=True, help="end time: ISO 8601 or relative (+1h)")
    p.add_argument("--start", default="now", help="start time (default now)")
    p.add_argument("--comment", required=True, help="why")
    p.set_defaults(handler=run_silence)

    p = sub.add_parser("silences", help="silences in force or scheduled")
    add_common(p)
    p.add_argument("--all", action="store_true", help="also ended ones still kept")
    p.set_defaults(handler=run_silences)

    p = sub.add_parser("unsilence", help="end a silence now")
    add_common(p)
    p.add_argument("id", type=int)
    p.set_defaults(handler=run_unsilence)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def alert_dict(a: Alert, silences: Sequence[Silence] = ()) -> dict[str, Any]:
    """The JSON of an alert. `silenced_now_by` is the silence in force over it now (from
    `silences`), as opposed to `silenced_by`, the one that held back this firing."""
    return {
        "id": a.id,
        "rule": a.rule,
        "kind": a.kind,
        "severity": a.severity,
        "state": a.state,
        "labels": a.labels,
        "summary": a.summary,
        "first_fired_ts": a.first_fired_ts,
        "fired_ts": a.fired_ts,
        "last_seen_ts": a.last_seen_ts,
        "fire_count": a.fire_count,
        "notified_ts": a.notified_ts,
        "silenced_by": a.silenced_by,
        "silenced_now_by": _silenced_now(a, silences),
        "acked_ts": a.acked_ts,
        "acked_by": a.acked_by,
        "ack_comment": a.ack_comment,
        "ack_expires_ts": a.ack_expires_ts,
        "resolved_ts": a.resolved_ts,
        "resolved_by": a.resolved_by,
        "resolve_comment": a.resolve_comment,
    }


def _silenced_now(a: Alert, silences: Sequence[Silence]) -> int | None:
    """A resolved alert is not "silenced": there is nothing left to hold back."""
    return None if a.state == RESOLVED else silenced_by(list(silences), a.rule, a.labels)


def _comment(text: str, what: str) -> str:
    if not text.strip():
        raise AlertError(f"{what} needs a comment (--comment)")
    return text.strip()


def _wanted(a: Alert, args: argparse.Namespace, silences: list[Silence]) -> bool:
    """The `list` filters: state (silenced = open and under a silence in force now),
    labels (a tenant label may name several tenants), severity."""
    if args.state == "silenced" and _silenced_now(a, silences) is None:
        return False
    if args.state in ("firing", "acknowledged", "resolved") and a.state != args.state:
        return False
    if args.severity and a.severity != args.severity:
        return False
    if args.tenant and args.tenant not in label_names(a.labels.get("tenant")):
        return False
    return all(
        getattr(args, key) is None or a.labels.get(key) == getattr(args, key)
        for key in ("site", "rack", "host")
    )


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    silences = active_silences(ctx.db, ctx.now_ts)
    every = list_alerts(ctx.db, include_resolved=args.state in ("resolved", "all"))
    alerts = [a for a in every if _wanted(a, args, silences)]
    rows = [
        [
            a.id,
            a.state + (" (silenced)" if _silenced_now(a, silences) else ""),
            a.severity,
            a.rule,
            a.labels.get("host"),
            a.labels.get("tenant"),
            format_ts(a.fired_ts),
            a.acked_by or a.resolved_by,
            a.ack_comment or a.resolve_comment or a.summary,
        ]
        for a in alerts
    ]
    headers = ["ID", "STATE", "SEVERITY", "RULE", "HOST", "TENANT", "FIRED", "BY", "NOTE"]
    return emit(args, [alert_dict(a, silences) for a in alerts], table(headers, rows))


def _xid(a: Alert) -> dict[str, Any] | None:
    """The catalogue's advice for an XID alert (labelled with its code), else None."""
    code = a.labels.get("code", "")
    if not (a.rule.startswith("xid_") and code.isdigit()):
        return None
    info = xid_info(int(code))
    return {"code": info.code, "meaning": info.meaning, "cause": info.cause,
            "action": info.action, "severity": info.severity}  # fmt: skip


def _history(ctx: Context, alert_id: int) -> list[dict[str, Any]]:
    return [
        {"ts": ts, "from_state": old, "to_state": new, "operator": who, "comment": comment}
        for ts, old, new, who, comment in alert_history(ctx.db, alert_id)
    ]


def run_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    a = get_alert(ctx.db, args.id)
    data = {**alert_dict(a, active_silences(ctx.db, ctx.now_ts)), "xid": _xid(a)}
    data["history"] = _history(ctx, a.id)
    return emit(args, data, "\n".join(_show_lines(a, data)))


def _show_lines(a: Alert, data: dict[str, Any]) -> list[str]:
    """The text of `show`: who is hurt first (tenants, leases), then what to do (XID
    advice), then the lifecycle and its history."""
    labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
    lines = [f"alert {a.id} {a.rule} ({a.severity}, {a.state}): {a.summary}",
             f"  labels     {labels}"]  # fmt: skip
    for key, title in (("tenant", "tenants"), ("leases", "leases")):
        if label_names(a.labels.get(key)):
            lines.append(f"  {title:<10} {', '.join(label_names(a.labels.get(key)))}")
    if data["xid"]:
        x = data["xid"]
        lines += [f"  xid        {x['code']}: {x['meaning']}",
                  f"  cause      {x['cause']} (likely)", f"  action     {x['action']}"]  # fmt: skip
    lines.append(
        f"  fired      {format_ts(a.fired_ts)} (first {format_ts(a.first_fired_ts)},"
        f" {a.fire_count} firing(s))"
    )
    return lines + _lifecycle_lines(a, data)


def _lifecycle_lines(a: Alert, data: dict[str, Any]) -> list[str]:
    lines = []
    if data["silenced_now_by"] is not None:
        lines.append(f"  silenced   now, by silence {data['silenced_now_by']}")
    elif a.silenced_by is not None:
        lines.append(f"  silenced   when it fired, by silence {a.silenced_by}")
    if a.acked_by:
        until = f", until {format_ts(a.ack_expires_ts)}" if a.ack_expires_ts else ""
        lines.append(
            f"  acked      {format_ts(a.acked_ts)} by {a.acked_by}{until}: {a.ack_comment}"
        )
    if a.resolved_ts is not None:
        by = a.resolved_by or "(cleared)"
        lines.append(f"  resolved   {format_ts(a.resolved_ts)} by {by}: {a.resolve_comment or ''}")
    lines.append("  history")
    return lines + [
        f"    {format_ts(h['ts'])}  {h['from_state'] or '-'} → {h['to_state']}"
        f"  {h['operator'] or '-'}  {h['comment'] or ''}".rstrip()
        for h in data["history"]
    ]


def run_ack(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    comment = _comment(args.comment, "an acknowledgement")
    timeout_s = (
        parse_duration(args.timeout)
        if args.timeout
        else ctx.fleet.config.alerts.ack_timeout_default_s
    )
    a = acknowledge(ctx.db, args.id, ctx.operator, comment, timeout_s=timeout_s, now_ts=ctx.now_ts)
    until = f" until {format_ts(a.ack_expires_ts)}" if a.ack_expires_ts else ""
    text = f"acknowledged alert {a.id} ({a.rule}) as {a.acked_by}{until}: {a.ack_comment}"
    return emit(args, alert_dict(a, active_silences(ctx.db, ctx.now_ts)), text)


def run_unack(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    comment = _comment(args.comment, "withdrawing an acknowledgement")
    a = unack(ctx.db, args.id, ctx.operator, comment, now_ts=ctx.now_ts)
    text = f"alert {a.id} ({a.rule}) is firing again, unacknowledged by {ctx.operator}: {comment}"
    return emit(args, alert_dict(a, active_silences(ctx.db, ctx.now_ts)), text)


def run_resolve(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    comment = _comment(args.comment, "resolving an alert")
    a = resolve(ctx.db, args.id, ctx.operator, comment, now_ts=ctx.now_ts)
    text = f"resolved alert {a.id} ({a.rule}) as {a.resolved_by}: {a.resolve_comment}"
    return emit(args, alert_dict(a), text)


def _matchers(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise AlertError(f'"{item}" is not a matcher: use KEY=VALUE, such as host=sg1-r01-n01')
        out[key.strip()] = value.strip()
    return out


def run_silence(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    matchers = _matchers(args.match)
    comment = _comment(args.comment, "a silence")
    start_ts, end_ts = ctx.time(args.start), ctx.time(args.end)
    silence_id = create_silence(
        ctx.db,
        dict[str, str | int](matchers),
        start_ts=start_ts,
        end_ts=end_ts,
        created_by=ctx.operator,
        comment=comment,
        now_ts=ctx.now_ts,
    )
    made = Silence(silence_id, matchers, start_ts, end_ts, ctx.operator, comment, ctx.now_ts)
    text = (
        f"silence {silence_id}: {_match_text(matchers)} from {format_ts(start_ts)}"
        f" until {format_ts(end_ts)} ({comment})"
    )
    return emit(args, silence_dict(made, ctx.now_ts), text)


def _match_text(matchers: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in matchers.items())


def silence_dict(s: Silence, now_ts: float) -> dict[str, Any]:
    """The JSON of a silence; `state` is in force, scheduled or ended at `now_ts`."""
    return {
        "id": s.id,
        "matchers": s.matchers,
        "start_ts": s.start_ts,
        "end_ts": s.end_ts,
        "created_ts": s.created_ts,
        "created_by": s.created_by,
        "comment": s.comment,
        "active": s.active_at(now_ts),
        "state": s.state_at(now_ts),
    }


def run_silences(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    silences = list_silences(ctx.db, now_ts=ctx.now_ts, include_expired=args.all)
    rows = [
        [s.id, _match_text(s.matchers), s.state_at(ctx.now_ts), format_ts(s.start_ts),
         format_ts(s.end_ts), format_ts(s.created_ts), s.created_by, s.comment]
        for s in silences
    ]  # fmt: skip
    headers = ["ID", "MATCH", "STATE", "FROM", "UNTIL", "CREATED", "BY", "COMMENT"]
    return emit(args, [silence_dict(s, ctx.now_ts) for s in silences], table(headers, rows))


def run_unsilence(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    expire_silence(ctx.db, args.id, now_ts=ctx.now_ts)
    return emit(args, {"id": args.id, "ended_ts": ctx.now_ts}, f"ended silence {args.id}")
