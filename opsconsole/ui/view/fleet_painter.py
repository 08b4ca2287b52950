"""Turns one fleet-grid line (site, rack or host) into a line of styled segments, exactly
`cols.width` cells wide (the grid wraps it in a Textual `Strip`: this module is Textual-free).

Kept apart from the widget so the widget is only about scrolling, caching and keys; the
painter is about what a line says. Styles are built once and reused: a frame of 40 lines
allocates segments, never Style objects.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style

from opsconsole.config import Fleet, Host
from opsconsole.ui.view.alert_board import HostMark
from opsconsole.ui.view.fleet_rows import RackPower
from opsconsole.ui.view.formatting import age_text, kw, number
from opsconsole.ui.view.lease_board import GpuTenant
from opsconsole.ui.view.metrics import Metric, cell_style, gpu_cell
from opsconsole.ui.view.snapshot import HostSnapshot

Line = list[Segment]
"""One painted line: segments whose cells add up to the grid's width."""

STATE_STYLES = {
    "fresh": Style(color="#5fd75f"),
    "degraded": Style(color="#ffd75f"),
    "stale": Style(color="#ffd75f", bold=True),
    "down": Style(color="#ff5f5f", bold=True),
    "pending": Style(color="#8a8a8a"),
}
STATE_MARKS = {"fresh": "●", "stale": "▲", "down": "✖", "pending": "…"}
PLAIN = Style(color="#d0d0d0")
DIM = Style(color="#6c6c6c")
HEADER = Style(color="#87afd7", bold=True)
SITE = Style(color="#ffffff", bold=True, bgcolor="#1c2b3a")
RACK = Style(color="#afd7ff", bold=True)
GAP = Segment(" ")
TENANT_WIDTH = 16
"""A tenant name of up to ~12 characters, its GPU count and others' count."""
BAR_OK, BAR_WARN, BAR_OVER = Style(color="#5fd75f"), Style(color="#ffd75f"), Style(color="#ff5f5f")
ALERT_MARKS = {
    # (worst severity, someone unacknowledged) -> marker style
    ("critical", True): Style(color="#ffffff", bgcolor="#af0000", bold=True),
    ("warning", True): Style(color="#000000", bgcolor="#ffd75f", bold=True),
    ("info", True): Style(color="#87afd7", bold=True),
    ("critical", False): Style(color="#d75f5f"),
    ("warning", False): Style(color="#af8700"),
    ("info", False): Style(color="#5f87af"),
}
"""A host with open alerts starts its line with `!`: loud while one of them is firing
unacknowledged and unsilenced, muted once everything on it is acknowledged or silenced."""
NO_MARK = Segment("  ")


@dataclass(frozen=True, slots=True)
class Columns:
    """Column widths for one widget width (each includes its trailing space)."""

    width: int
    host: int
    rack: int
    state: int
    gpu_slots: int
    util: int = 6
    temp: int = 6
    """Room for "UTIL▼" / "TEMP▼" and a space: a sorted header is never cut."""
    power: int = 8
    mem: int = 5
    health: int = 9
    tenant: int = 0
    """0 when the console has no lease store: no TENANT column."""

    @classmethod
    def fit(cls, fleet: Fleet, width: int, *, tenants: bool = False) -> Columns:
        host_w = min(24, max([8, *(len(h.name) for h in fleet.hosts)]) + 1)
        rack_w = min(14, max([4, *(len(r) for r in fleet.racks)]) + 1)
        slots = min(16, max([1, *(h.expected_gpus for h in fleet.hosts)]))
        tenant_w = TENANT_WIDTH if tenants else 0
        fixed = 2 + host_w + rack_w + 6 + 6 + 8 + 5 + 9 + tenant_w
        while slots > 8 and width - fixed - 4 * slots - 1 < 14:
            slots -= 1  # narrow terminal: show fewer GPU cells before squeezing state
        state_w = min(40, max(14, width - fixed - 4 * slots - 1))
        return cls(width, host_w, rack_w, state_w, slots, tenant=tenant_w)


def _fit(text: str, width: int) -> str:
    """Pad or cut to exactly `width` cells, keeping one space at the end."""
    if len(text) >= width:
        return text[: max(0, width - 2)] + "… " if width > 1 else text[:width]
    return text.ljust(width)


class _NothingLive:
    """Aggregates of a host that is not fresh: none (they would be old numbers)."""

    util_avg_pct = temp_max_c = power_w = mem_used_pct = None


_NOTHING_LIVE = _NothingLive()


