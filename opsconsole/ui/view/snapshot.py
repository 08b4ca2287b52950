"""Immutable pictures of live state, built on the thread that owns the FleetState.

Why snapshots: the poller mutates HostState on its own thread (deques, dicts, history
rings); the UI thread must never iterate those while they change. A HostSnapshot holds only
objects the poller never mutates after creating them (the decoded GpuSamples, Hello,
tuples), plus the figures every screen sorts and colours by, computed off the UI thread.

Why raw GpuSamples and not GpuViews: a GpuView builds 24 Readings per GPU, which for 8,000
GPUs every interval is seconds of CPU under the GIL. The fleet grid reads the few fields it
needs with the same rules (`cell_reading`); full Readings are built for the one host on
screen (`gpu_views`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsconsole.collect.readings import HISTORY_METRICS, GpuView, gpu_view
from opsconsole.collect.state import HostState
from opsconsole.config import Host
from opsconsole.counters import IB_ERROR_COUNTERS
from opsconsole.ui.view.health import UNKNOWN, GpuHealth, gpu_health
from opsconsole.wire import GpuEvent, GpuSample, Hello, Sample

ETH_ERROR_COUNTERS = ("rx_errors", "tx_errors")
ETH_DROP_COUNTERS = ("rx_dropped", "tx_dropped")
EVENTS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One host at one moment. `gpus` are the raw latest readings: read them through
    `cell_reading` or `gpu_views`, which honour the host's status."""

    name: str
    host: Host
    status: str
    reason: str
    detail: str
    since_ts: float
    last_seen_ts: float | None
    last_sample_ts: float | None
    connected: bool
    rtt_ms: float | None
    mode: str
    gpus: tuple[GpuSample, ...]
    sample_ts: float | None
    health: tuple[GpuHealth, ...]
    last_xid: dict[int, GpuEvent]
    gpu_count: int | None
    driver: str | None
    driver_detail: str
    hello: Hello | None
    samples_received: int
    protocol_errors: int
    last_protocol_error: str
    # Aggregates for sorting and rack power; None when nothing live is known.
    util_avg_pct: float | None
    temp_max_c: float | None
    power_w: float | None
    mem_used_pct: float | None
    faults: int
    warnings: int
    distrust: tuple[str, ...] = ()
    """What the console refused or doubts of this host's data (HostState.distrust_notes)."""
    node_power_w: float | None = None
    """The node's draw from its BMC (collector plugin); rack power uses it when known."""
    sample: Sample | None = None
    """The latest sample itself (the poller replaces it, never changes it): capacity's
    live power and IB error rates read it from here, never from the poller's state."""

    @property
    def is_fresh(self) -> bool:
        return self.status == "fresh"

    def gpu_views(self) -> list[GpuView]:
        """Every GPU as Readings (value / stale / unreachable ...); for one host at a time."""
        return [gpu_view(g, self.status, self.sample_ts) for g in self.gpus]

    @property
    def missing_gpus(self) -> int:
        if self.gpu_count is None:
            return 0
        return max(0, self.host.expected_gpus - self.gpu_count)


@dataclass(frozen=True, slots=True)
class LinkView:
    """An IB port or Ethernet interface with windowed rates; `live` False means the
    numbers are the last ones seen on a host that is not fresh."""

    kind: str  # "ib" or "eth"
    name: str
    state: str
    phys_state: str
    speed_gbps: float | None
    live: bool
    rx_gbps: float | None
    tx_gbps: float | None
    errors_per_s: float | None
    drops_per_s: float | None
    window_s: float


@dataclass(frozen=True, slots=True)
class HostDetail:
    """What the host view needs beyond the snapshot: history, ports, events."""

    snapshot: HostSnapshot
    gpu_views: tuple[GpuView, ...] = ()
    history: dict[tuple[int, str], tuple[float | None, ...]] = field(default_factory=dict)
    links: tuple[LinkView, ...] = ()
    events: tuple[GpuEvent, ...] = ()


def _values(gpus: tuple[GpuSample, ...], field: str) -> list[float]:
    return [float(v) for g in gpus if (v := getattr(g, field)) is not None]


def _mem_pct(gpu: GpuSample) -> float | None:
    used, total = gpu.mem_used_mib, gpu.mem_total_mib
    return 100.0 * used / total if used is not None and total else None


def last_xid_per_gpu(host: HostState) -> dict[int, GpuEvent]:
    """Newest XID per GPU index. Events with only a bus id are matched via the hello."""
    bus_to_index = {}
    if host.hello is not None:
        bus_to_index = {
            (g.pci_bus_id or "").lower(): g.index for g in host.hello.gpus if g.pci_bus_id
        }
    out: dict[int, GpuEvent] = {}
    for event in host.events:
        if event.kind != "xid":
            continue
        index = event.gpu
        if index is None and event.pci_bus_id:
            bus = event.pci_bus_id.lower()
            index = next((i for b, i in bus_to_index.items() if b.endswith(bus[-7:])), None)
        if index is not None and (index not in out or out[index].ts <= event.ts):
            out[index] = event
    return out


