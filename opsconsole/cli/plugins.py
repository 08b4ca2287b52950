"""`opsconsole plugins`: which plugins were found, which the config enables, which failed
and why. Enabled plugins are imported (with a time limit) and their config checked, but
not started: no listener is opened and nothing is sent."""

from __future__ import annotations

import argparse
import json
from typing import Any

from opsconsole.cli.check_config import add_config_argument
from opsconsole.config import load_fleet


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plugins", help="list plugins found, enabled and failed (with the reason)"
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from opsconsole.plugin.host import load_plugins

    fleet = load_fleet(args.config)
    plugins = load_plugins(fleet, instantiate=False, strict=False)
    rows = [status.as_dict() for status in plugins.report()]
    if args.json:
        print(json.dumps({"plugins": rows}, indent=2))
    else:
        print(describe(rows))
    return 1 if any(r["state"] in ("failed", "missing") for r in rows) else 0


def describe(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no plugins found"
    width = max(len(r["name"]) for r in rows)
    lines = []
    for r in rows:
        kind = f"{r['kind'] or '?'} {r['version'] or ''}".strip()
        line = (
            f"{r['name']:<{width}}  {r['state']:<8}  {kind:<16} {r['origin']:<11} {r['location']}"
        )
        if r["reason"]:
            line += f"\n{'':<{width}}  reason: {r['reason']}"
        lines.append(line)
    return "\n".join(lines)
