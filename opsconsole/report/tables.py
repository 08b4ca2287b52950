"""The report's summary lines and detail tables as plain text cells, drawn the same way
in Markdown and in the PDF (one source, so the two never disagree)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsconsole.report.tenant import iso


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]
    """Relative column widths for the PDF."""


def _num(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def summary_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    s, tenant, period = report["summary"], report["tenant"], report["period"]
    allowed = ", ".join(tenant["allowed_sites"]) if tenant["allowed_sites"] else "any site"
    head = report["audit"]["head_at_period_end"]
    lines = [
        ("Tenant", f"{tenant['name']} ({tenant['contact'] or 'no contact'})"),
        ("Period", f"{period['from']} to {period['to']}"),
        ("Allowed sites", allowed),
        ("Leases", str(s["leases"])),
        ("GPUs (physical)", str(s["gpus"])),
        ("Sites", ", ".join(s["sites"]) or "-"),
        ("Countries", ", ".join(s["countries"]) or "-"),
        ("GPU-hours", _num(s["gpu_hours"])),
        ("Energy (kWh)", f"{_num(s['energy_kwh'], 3)} ({s['energy_source']})"),
        ("Utilisation", "-" if s["util_pct_avg"] is None else f"{s['util_pct_avg']:.1f} %"),
        ("Every placement within allowed sites", _yes(s["placements_within_allowed_sites"])),
        ("Overrides", str(s["overrides"])),
        ("Drains / GPU-hours lost", f"{s['drains']} / {_num(s['gpu_hours_lost_to_drains'])}"),
        (
            "Incidents / GPU-hours under critical alerts",
            f"{s['incidents']} / {_num(s['gpu_hours_under_critical_alerts'])}",
        ),
        ("Audit rows cited", str(len(report["audit"]["rows"]))),
        ("Audit head at period end", f"{head['id']}:{head['hash']}"),
        ("Generated", f"{report['generated']} by {report['generated_by']}"),
    ]
    signature = report.get("signature")
    if signature:
        lines.append(("Signed by site key", signature["key_fingerprint"]))
        lines.append(("Site public key", signature["public_key"]))
    return lines


def detail_tables(report: dict[str, Any]) -> list[Table]:
    leases = Table(
        "Leases",
        ("Lease", "State", "Window (UTC)", "Sites", "GPUs", "GPU-h", "kWh*", "Util %", "Allowed"),
        tuple(
            (
                str(e["id"]),
                e["state"],
                e["window"],
                ", ".join(f"{s['site']} ({s['country'] or '?'})" for s in e["sites"]),
                f"{e['gpu_count']} {'/'.join(e['gpu_models'])}",
                _num(e["gpu_hours"]),
                _num(e["energy_kwh"], 3),
                _num(e["util_pct_avg"], 1),
                _yes(e["within_allowed_sites"]),
            )
            for e in report["leases"]
        ),
        (5, 8, 26, 12, 10, 7, 7, 6, 6),
    )
    gpus = Table(
        "Physical GPUs",
        ("Lease", "Host", "GPU", "Site", "Model", "Serial", "UUID"),
        tuple(
            (
                str(e["id"]),
                g["host"],
                str(g["gpu_index"]),
                f"{g['site']} ({g['country'] or '?'})",
                g["model"] or "-",
                g["serial"] or "-",
                (g["uuid"] or "-") + (f" (swapped {len(g['swaps'])}x)" if g["swaps"] else ""),
            )
            for e in report["leases"]
            for g in e["gpus"]
        ),
        (5, 14, 4, 9, 8, 14, 46),
    )
    overrides = Table(
        "Overrides",
        ("Lease", "Action", "When (UTC)", "Operator", "Reason", "Warnings"),
        tuple(
            (
                str(o["lease"]),
                o["action"],
                o["when"],
                o["operator"],
                o["reason"] or "-",
                "; ".join(o["warnings"]) or "-",
            )
            for o in report["overrides"]
        ),
        (5, 12, 18, 12, 25, 28),
    )
    drains = Table(
        "Drains on the tenant's GPUs",
        ("Drain", "Target", "Window (UTC)", "Reason", "By", "Leases", "GPU-h lost"),
        tuple(
            (
                str(d["id"]),
                d["target"],
                d["window"],
                d["reason"],
                d["created_by"],
                ", ".join(map(str, d["leases"])),
                _num(d["gpu_hours_lost"]),
            )
            for d in report["drains"]
        ),
        (5, 14, 26, 22, 10, 7, 8),
    )
    incidents = Table(
        "Incidents (alerts) on the tenant's GPUs",
        ("Alert", "Severity", "Fired (UTC)", "Host:GPU", "Summary", "Leases", "GPU-h lost"),
        tuple(
            (
                str(i["alert_id"]),
                i["severity"],
                i["first_fired"] or "-",
                f"{i['host']}:{i['gpu'] if i['gpu'] is not None else '*'}",
                i["summary"],
                ", ".join(map(str, i["leases"])),
                _num(i["gpu_hours_lost"]),
            )
            for i in report["incidents"]
        ),
        (5, 8, 18, 16, 40, 7, 8),
    )
    audit = Table(
        "Audit rows cited",
        ("ID", "When (UTC)", "Operator", "Action", "Subject", "Hash"),
        tuple(
            (str(r["id"]), iso(r["ts"]) or "-", r["operator"], r["action"], r["subject"], r["hash"])
            for r in report["audit"]["rows"]
        ),
        (4, 18, 12, 14, 12, 50),
    )
    return [leases, gpus, overrides, drains, incidents, audit]


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: summary, detail tables, then the proof."""
    out = [f"# Tenant report: {report['tenant']['name']}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in summary_lines(report)]
    out += ["", "*kWh: " + report["summary"]["energy_source"] + "*", ""]
    for table in detail_tables(report):
        out += [f"## {table.title}", ""]
        if not table.rows:
            out += ["(none)", ""]
            continue
        out.append("| " + " | ".join(table.headers) + " |")
        out.append("|" + "---|" * len(table.headers))
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
        out.append("")
    out += ["## Method", "", report["method"], ""]
    out += [
        "## Checking this report",
        "",
        "The JSON form of this report (`--json`) carries every cited audit row, the links",
        "from them to the head above, and an Ed25519 signature by the site key:",
        "`opsconsole report verify FILE --pubkey KEY` checks both on any machine.",
        "",
    ]
    return "\n".join(out)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
