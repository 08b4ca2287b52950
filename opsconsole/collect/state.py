"""Live fleet state in memory: what the UI, the alerts and `poll --once` read.

Plain classes, written only from the event loop that runs the poller; readers on the same
loop see consistent objects. Status is derived from the console's own clock (sample
arrival), never from the host's timestamps, so a host with a wrong clock cannot look fresh.

Statuses: "pending" (never heard from yet, still connecting), "fresh", "stale" (no sample
for stale_after_s), "down" (no sample for down_after_s, or the connection itself failed).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Literal

from opsconsole.collect.protocol import GpuEvent, Hello, Sample
from opsconsole.collect.rates import CounterWindow
from opsconsole.collect.readings import HISTORY_METRICS, GpuView, HistoryRing, gpu_view
from opsconsole.config import Fleet, Host

log = logging.getLogger("opsconsole.collect")

HostStatus = Literal["pending", "fresh", "stale", "down"]
Change = Literal["status", "sample", "hello", "error", "connection"]
"""What changed: "status" only when fresh/stale/down moved; "connection" for connects,
disconnects and their reasons; "error" for a refused line or an agent's error report."""
Listener = Callable[["HostState", Change], None]

EVENTS_KEPT = 200
"""Recent XID/SXID events kept per host for display; the store keeps them all."""


RTT_PROBES_KEPT = 20
"""Probe loss is over the last 20 keepalive probes (5 minutes at the 15 s default)."""
RTT_PROBES_MIN = 4


