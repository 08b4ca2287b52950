"""Who the host is and how it is being heard: place, state and why, collection mode,
SSH round trip, last seen, software versions."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from opsconsole.config import Host
from opsconsole.leases.times import format_ts
from opsconsole.ui.view.fleet_painter import STATE_MARKS
from opsconsole.ui.view.formatting import age_text
from opsconsole.ui.view.snapshot import HostSnapshot
from opsconsole.ui.widgets.in_place import update_in_place

STATE_COLOURS = {"fresh": "#5fd75f", "stale": "#ffd75f", "down": "#ff5f5f", "pending": "#8a8a8a"}


class HostFacts(Static):
    DEFAULT_CSS = "HostFacts { height: auto; padding: 0 1; }"

    def show(self, host: Host, snap: HostSnapshot | None, now_ts: float) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(host.name, "bold")
        text.append(f"  site {host.site} · rack {host.rack}", "#8a8a8a")
        if host.leaf:
            text.append(f" · leaf {host.leaf}", "#8a8a8a")
        text.append(f" · class {host.host_class} · {host.expected_gpus} GPUs expected", "#8a8a8a")
        text.append(f" · {host.address}:{host.port}\n", "#6c6c6c")
        status = snap.status if snap is not None else "pending"
        colour = STATE_COLOURS.get(status, "#d0d0d0")
        text.append(f"{STATE_MARKS.get(status, '?')} {status.upper()}", f"bold {colour}")
        if snap is not None:
            text.append(f" for {age_text(now_ts - snap.since_ts)}", colour)
            why = snap.reason + (f": {snap.detail}" if snap.detail else "")
            if why:
                text.append(f" · {why}", colour)
            if status in ("stale", "down"):
                last = snap.last_sample_ts
                note = (
                    "never had a sample"
                    if last is None
                    else (
                        f"numbers below are {age_text(now_ts - last)} old, not live"
                        if status == "stale"
                        else "no live numbers"
                    )
                )
                text.append(f" · {note}", f"bold {colour}")
        text.append("\n")
        text.append("mode ", "#8a8a8a")
        text.append(snap.mode if snap is not None else host.mode)
        text.append("  ssh rtt ", "#8a8a8a")
        rtt = snap.rtt_ms if snap is not None else None
        text.append("—" if rtt is None else f"{rtt:.1f} ms")
        text.append("  last seen ", "#8a8a8a")
        seen = snap.last_seen_ts if snap is not None else None
        text.append("never" if seen is None else f"{age_text(now_ts - seen)} ago")
        if seen is not None:
            text.append(f" ({format_ts(seen, '%H:%M:%S')})", "#6c6c6c")
        if snap is not None:
            text.append(f"  samples {snap.samples_received}", "#8a8a8a")
            if snap.protocol_errors:
                text.append(f"  refused lines {snap.protocol_errors}", "#ffd75f")
            if snap.hello is not None:
                facts = snap.hello.host
                text.append(
                    f"  driver {facts.driver_version or '—'} · CUDA {facts.cuda_version or '—'}"
                    f" · agent {snap.hello.agent_version}",
                    "#8a8a8a",
                )
            if snap.distrust:  # what the host sent that the console refused or doubts
                text.append("\nrefused ", "#8a8a8a")
                text.append(" · ".join(snap.distrust), "#ffd75f")
        update_in_place(self, text)
