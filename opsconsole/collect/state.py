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
from typing import TYPE_CHECKING, Literal

from opsconsole.collect.bounds import BoundsReport, check_inventory, check_sample
from opsconsole.collect.budget import HostBudget
from opsconsole.collect.gpu_ledger import ExtraGpus
from opsconsole.collect.identity import IdentityRegistry
from opsconsole.collect.loop_lag import LoopLagMonitor
from opsconsole.collect.rates import CounterWindow
from opsconsole.collect.readings import HISTORY_METRICS, GpuView, HistoryRing, gpu_view
from opsconsole.config import Fleet, Host
from opsconsole.wire import GpuEvent, GpuSample, Hello, Sample
from opsconsole.wire.text import clean_text

if TYPE_CHECKING:
    from opsconsole.collect.host_keys import KeyChange

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
RTT_BASELINE_PROBES = 240
"""The host's RTT baseline is the best of its last 240 probes (an hour at 15 s)."""
OVER_BUDGET_REPORT_S = 60.0
"""A host that went over its budget keeps saying so for a minute."""
DETAIL_MAX = 300


class HostState:
    """One host as last seen. Every `*_ts` is UTC epoch seconds on the console's clock
    unless it says otherwise."""

    def __init__(
        self,
        host: Host,
        *,
        history_points: int,
        rate_window_s: float,
        now_ts: float,
        identity: IdentityRegistry | None = None,
    ):
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
        self.rtt_history: deque[float] = deque(maxlen=RTT_BASELINE_PROBES)
        self.rtt_probes_skipped = 0  # probes timed while the console itself was starved
        self.rtt_console_lag_ms: float | None = None
        self.lag_ms: float | None = None  # sample arrival minus the host's sample ts
        self.clock_skew_s: float | None = None
        """The host's claimed sample time minus the console's receive time: samples are
        stamped on arrival, the host's own time is only kept for this."""
        self.claimed_ts: float | None = None  # the latest sample's time as the host sent it
        self.invalid_readings = 0  # readings refused by opsconsole.collect.bounds
        self.last_invalid = ""
        self.last_invalid_ts: float | None = None
        self.counter_resets = 0
        self.last_counter_reset = ""
        self.accepted_gpus = host.expected_gpus
        """GPUs counted in fleet totals; more only after an operator accepts them."""
        self.extra_gpus = 0  # GPUs reported beyond accepted_gpus, kept out of totals
        self.reported_gpus = 0  # GPUs the host last reported, extras included
        self.extra_gpu_uuids: tuple[str, ...] = ()  # what an operator is asked to accept
        self.identity = identity if identity is not None else IdentityRegistry([host])
        self.identity_problem = ""  # the hello's hostname against the config
        self.budget: HostBudget | None = None  # set by the host's session
        self.hello: Hello | None = None
        self.sample: Sample | None = None
        self.samples_received = 0
        self.protocol_errors = 0
        self.consecutive_bad_lines = 0
        self.last_protocol_error = ""
        self.last_protocol_error_ts: float | None = None
        self.agent_error = ""
        self.key_change: KeyChange | None = None
        """A refused host key waiting for an operator (from the ledger, so it survives
        restarts and does not clear when the next attempt fails for another reason)."""
        self.events: deque[GpuEvent] = deque(maxlen=EVENTS_KEPT)
        self._event_keys: dict[tuple[object, ...], None] = {}  # insertion-ordered, bounded
        self._events_replayed = False  # the first sample after a hello replays the log
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
        """A keepalive round trip in ms with the console's own lateness taken out, or
        None when it went unanswered (see `skip_rtt_probe` for a console too busy)."""
        self.rtt_probes.append(rtt_ms is not None)
        if rtt_ms is not None:
            self.rtt_ms = rtt_ms
            self.rtt_history.append(rtt_ms)

    def skip_rtt_probe(self, console_lag_ms: float, raw_ms: float | None = None) -> None:
        """A probe timed while the console itself was late: neither a round trip nor a
        loss, only counted. Its raw time still bounds the round trip from above, so it
        lowers a shown rtt that is higher (never raises one): without that, a console
        busy for minutes kept showing a slow path long after it had healed."""
        self.rtt_probes_skipped += 1
        self.rtt_console_lag_ms = console_lag_ms
        if raw_ms is not None and self.rtt_ms is not None and raw_ms < self.rtt_ms:
            self.rtt_ms = raw_ms

    @property
    def rtt_baseline_ms(self) -> float | None:
        """The best round trip of the recent probes: what this host's path can do."""
        return min(self.rtt_history) if len(self.rtt_history) >= RTT_PROBES_MIN else None

    @property
    def uuid_conflicts(self) -> dict[str, list[str]]:
        """GPU UUIDs this host claims that other hosts claim too, with those hosts."""
        return self.identity.conflicts(self.name)

    @property
    def over_budget(self) -> str:
        """Why the host is over its line or byte budget lately, or ""."""
        budget = self.budget
        if budget is None or not budget.over_recently(OVER_BUDGET_REPORT_S):
            return ""
        return budget.describe()

    def distrust_notes(self) -> list[str]:
        """What the console refused or doubts of what this host sent, one short phrase
        each, for the host view; empty for an honest host."""
        notes = []
        if self.identity_problem:
            notes.append(f"identity: {self.identity_problem}")
        for uuid, others in list(self.uuid_conflicts.items())[:2]:
            notes.append(f"{uuid} also on {', '.join(others)}")
        if self.extra_gpus:
            notes.append(f"{self.extra_gpus} extra GPUs kept out of totals")
        if self.invalid_readings:
            notes.append(f"{self.invalid_readings} invalid readings (last: {self.last_invalid})")
        budget = self.budget
        if budget is not None and (
            budget.dropped_lines or budget.over_bytes or budget.dropped_events
        ):
            notes.append(f"over budget: {budget.describe()}")
        skew = self.clock_skew_s
        if skew is not None and abs(skew) >= 1.0:
            notes.append(f"clock {skew:+.0f} s")
        if self.counter_resets:
            notes.append(f"{self.counter_resets} counter resets (last: {self.last_counter_reset})")
        return notes

    def accept_extra_gpus(self) -> int:
        """An operator accepts the GPUs the host reports beyond its expected count (a
        host really upgraded): from the next sample they count in totals. Returns the
        new accepted count."""
        self.accepted_gpus += self.extra_gpus
        self.extra_gpus = 0
        return self.accepted_gpus

    def set_accepted_gpus(self, count: int) -> bool:
        """An acceptance read back from the GPU ledger (never below the configured
        count); returns whether it changed anything."""
        count = max(count, self.host.expected_gpus)
        if count == self.accepted_gpus:
            return False
        self.accepted_gpus = count
        self.extra_gpus = max(0, self.reported_gpus - count)
        if not self.extra_gpus:
            self.extra_gpu_uuids = ()
        return True

    def extra_gpu_report(self, now_ts: float) -> ExtraGpus | None:
        """What the GPU ledger should hold for this host: None while within its count."""
        if not self.extra_gpus:
            return None
        return ExtraGpus(
            self.name,
            self.host.expected_gpus,
            self.accepted_gpus,
            self.reported_gpus,
            self.extra_gpu_uuids,
            now_ts,
        )

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

    @property
    def lost_gpu_indexes(self) -> list[int]:
        """GPUs the driver still lists but that fell off the bus."""
        if self.sample is None:
            return []
        return [gpu.index for gpu in self.sample.gpus if gpu.state == "lost"]

    @property
    def missing_gpu_indexes(self) -> list[int]:
        """Expected GPU indexes the driver does not list at all."""
        if self.sample is None or self.sample.driver != "ok":
            return []
        listed = {gpu.index for gpu in self.sample.gpus}
        return [index for index in range(self.expected_gpus) if index not in listed]

    @property
    def answering_gpus(self) -> int | None:
        """GPUs listed and not lost: what GPU-count-vs-expected compares."""
        count = self.gpu_count
        return None if count is None else max(0, count - len(self.lost_gpu_indexes))

    def gpu_count_detail(self) -> str:
        """ "6 of 8 GPUs (lost: 3; missing: 7)", or "" when the count is as expected."""
        count = self.answering_gpus
        if count is None or count == self.expected_gpus:
            return ""
        which = []
        if self.lost_gpu_indexes:
            which.append("lost: " + ", ".join(map(str, self.lost_gpu_indexes)))
        if self.missing_gpu_indexes:
            which.append("missing: " + ", ".join(map(str, self.missing_gpu_indexes)))
        return f"{count} of {self.expected_gpus} GPUs" + (f" ({'; '.join(which)})" if which else "")

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
        self.status, self.reason, self.detail = status, reason, clean_text(detail, DETAIL_MAX)
        return changed

    def _current_reason(self, reason: str, detail: str) -> tuple[str, str]:
        """A host whose last words were refused lines is down for a protocol error, not
        for the timeout or the dropped channel that followed them."""
        if (
            reason not in ("", "protocol error")
            and self.last_protocol_error_ts is not None
            and (self.last_sample_ts is None or self.last_protocol_error_ts > self.last_sample_ts)
        ):
            then = f"{reason}: {detail}" if detail else reason
            return "protocol error", f"{self.last_protocol_error} (then {then})"
        return reason, detail

    def mark_connected(self, now_ts: float) -> None:
        self.connected = True
        self.connect_failed = False
        self.last_seen_ts = now_ts
        if self.status in ("pending", "down") and not (
            self.reason == "over budget" and self.over_budget
        ):  # a flooder reconnected is still a flooder until it sends a sample
            # refused lines since the last sample stay the reason until a sample comes
            self.reason, self.detail = self._current_reason("waiting for first sample", "")

    def mark_connect_failed(self, reason: str, detail: str, now_ts: float) -> bool:
        """A failed connect is known unreachability: down at once, whatever the clock says."""
        self.connected = False
        self.connect_failed = True
        if reason in ("timeout", "connection lost", "agent error"):
            reason, detail = self._current_reason(reason, detail)
        return self._set_status("down", reason, detail, now_ts)

    def mark_disconnected(self, reason: str, detail: str, now_ts: float) -> None:
        """The channel or connection ended; readings age out through tick()."""
        self.connected = False
        reason, detail = self._current_reason(reason, detail)
        self.reason, self.detail = reason, clean_text(detail, DETAIL_MAX)

    def apply_hello(self, hello: Hello, now_ts: float) -> None:
        """Take a hello: stamped with the console's time, inventory bounded, GPUs beyond
        the accepted count kept aside, hostname and UUIDs checked against the fleet."""
        self.clock_skew_s = hello.ts - now_ts
        hello.ts = now_ts
        check_inventory(hello.gpus)
        self.reported_gpus = len(hello.gpus)
        if len(hello.gpus) > self.accepted_gpus:
            self.extra_gpus = len(hello.gpus) - self.accepted_gpus
            ordered = sorted(hello.gpus, key=lambda g: g.index)
            hello.gpus = ordered[: self.accepted_gpus]
            self.extra_gpu_uuids = tuple(g.uuid or "?" for g in ordered[self.accepted_gpus :])
        self.hello = hello
        self._events_replayed = True
        self.last_seen_ts = now_ts
        self.agent_error = ""
        self.identity_problem = self.identity.hostname_problem(self.host, hello.host.hostname)
        sample = self.sample
        self._claim_uuids(tuple(g.uuid for g in sample.gpus) if sample is not None else ())

    def _claim_uuids(self, sample_uuids: tuple[str | None, ...]) -> None:
        hello_uuids = [g.uuid for g in self.hello.gpus] if self.hello is not None else []
        self.identity.claim(self.name, [*hello_uuids, *sample_uuids])

    def apply_sample(self, sample: Sample, now_ts: float) -> bool:
        """Take a sample as the latest; returns whether the status changed.

        The sample is stamped with `now_ts` (the console's receive time; the host's claim
        only gives the clock skew), GPUs beyond the accepted count are kept aside, and
        every reading is bounded (`opsconsole.collect.bounds`) before anything reads it."""
        self.claimed_ts = sample.ts
        self.clock_skew_s = sample.ts - now_ts
        self.lag_ms = max(0.0, (now_ts - sample.ts) * 1000.0)
        sample.ts = now_ts
        for event in sample.events:  # the kernel log's times, but never in the future
            if event.ts > now_ts:
                event.ts = now_ts
        self._keep_accepted_gpus(sample)
        report = check_sample(
            sample, self.hello.gpus if self.hello is not None else None, self.sample
        )
        if report.invalid or report.resets:
            self._note_bounds(report, now_ts)
        uuids = tuple(g.uuid for g in sample.gpus)
        previous = self.sample
        if previous is None or uuids != tuple(g.uuid for g in previous.gpus):
            self._claim_uuids(uuids)
        self.sample = sample
        self.samples_received += 1
        self.last_seen_ts = self.last_sample_ts = now_ts
        self.consecutive_bad_lines = 0
        self.connect_failed = False
        if sample.events:  # replays and events over budget leave the sample
            sample.events = self._note_events(sample.events, replay=self._events_replayed)
        self._events_replayed = False
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

    def _keep_accepted_gpus(self, sample: Sample) -> None:
        """GPUs beyond the accepted count (and repeated indices) leave the sample: a host
        reporting 120 GPUs must not put phantom power into its rack's sum."""
        gpus = sample.gpus
        reported = max(len(gpus), sample.gpu_count or 0)
        self.reported_gpus = reported
        self.extra_gpus = max(0, reported - self.accepted_gpus)
        if not self.extra_gpus:
            self.extra_gpu_uuids = ()
        if len(gpus) <= self.accepted_gpus and len({g.index for g in gpus}) == len(gpus):
            return
        seen: set[int] = set()
        kept: list[GpuSample] = []
        extra: list[GpuSample] = []
        for gpu in sorted(gpus, key=lambda g: g.index):
            if gpu.index in seen:
                continue
            seen.add(gpu.index)
            (kept if len(kept) < self.accepted_gpus else extra).append(gpu)
        sample.gpus = kept
        if extra:
            self.extra_gpu_uuids = tuple(g.uuid or "?" for g in extra)

    def _note_bounds(self, report: BoundsReport, now_ts: float) -> None:
        if report.invalid:
            self.invalid_readings += report.invalid
            self.last_invalid = "; ".join(report.lines)
            self.last_invalid_ts = now_ts
        if report.resets:
            self.counter_resets += report.resets
            self.last_counter_reset = report.first

    def _note_events(self, events: list[GpuEvent], *, replay: bool = False) -> list[GpuEvent]:
        """Keep events not seen before: on every (re)start the agent replays the kernel
        log back to boot, so the same XID arrives again after each reconnect. New ones
        beyond the host's event budget are dropped (the newest kept) and counted; returns
        those kept, which alone go on to the store."""
        fresh: dict[tuple[object, ...], GpuEvent] = {}
        for event in events:
            key: tuple[object, ...] = (
                event.kind,
                event.code,
                round(event.ts),
                event.pci_bus_id or event.gpu,
            )
            if key not in self._event_keys:
                fresh.setdefault(key, event)
        keys = list(fresh)
        if self.budget is not None and keys:
            admitted = self.budget.admit_events(len(keys), replay=replay)
            if admitted < len(keys):
                newest = set(sorted(keys, key=lambda k: fresh[k].ts)[len(keys) - admitted :])
                keys = [k for k in keys if k in newest]  # in the order the host sent them
        for key in keys:
            self._event_keys[key] = None
            if len(self._event_keys) > 4 * EVENTS_KEPT:
                del self._event_keys[next(iter(self._event_keys))]
            self.events.append(fresh[key])
        return [fresh[k] for k in keys]

    def _fresh_reason(self, sample: Sample) -> tuple[str, str]:
        if self.identity_problem:
            return "identity", self.identity_problem
        conflicts = self.uuid_conflicts
        if conflicts:
            uuid, others = next(iter(conflicts.items()))
            return "identity", f"GPU {uuid} also reported by {', '.join(others)}"
        if sample.driver != "ok":
            return f"driver {sample.driver}", sample.driver_detail
        count_detail = self.gpu_count_detail()
        if count_detail:
            if self.extra_gpus:
                count_detail += f"; {self.extra_gpus} kept out of totals until accepted"
            return "gpu count", count_detail
        invalid_ts, sample_ts = self.last_invalid_ts, self.last_sample_ts
        if invalid_ts is not None and sample_ts is not None and invalid_ts >= sample_ts:
            return "invalid readings", self.last_invalid
        over = self.over_budget
        if over:
            return "over budget", over
        if self.agent_error:
            return "agent error", self.agent_error
        return "", ""

    def record_protocol_error(self, message: str, now_ts: float) -> None:
        self.protocol_errors += 1
        self.consecutive_bad_lines += 1
        message = clean_text(message, DETAIL_MAX)
        self.last_protocol_error = message
        self.last_protocol_error_ts = now_ts
        self.last_seen_ts = now_ts
        self.reason, self.detail = "protocol error", message

    def record_agent_error(self, message: str, now_ts: float) -> None:
        message = clean_text(message, DETAIL_MAX)
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
        self.identity = IdentityRegistry(hosts)
        self.loop_lag: LoopLagMonitor | None = None  # set by the poller that runs the loop
        self.hosts: dict[str, HostState] = {
            h.name: HostState(
                h,
                history_points=history_points,
                rate_window_s=rate_window_s,
                now_ts=now_ts,
                identity=self.identity,
            )
            for h in hosts
        }
        self._listeners: list[Listener] = []

    @classmethod
    def from_fleet(cls, fleet: Fleet, *, now_ts: float, rate_window_s: float = 30.0) -> FleetState:
        polling = fleet.config.polling
        return cls(
            fleet.hosts,
            stale_after_s=polling.stale_after_s,
            down_after_s=polling.down_after_s,
            history_points=polling.history_points,
            rate_window_s=rate_window_s,
            now_ts=now_ts,
        )

    @property
    def console_lag_ms(self) -> float | None:
        """Worst lateness of the console's own event loop lately (see loop_lag)."""
        return self.loop_lag.recent_max_ms() if self.loop_lag is not None else None

    @property
    def console_starved(self) -> bool:
        """The console's own machine or loop is too busy to time round trips: the header
        says so, and no host is blamed for the wait."""
        return self.loop_lag is not None and self.loop_lag.starved

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
        """Age every host. The console's own recent lateness is added to both delays: a
        sample that sat unread while this loop waited for a core is not the host's
        silence (at load 20-30 on 2 cores healthy hosts flickered stale)."""
        grace_s = (self.console_lag_ms or 0.0) / 1000.0
        stale_after_s, down_after_s = self.stale_after_s + grace_s, self.down_after_s + grace_s
        for host in self.hosts.values():
            if host.tick(now_ts, stale_after_s, down_after_s):
                self.changed(host, "status")

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "fresh": 0, "stale": 0, "down": 0}
        for host in self.hosts.values():
            out[host.status] += 1
        return out
