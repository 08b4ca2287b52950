"""`opsconsole alerts ...`: list, show, acknowledge, resolve and silence alerts from the
command line, against the same store the console uses.

Sub-commands: list, show ID, ack ID, resolve ID, silence, silences, unsilence ID. There is
no `unack`: the alert store has no way to withdraw an acknowledgement (an ack given with
--timeout re-fires on its own). Every refusal (unknown id, already resolved, acknowledged
by someone else, a bad silence) is one line, exit 1, and nothing written.
"""

from __future__ import annotations

import argparse

from opsconsole.alerts import (
    Alert,
    acknowledge,
    alert_history,
    create_silence,
    expire_silence,
    get_alert,
    list_alerts,
    resolve,
)
from opsconsole.alerts.silences import MATCHERS
from opsconsole.cli.lease_common import add_common, emit, open_context, table
from opsconsole.errors import AlertError
from opsconsole.leases import parse_duration
from opsconsole.leases.times import format_ts

STATES = ("firing", "acknowledged", "resolved", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("alerts", help="list, acknowledge, resolve and silence alerts")
    sub = parser.add_subparsers(dest="alerts_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))

    p = sub.add_parser("list", help="alerts, newest firing first (default: not resolved)")
    add_common(p)
    p.add_argument("--state", choices=STATES, help="only this state (default: open ones)")
    p.add_argument("--host", help="only alerts on this host")
    p.set_defaults(handler=run_list)

    p = sub.add_parser("show", help="one alert and its history")
    add_common(p)
    p.add_argument("id", type=int)
    p.set_defaults(handler=run_show)

    p = sub.add_parser("ack", help="acknowledge a firing alert")
    add_common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True, help="what you are doing about it")
    p.add_argument("--timeout", help="fire again if still open this long after (2h, 30m)")
    p.set_defaults(handler=run_ack)

    p = sub.add_parser("resolve", help="resolve an alert by hand")
    add_common(p)
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True, help="what was done")
    p.set_defaults(handler=run_resolve)

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
    p.set_defaults(handler=run_silences)

    p = sub.add_parser("unsilence", help="end a silence now")
    add_common(p)
    p.add_argument("id", type=int)
    p.set_defaults(handler=run_unsilence)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def alert_dict(a: Alert) -> dict:
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
        "acked_ts": a.acked_ts,
        "acked_by": a.acked_by,
        "ack_comment": a.ack_comment,
        "ack_expires_ts": a.ack_expires_ts,
        "resolved_ts": a.resolved_ts,
        "resolved_by": a.resolved_by,
        "resolve_comment": a.resolve_comment,
    }


def _comment(text: str, what: str) -> str:
    if not text.strip():
        raise AlertError(f"{what} needs a comment (--comment)")
    return text.strip()


def run_list(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    alerts = list_alerts(ctx.db, include_resolved=args.state in ("resolved", "all"))
    if args.state and args.state != "all":
        alerts = [a for a in alerts if a.state == args.state]
    if args.host:
        alerts = [a for a in alerts if a.labels.get("host") == args.host]
    rows = [
        [
            a.id,
            a.state,
            a.severity,
            a.rule,
            a.labels.get("host"),
            format_ts(a.fired_ts),
            a.acked_by or a.resolved_by,
            a.ack_comment or a.resolve_comment or a.summary,
        ]
        for a in alerts
    ]
    text = table(["ID", "STATE", "SEVERITY", "RULE", "HOST", "FIRED", "BY", "NOTE"], rows)
    return emit(args, [alert_dict(a) for a in alerts], text)


def run_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    a = get_alert(ctx.db, args.id)
    history = [
        {"ts": ts, "from_state": old, "to_state": new, "operator": who, "comment": comment}
        for ts, old, new, who, comment in alert_history(ctx.db, a.id)
    ]
    labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
    lines = [
        f"alert {a.id} {a.rule} ({a.severity}, {a.state}): {a.summary}",
        f"  labels     {labels}",
        f"  fired      {format_ts(a.fired_ts)} (first {format_ts(a.first_fired_ts)},"
        f" {a.fire_count} firing(s))",
    ]
    if a.silenced_by is not None:
        lines.append(f"  silenced   by silence {a.silenced_by}")
    if a.acked_by:
        until = f", until {format_ts(a.ack_expires_ts)}" if a.ack_expires_ts else ""
        lines.append(
            f"  acked      {format_ts(a.acked_ts)} by {a.acked_by}{until}: {a.ack_comment}"
        )
    if a.resolved_ts is not None:
        by = a.resolved_by or "(cleared)"
        lines.append(f"  resolved   {format_ts(a.resolved_ts)} by {by}: {a.resolve_comment or ''}")
    lines.append("  history")
    lines += [
        f"    {format_ts(h['ts'])}  {h['from_state'] or '-'} → {h['to_state']}"
        f"  {h['operator'] or '-'}  {h['comment'] or ''}".rstrip()
        for h in history
    ]
    return emit(args, {**alert_dict(a), "history": history}, "\n".join(lines))


def run_ack(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    comment = _comment(args.comment, "an acknowledgement")
    timeout_s = parse_duration(args.timeout) if args.timeout else None
    a = acknowledge(ctx.db, args.id, ctx.operator, comment, timeout_s=timeout_s, now_ts=ctx.now_ts)
    until = f" until {format_ts(a.ack_expires_ts)}" if a.ack_expires_ts else ""
    text = f"acknowledged alert {a.id} ({a.rule}) as {a.acked_by}{until}: {a.ack_comment}"
    return emit(args, alert_dict(a), text)


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
        matchers,
        start_ts=start_ts,
        end_ts=end_ts,
        created_by=ctx.operator,
        comment=comment,
        now_ts=ctx.now_ts,
    )
    data = {
        "id": silence_id,
        "matchers": matchers,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "created_by": ctx.operator,
        "comment": comment,
    }
    text = (
        f"silence {silence_id}: {_match_text(matchers)} from {format_ts(start_ts)}"
        f" until {format_ts(end_ts)} ({comment})"
    )
    return emit(args, data, text)


def _match_text(matchers: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in matchers.items())


def run_silences(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    rows = ctx.db.conn.execute(
        f"SELECT id, {', '.join(MATCHERS)}, start_ts, end_ts, created_by, comment"
        " FROM silences WHERE end_ts > ? ORDER BY start_ts, id",
        (ctx.now_ts,),
    ).fetchall()
    silences = []
    for row in rows:
        matchers = {k: v for k, v in zip(MATCHERS, row[1:7], strict=True) if v is not None}
        silences.append(
            {
                "id": row[0],
                "matchers": matchers,
                "start_ts": row[7],
                "end_ts": row[8],
                "created_by": row[9],
                "comment": row[10],
                "active": row[7] <= ctx.now_ts,
            }
        )
    text = table(
        ["ID", "MATCH", "STATE", "FROM", "UNTIL", "BY", "COMMENT"],
        [
            [
                s["id"],
                _match_text(s["matchers"]),
                "in force" if s["active"] else "scheduled",
                format_ts(s["start_ts"]),
                format_ts(s["end_ts"]),
                s["created_by"],
                s["comment"],
            ]
            for s in silences
        ],
    )
    return emit(args, silences, text)


def run_unsilence(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    expire_silence(ctx.db, args.id, now_ts=ctx.now_ts)
    return emit(args, {"id": args.id, "ended_ts": ctx.now_ts}, f"ended silence {args.id}")