class HostState:
    """One host as last seen. Every `*_ts` is UTC epoch seconds on the console's clock
    unless it says otherwise."""

    def __init__(self, host: Host, *, history_points: int, rate_window_s: float, now_ts: float):
        self.host = host
        self.name = host.name
        self.status: HostStatus = "pending"
        self.reason = "connecting"
        self.detail = ""
        self.since_ts = now_ts
        self.connected = False
        self.connect_failed = False  # forces "down" until a sample proves otherwise
        self.last_seen_ts: float | None = None  # any line or reply from the host
        self.last_sample_ts: float | None = None  # arrival of the latest sample
        self.rtt_ms: float | None = None
        self.rtt_probes: deque[bool] = deque(maxlen=RTT_PROBES_KEPT)  # True: answered
        self.lag_ms: float | None = None  # sample arrival minus the host's sample ts
        self.hello: Hello | None = None
        self.sample: Sample | None = None
        self.samples_received = 0
        self.protocol_errors = 0
        self.consecutive_bad_lines = 0
        self.last_protocol_error = ""
        self.last_protocol_error_ts: float | None = None
        self.agent_error = ""
        self.events: deque[GpuEvent] = deque(maxlen=EVENTS_KEPT)
        self._event_keys: dict[tuple, None] = {}  # insertion-ordered, bounded
        self.history = HistoryRing(history_points)
        self.rate_window_s = rate_window_s
        self.ib_rates: dict[tuple[str, int], CounterWindow] = {}
        self.eth_rates: dict[str, CounterWindow] = {}
        self._views: tuple[tuple[int, str], list[GpuView]] | None = None
        self.extra_readings: dict[str, float] = {}
        """Readings from collector plugins (`node_power_w` from the BMC), set on the
        poller's loop; a reading the plugin can no longer take is removed."""
        self.extra_ts: float | None = None

    # --- facts derived for readers -------------------------------------------------
    @property
    def node_power_w(self) -> float | None:
        """The node's own power draw (BMC) while the host is fresh; None: not measured,
        and rack power falls back to the GPUs' sum plus the rack's per-host overhead."""
        if self.status != "fresh":
            return None
        return self.extra_readings.get("node_power_w")

    @property
    def probe_loss_pct(self) -> float | None:
        """Share of the recent SSH keepalive probes that went unanswered within the stale
        delay. SSH runs over TCP, which retransmits, so this is loss bad enough to stall
        the connection, not raw packet loss; None before enough probes were sent."""
        if len(self.rtt_probes) < RTT_PROBES_MIN:
            return None
        return 100.0 * self.rtt_probes.count(False) / len(self.rtt_probes)

    def record_rtt_probe(self, rtt_ms: float | None) -> None:
        self.rtt_probes.append(rtt_ms is not None)
        if rtt_ms is not None:
            self.rtt_ms = rtt_ms

    @property
    def mode(self) -> str:
        """How readings are collected: the agent's mode from its hello (nvml,
        nvidia-smi, none) or the configured mode until one arrives."""
        return self.hello.mode if self.hello is not None else self.host.mode

    @property
    def expected_gpus(self) -> int:
        return self.host.expected_gpus

    @property
    def gpu_count(self) -> int | None:
        if self.sample is None:
            return None
        if self.sample.gpu_count is not None:
            return self.sample.gpu_count
        return len(self.sample.gpus)

    def gpus(self) -> list[GpuView]:
        """Every GPU of the latest sample as Readings that honour the host's status."""
        if self.sample is None:
            return []
        key = (id(self.sample), self.status)
        if self._views is None or self._views[0] != key:
            as_of = self.sample.ts
            views = [gpu_view(g, self.status, as_of) for g in self.sample.gpus]
            self._views = (key, views)
        return self._views[1]

    # --- updates from the poller ---------------------------------------------------
    def _set_status(self, status: HostStatus, reason: str, detail: str, now_ts: float) -> bool:
        changed = status != self.status
        if changed:
            self.since_ts = now_ts
        self.status, self.reason, self.detail = status, reason, detail
        return changed

    def mark_connected(self, now_ts: float) -> None:
        self.connected = True
        self.connect_failed = False
        self.last_seen_ts = now_ts
        if self.status in ("pending", "down"):
            self.reason, self.detail = "waiting for first sample", ""

    def mark_connect_failed(self, reason: str, detail: str, now_ts: float) -> bool:
        """A failed connect is known unreachability: down at once, whatever the clock says."""
        self.connected = False
        self.connect_failed = True
        return self._set_status("down", reason, detail, now_ts)

    def mark_disconnected(self, reason: str, detail: str, now_ts: float) -> None:
        """The channel or connection ended; readings age out through tick()."""
        self.connected = False
        self.reason, self.detail = reason, detail

    def apply_hello(self, hello: Hello, now_ts: float) -> None:
        self.hello = hello
        self.last_seen_ts = now_ts
        self.agent_error = ""

    def apply_sample(self, sample: Sample, now_ts: float) -> bool:
        """Take a sample as the latest; returns whether the status changed."""
        self.sample = sample
        self.samples_received += 1
        self.last_seen_ts = self.last_sample_ts = now_ts
        self.lag_ms = max(0.0, (now_ts - sample.ts) * 1000.0)
        self.consecutive_bad_lines = 0
        self.connect_failed = False
        if sample.events:
            self._note_events(sample.events)
        values: dict[tuple[int, str], float | None] = {}
        for gpu in sample.gpus:
            for metric in HISTORY_METRICS:
                values[(gpu.index, metric)] = getattr(gpu, metric)
        self.history.append(sample.ts, values)
        for port in sample.ib:
            window = self.ib_rates.get((port.device, port.port))
            if window is None:
                window = self.ib_rates[(port.device, port.port)] = CounterWindow(self.rate_window_s)
            window.update(sample.ts, port.counters)
        for iface in sample.eth:
            window = self.eth_rates.get(iface.name)
            if window is None:
                window = self.eth_rates[iface.name] = CounterWindow(self.rate_window_s)
            window.update(sample.ts, iface.counters)
        reason, detail = self._fresh_reason(sample)
        return self._set_status("fresh", reason, detail, now_ts)

    def _note_events(self, events: list[GpuEvent]) -> None:
        """Keep events not seen before: on every (re)start the agent replays the kernel
        log back to boot, so the same XID arrives again after each reconnect."""
        for event in events:
            key = (event.kind, event.code, round(event.ts), event.pci_bus_id or event.gpu)
            if key in self._event_keys:
                continue
            self._event_keys[key] = None
            if len(self._event_keys) > 4 * EVENTS_KEPT:
                del self._event_keys[next(iter(self._event_keys))]
            self.events.append(event)

    def _fresh_reason(self, sample: Sample) -> tuple[str, str]:
        if sample.driver != "ok":
            return f"driver {sample.driver}", sample.driver_detail
        count = self.gpu_count
        if count is not None and count != self.expected_gpus:
            return "gpu count", f"{count} of {self.expected_gpus} GPUs"
        if self.agent_error:
            return "agent error", self.agent_error
        return "", ""

    def record_protocol_error(self, message: str, now_ts: float) -> None:
        self.protocol_errors += 1
        self.consecutive_bad_lines += 1
        self.last_protocol_error = message
        self.last_protocol_error_ts = now_ts
        self.last_seen_ts = now_ts
        self.reason, self.detail = "protocol error", message

    def record_agent_error(self, message: str, now_ts: float) -> None:
        self.agent_error = message
        self.last_seen_ts = now_ts
        self.reason, self.detail = "agent error", message

    def tick(self, now_ts: float, stale_after_s: float, down_after_s: float) -> bool:
        """Age the status by the console's clock; returns whether it changed. Reason and
        detail are rewritten only on a change, so a steady state costs a compare."""
        if self.connect_failed:
            status: HostStatus = "down"
        elif self.last_sample_ts is None:  # never had a sample: pending until down_after_s
            status = "down" if now_ts - self.since_ts >= down_after_s else self.status
        else:
            age_s = now_ts - self.last_sample_ts
            if age_s >= down_after_s:
                status = "down"
            elif age_s >= stale_after_s:
                status = "stale"
            else:
                status = self.status
        if status == self.status:
            return False
        reason, detail = self.reason, self.detail
        if (self.connected and reason != "protocol error") or not reason:
            # connected but silent: the channel's last word is not the explanation
            reason = "no sample"
            if self.last_sample_ts is not None:
                detail = f"last sample {now_ts - self.last_sample_ts:.0f} s ago"
        return self._set_status(status, reason, detail, now_ts)