class FleetPainter:
    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.alert_marks: Mapping[str, HostMark] = {}
        """host → its alert marker; set by the fleet screen from the newest alert board."""

    def header(self, cols: Columns, metric: Metric, sort_key: str, descending: bool) -> Line:
        arrow = "▼" if descending else "▲"

        def title(name: str, key: str, width: int) -> Segment:
            label = f"{name}{arrow}" if key == sort_key else name
            return Segment(_fit(label, width), HEADER)

        gpus = f"GPUS · {metric.label}" + (f" {metric.unit}" if metric.unit else "")
        segments = [
            Segment("  "),
            title("HOST", "host", cols.host),
            title("RACK", "rack", cols.rack),
            title("STATE", "state", cols.state),
            Segment(_fit(gpus, cols.gpu_slots * 4 + 1), HEADER),
            title("UTIL", "util", cols.util),
            title("TEMP", "temp", cols.temp),
            title("POWER", "power", cols.power),
            title("MEM", "memory", cols.mem),
            title("HEALTH", "health", cols.health),
        ]
        if cols.tenant:
            segments.append(Segment(_fit("TENANT", cols.tenant), HEADER))
        return Segment.adjust_line_length(segments, cols.width)

    def site_line(
        self, cols: Columns, site: str, counts: dict[str, int], racks: int, *, folded: bool = False
    ) -> Line:
        hosts = sum(counts.values())
        mark = "▸" if folded else "■"
        text = f"{mark} {site} · {racks} rack{'s' if racks != 1 else ''} · {hosts} hosts"
        segments = [Segment(" " + text + "  ", SITE)]
        for status in ("fresh", "stale", "down", "pending"):
            if counts.get(status):
                segments.append(Segment(f"{counts[status]} {status}  ", STATE_STYLES[status]))
        return Segment.adjust_line_length(segments, cols.width)

    def rack_line(
        self,
        cols: Columns,
        rack: str,
        leaf: str | None,
        power: RackPower,
        hosts: int,
        down: int,
        *,
        folded: bool = False,
    ) -> Line:
        mark = "▸" if folded else "▾"
        text = f" {mark} {rack}" + (f" · leaf {leaf}" if leaf else "") + f" · {hosts} hosts"
        segments = [Segment(text, RACK)]
        if down:
            segments.append(Segment(f" ({down} not fresh)", STATE_STYLES["stale"]))
        segments.append(Segment(f" · power {power.now_kw:.1f}", PLAIN))
        fraction = power.fraction
        if fraction is None:
            segments.append(Segment(" kW · no budget set", DIM))
        else:
            style = BAR_OVER if fraction > 1.0 else BAR_WARN if fraction > 0.9 else BAR_OK
            # a bar never raises: whatever the sum, 0..10 cells (inf once crashed the TUI)
            filled = min(10, max(0, round(fraction * 10))) if math.isfinite(fraction) else 10
            segments += [
                Segment(f" / {power.budget_kw:g} kW ", PLAIN),
                Segment("█" * filled, style),
                Segment("░" * (10 - filled), DIM),
                Segment(f" {fraction * 100:.0f}%", style),
            ]
            if fraction > 1.0:
                segments.append(Segment(" OVER BUDGET", BAR_OVER))
        if power.unknown_hosts:
            segments.append(Segment(f" (+{power.unknown_hosts} hosts unknown)", DIM))
        return Segment.adjust_line_length(segments, cols.width)

    def host_line(
        self,
        cols: Columns,
        host: Host,
        snap: HostSnapshot | None,
        metric: Metric,
        now_ts: float,
        holders: dict[int, GpuTenant] | None = None,
    ) -> Line:
        """`holders`: who holds this host's GPUs now (TENANT column); None: not known yet."""
        segments = [*self._alert_marker(host.name), Segment(_fit(host.name, cols.host), PLAIN)]
        segments.append(Segment(_fit(host.rack, cols.rack), DIM))
        state_text, state_style = self._state(snap, now_ts)
        segments.append(Segment(_fit(state_text, cols.state), state_style))
        segments += self._gpu_cells(cols, host, snap, metric, holders)
        live: HostSnapshot | _NothingLive = (
            snap if snap is not None and snap.is_fresh else _NOTHING_LIVE
        )
        style = PLAIN if live is snap else DIM
        segments += [
            Segment(_fit(number(live.util_avg_pct, "{:.0f}%"), cols.util), style),
            Segment(_fit(number(live.temp_max_c, "{:.0f}°"), cols.temp), style),
            Segment(_fit(kw(live.power_w), cols.power), style),
            Segment(_fit(number(live.mem_used_pct, "{:.0f}%"), cols.mem), style),
            self._health(cols, host, snap),
        ]
        if cols.tenant:
            segments += tenant_segments(holders, cols.tenant)
        return Segment.adjust_line_length(segments, cols.width)

    def _alert_marker(self, name: str) -> list[Segment]:
        mark = self.alert_marks.get(name)
        if mark is None:
            return [NO_MARK]
        style = ALERT_MARKS.get((mark.severity, mark.loud), ALERT_MARKS[("warning", mark.loud)])
        return [Segment("!", style), GAP]

    def _state(self, snap: HostSnapshot | None, now_ts: float) -> tuple[str, Style]:
        if snap is None:
            return "… pending", STATE_STYLES["pending"]
        status = snap.status
        mark = STATE_MARKS.get(status, "?")
        why = snap.reason  # the detail is one Enter away, in the host view
        if status == "fresh":
            if snap.reason:
                return f"{mark} fresh · {snap.reason}", STATE_STYLES["degraded"]
            return f"{mark} fresh", STATE_STYLES["fresh"]
        if status == "pending":
            return f"{mark} {why or 'pending'}", STATE_STYLES["pending"]
        reference = snap.last_sample_ts if snap.last_sample_ts is not None else snap.since_ts
        text = f"{mark} {status} {age_text(now_ts - reference)}" + (f" · {why}" if why else "")
        return text, STATE_STYLES.get(status, PLAIN)

    def _gpu_cells(
        self,
        cols: Columns,
        host: Host,
        snap: HostSnapshot | None,
        metric: Metric,
        holders: dict[int, GpuTenant] | None = None,
    ) -> list[Segment]:
        if metric.key == "tenant":
            return self._tenant_cells(cols, host, holders)
        slots = cols.gpu_slots
        gpus = snap.gpus if snap is not None else ()
        health = snap.health if snap is not None else ()
        shown = max(len(gpus), host.expected_gpus)
        overflow = shown > slots
        out: list[Segment] = []
        for i in range(slots):
            if overflow and i == slots - 1:
                out.append(Segment(_fit(f"+{shown - slots + 1}", 4), DIM))
                break
            if snap is not None and i < len(gpus):
                text, style = gpu_cell(
                    metric, gpus[i], snap.status, health[i] if i < len(health) else None
                )
                out += [Segment(text, style), GAP]
            elif i < host.expected_gpus and snap is not None and snap.is_fresh:
                out += [Segment(" ✖ ", cell_style("#c62828")), GAP]  # expected, not reported
            elif i < host.expected_gpus:
                out += [Segment(" · ", DIM), GAP]
            else:
                out.append(Segment("    "))
        out.append(GAP)
        return out

    def _tenant_cells(
        self, cols: Columns, host: Host, holders: dict[int, GpuTenant] | None
    ) -> list[Segment]:
        """Each GPU slot as its tenant's initials in the tenant's colour; free slots dim.
        Slots, not readings: a lease holds (host, index) even while the GPU is lost."""
        out: list[Segment] = []
        for index in range(cols.gpu_slots):
            if index >= host.expected_gpus:
                out.append(Segment("    "))
                continue
            holder = holders.get(index) if holders else None
            if holders is None:
                out += [Segment(" ? ", DIM), GAP]
            elif holder is None:
                out += [Segment(" · ", DIM), GAP]
            else:
                out += [Segment(tenant_initials(holder.tenant), _tenant_cell(holder.colour)), GAP]
        out.append(GAP)
        return out

    def _health(self, cols: Columns, host: Host, snap: HostSnapshot | None) -> Segment:
        if snap is None or not snap.is_fresh:
            return Segment(_fit("—", cols.health), DIM)
        faults = snap.faults + snap.missing_gpus
        if faults:
            return Segment(_fit(f"{faults} fault", cols.health), STATE_STYLES["down"])
        if snap.warnings:
            return Segment(_fit(f"{snap.warnings} warn", cols.health), STATE_STYLES["stale"])
        return Segment(_fit(f"{len(snap.gpus)} ok", cols.health), STATE_STYLES["fresh"])


