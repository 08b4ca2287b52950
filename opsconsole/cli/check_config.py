"""`opsconsole check-config`: validate the config and print the fleet it resolves to.

It also builds the alert settings, so a misspelt rule in `[alerts.rules]` is reported here
and not first by a console at 3 a.m."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

import hostlist

from opsconsole.alerts.rules import AlertSettings
from opsconsole.alerts.settings import BUILTIN_BY_NAME, alert_settings
from opsconsole.config import Fleet, Host, load_fleet
from opsconsole.validate.settings import validation_settings


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="PATH",
        help="config file (default: $OPSCONSOLE_CONFIG or ./opsconsole.toml)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config", help="validate the config file and print the resolved fleet"
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print every host as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from opsconsole.plugin.host import load_plugins

    fleet = load_fleet(args.config)
    settings = alert_settings(fleet)
    load_plugins(fleet, instantiate=False)  # a bad [plugins.NAME] key stops here too
    validation_settings(fleet)  # [validation.classes] names must be host classes
    if args.json:
        print(json.dumps(fleet_as_dict(fleet) | {"alerts": alerts_as_dict(settings)}, indent=2))
    else:
        print(describe_fleet(fleet))
        print(describe_alerts(settings))
    return 0


def alerts_as_dict(settings: AlertSettings) -> dict[str, Any]:
    return {
        "rules": {
            name: {
                "severity": rule.severity,
                "threshold": rule.threshold,
                "unit": rule.unit or None,
                "for_s": rule.for_s,
                "keep_firing_for_s": rule.keep_firing_for_s,
                "window_h": rule.window_s / 3600.0 if rule.window_s is not None else None,
            }
            for name, rule in sorted(settings.rules.items())
        },
        "disabled": sorted(set(BUILTIN_BY_NAME) - set(settings.rules)),
        "xid_ignore": sorted(settings.xid_ignore),
        "xid_application_severity": settings.xid_application_severity,
        "xid_lookback_h": settings.xid_lookback_s / 3600.0,
    }


def describe_alerts(settings: AlertSettings) -> str:
    """One line: how many rules run, which differ from the built-in ones, XID handling."""
    changed = sorted(n for n, r in settings.rules.items() if BUILTIN_BY_NAME.get(n) != r)
    off = sorted(set(BUILTIN_BY_NAME) - set(settings.rules))
    parts = [f"{len(settings.rules)} rules"]
    if changed:
        parts.append(f"tuned: {', '.join(changed)}")
    if off:
        parts.append(f"off: {', '.join(off)}")
    if settings.xid_ignore:
        parts.append(f"XIDs ignored: {', '.join(map(str, sorted(settings.xid_ignore)))}")
    return "alerts   " + "; ".join(parts)


def fleet_as_dict(fleet: Fleet) -> dict[str, Any]:
    return {
        "config": str(fleet.path),
        "store": str(fleet.store_path),
        "sites": sorted(fleet.sites),
        "racks": {
            name: {
                "site": rack.site,
                "leaf": rack.leaf,
                "power_budget_kw": rack.power_budget_kw,
                "host_overhead_w": rack.host_overhead_w,
            }
            for name, rack in fleet.racks.items()
        },
        "hosts": [
            {
                "name": h.name,
                "address": h.address,
                "port": h.port,
                "user": h.user,
                "site": h.site,
                "rack": h.rack,
                "leaf": h.leaf,
                "class": h.host_class,
                "expected_gpus": h.expected_gpus,
                "gpu_model": h.gpu_model,
                "expected_ib_ports": h.expected_ib_ports,
                "expected_ib_rate_gbps": h.expected_ib_rate_gbps,
                "mode": h.mode,
            }
            for h in fleet.hosts
        ],
    }


def describe_fleet(fleet: Fleet) -> str:
    """A short human summary: per site and rack, hosts (as ranges) and expected GPUs."""
    ssh = fleet.config.ssh
    lines = [
        f"config   {fleet.path}",
        f"store    {fleet.store_path}",
        f"ssh      known_hosts={ssh.known_hosts or '(ssh config default)'}"
        f" proxy_jump={ssh.proxy_jump or '-'} ssh_config={'on' if ssh.use_ssh_config else 'off'}"
        + ("  HOST KEYS NOT CHECKED" if ssh.accept_unknown_host_keys_insecure else ""),
        f"polling  every {fleet.config.polling.interval_s:g} s,"
        f" {fleet.config.polling.connect_concurrency} connects at a time",
        "",
    ]
    by_rack: dict[str, list[Host]] = {}
    for host in fleet.hosts:
        by_rack.setdefault(host.rack, []).append(host)
    for site in sorted(fleet.sites):
        site_hosts = [h for h in fleet.hosts if h.site == site]
        gpus = sum(h.expected_gpus for h in site_hosts)
        lines.append(f"site {site}: {len(site_hosts)} hosts, {gpus} GPUs expected")
        for rack in (r for r in fleet.racks.values() if r.site == site):
            hosts = by_rack.get(rack.name, [])
            budget = f"{rack.power_budget_kw:g} kW" if rack.power_budget_kw else "no budget set"
            modes = Counter(h.mode for h in hosts)
            lines.append(
                f"  {rack.name:<12} leaf {rack.leaf or '-':<14} {budget:<14}"
                f" {len(hosts):>4} hosts  "
                f"{hostlist.collect_hostlist([h.name for h in hosts]) if hosts else '-'}"
                + ("".join(f"  {n} {m}" for m, n in sorted(modes.items()) if m != "agent"))
            )
    total = sum(h.expected_gpus for h in fleet.hosts)
    lines.append("")
    lines.append(f"{len(fleet.hosts)} hosts, {total} GPUs expected, {len(fleet.racks)} racks")
    return "\n".join(lines)