class FleetState:
    """Every host's state plus a `generation` counter that moves on any change, so a
    reader can skip work when nothing happened."""

    def __init__(
        self,
        hosts: list[Host],
        *,
        stale_after_s: float = 10.0,
        down_after_s: float = 30.0,
        history_points: int = 300,
        rate_window_s: float = 30.0,
        now_ts: float = 0.0,
    ):
        self.stale_after_s = stale_after_s
        self.down_after_s = down_after_s
        self.generation = 0
        self.hosts: dict[str, HostState] = {
            h.name: HostState(
                h, history_points=history_points, rate_window_s=rate_window_s, now_ts=now_ts
            )
            for h in hosts
        }
        self._listeners: list[Listener] = []

    @classmethod
    def from_fleet(cls, fleet: Fleet, *, now_ts: float, rate_window_s: float = 30.0):
        polling = fleet.config.polling
        return cls(
            fleet.hosts,
            stale_after_s=polling.stale_after_s,
            down_after_s=polling.down_after_s,
            history_points=polling.history_points,
            rate_window_s=rate_window_s,
            now_ts=now_ts,
        )

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def changed(self, host: HostState, change: Change) -> None:
        """Bump the generation and tell listeners; a failing listener is logged, not
        allowed to stop collection."""
        self.generation += 1
        for listener in list(self._listeners):
            try:
                listener(host, change)
            except Exception:
                log.exception("state listener failed on %s", host.name)

    def tick(self, now_ts: float) -> None:
        for host in self.hosts.values():
            if host.tick(now_ts, self.stale_after_s, self.down_after_s):
                self.changed(host, "status")

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "fresh": 0, "stale": 0, "down": 0}
        for host in self.hosts.values():
            out[host.status] += 1
        return out