def tenant_segments(holders: dict[int, GpuTenant] | None, width: int) -> list[Segment]:
    """ "aurora-labs 8", or "aurora-labs 4 +2" (2 GPUs held by other tenants), or "free":
    the host's main tenant in its colour, the detail one Enter away in the host view."""
    if holders is None:
        return [Segment(_fit("…", width), DIM)]
    if not holders:
        return [Segment(_fit("free", width), DIM)]
    counts: dict[str, int] = {}
    for holder in holders.values():
        counts[holder.tenant] = counts.get(holder.tenant, 0) + 1
    main = max(counts, key=lambda name: (counts[name], name))
    colour = next(h.colour for h in holders.values() if h.tenant == main)
    tail = f" {counts[main]}"
    others = len(holders) - counts[main]
    if others:
        tail += f" +{others}"
    name = main[: max(1, width - 1 - len(tail))]
    if len(name) < len(main):
        name = name[:-1] + "…"
    return [
        Segment(name, _tenant_style(colour)),
        Segment(_fit(tail, width - len(name)), PLAIN),
    ]


@functools.cache
def _tenant_style(colour: str) -> Style:
    return Style(color=colour, bold=True)


def tenant_initials(name: str) -> str:
    """Three cells for a tenant name: "aurora-labs" -> " AL", "kestrel" -> "KES"."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    if len(words) >= 2:
        return f" {words[0][0]}{words[1][0]}".upper()
    return (name[:3] or "?").upper().rjust(3)


@functools.cache
def _tenant_cell(colour: str) -> Style:
    return Style(color="#000000", bgcolor=colour, bold=True)