def host_snapshot(host: HostState, now_ts: float) -> HostSnapshot:
    sample = host.sample
    gpus = tuple(sample.gpus) if sample is not None else ()
    last_xid = last_xid_per_gpu(host) if host.events else {}
    fresh = host.status == "fresh"
    if fresh:
        health = tuple(gpu_health(g, last_xid.get(g.index), now_ts) for g in gpus)
        utils, temps = _values(gpus, "util_gpu_pct"), _values(gpus, "temp_c")
        powers = _values(gpus, "power_w")
        mems = [m for m in map(_mem_pct, gpus) if m is not None]
    else:  # nothing of a host that is not fresh counts as live
        health = tuple(UNKNOWN for _ in gpus)
        utils = temps = powers = mems = []
    return HostSnapshot(
        name=host.name,
        host=host.host,
        status=host.status,
        reason=host.reason,
        detail=host.detail,
        since_ts=host.since_ts,
        last_seen_ts=host.last_seen_ts,
        last_sample_ts=host.last_sample_ts,
        connected=host.connected,
        rtt_ms=host.rtt_ms,
        mode=host.mode,
        gpus=gpus,
        sample_ts=sample.ts if sample is not None else None,
        health=health,
        last_xid=last_xid,
        gpu_count=host.gpu_count,
        driver=sample.driver if sample is not None else None,
        driver_detail=sample.driver_detail if sample is not None else "",
        hello=host.hello,
        samples_received=host.samples_received,
        protocol_errors=host.protocol_errors,
        last_protocol_error=host.last_protocol_error,
        util_avg_pct=sum(utils) / len(utils) if utils else None,
        temp_max_c=max(temps) if temps else None,
        power_w=sum(powers) if powers else None,
        mem_used_pct=sum(mems) / len(mems) if mems else None,
        faults=sum(1 for h in health if h.level == "fault"),
        warnings=sum(1 for h in health if h.level == "warn"),
        distrust=tuple(host.distrust_notes()),
        node_power_w=host.node_power_w,
        sample=sample,
    )


def _sum_rates(rates: dict[str, float], names: tuple[str, ...]) -> float | None:
    present = [rates[n] for n in names if n in rates]
    return sum(present) if present else None


def _gbps(rates: dict[str, float], name: str, scale: float) -> float | None:
    return rates[name] * scale / 1e9 if name in rates else None


def host_detail(host: HostState, now_ts: float) -> HostDetail:
    snapshot = host_snapshot(host, now_ts)
    views = tuple(snapshot.gpu_views())
    history = {}
    for gpu in snapshot.gpus:
        for metric in HISTORY_METRICS:
            history[(gpu.index, metric)] = tuple(host.history.series(gpu.index, metric))
    links: list[LinkView] = []
    sample, live = host.sample, host.status == "fresh"
    if sample is not None:
        for port in sample.ib:
            window = host.ib_rates.get((port.device, port.port))
            rates = window.rates_per_s() if window is not None and live else {}
            links.append(
                LinkView(
                    kind="ib",
                    name=f"{port.device}/{port.port}",
                    state=port.state or "?",
                    phys_state=port.phys_state or "",
                    speed_gbps=port.rate_gbps,
                    live=live,
                    # port_rcv_data / port_xmit_data count 4-byte words
                    rx_gbps=_gbps(rates, "port_rcv_data", 32.0),
                    tx_gbps=_gbps(rates, "port_xmit_data", 32.0),
                    errors_per_s=_sum_rates(rates, IB_ERROR_COUNTERS) if rates else None,
                    drops_per_s=None,
                    window_s=window.span_s if window is not None else 0.0,
                )
            )
        for iface in sample.eth:
            window = host.eth_rates.get(iface.name)
            rates = window.rates_per_s() if window is not None and live else {}
            links.append(
                LinkView(
                    kind="eth",
                    name=iface.name,
                    state=iface.operstate or "?",
                    phys_state="",
                    speed_gbps=iface.speed_mbps / 1000.0 if iface.speed_mbps else None,
                    live=live,
                    rx_gbps=_gbps(rates, "rx_bytes", 8.0),
                    tx_gbps=_gbps(rates, "tx_bytes", 8.0),
                    errors_per_s=_sum_rates(rates, ETH_ERROR_COUNTERS) if rates else None,
                    drops_per_s=_sum_rates(rates, ETH_DROP_COUNTERS) if rates else None,
                    window_s=window.span_s if window is not None else 0.0,
                )
            )
    events = tuple(list(host.events)[-EVENTS_SHOWN:])
    return HostDetail(snapshot, views, history, tuple(links), events)
