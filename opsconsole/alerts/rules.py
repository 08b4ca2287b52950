"""Built-in alert rules as data, and `evaluate()`: live state in, firing conditions out.

Why rules as data: an operator tunes a threshold or a duration in `[alerts.rules.NAME]`
(`opsconsole.alerts.settings`) without touching code, and a test can shorten a `for_s` to
zero. The checks themselves stay in Python, one small function per family, because each
reads a different part of the live state.

Rules about leases (ending soon, leased GPU idle) need what the live state does not hold;
they read an `AlertContext` (`opsconsole.alerts.impact`) and simply do not fire without one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypedDict, Unpack

import hostlist

from opsconsole.alerts.conditions import Condition, Kind, PendingTracker
from opsconsole.alerts.xid_catalogue import xid_info
from opsconsole.collect.reasons import HOST_KEY_CHANGED, RELAY_DOWN
from opsconsole.collect.state import HostState
from opsconsole.config import Rack, Severity
from opsconsole.counters import IB_ERROR_COUNTERS

if TYPE_CHECKING:
    from opsconsole.alerts.impact import AlertContext

# NVML clock event reason bits (nvmlClocksEventReason*).
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
THERMAL_EVENTS = HW_SLOWDOWN | SW_THERMAL | HW_THERMAL
POWER_EVENTS = SW_POWER_CAP | HW_POWER_BRAKE
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    summary: str
    threshold: float | None = None
    """None: the rule takes no threshold (a fact such as "remap failed")."""
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    window_s: float | None = None
    """How far the rule looks ahead or back (leases); None: it takes no window."""
    unit: str = ""
    """The threshold's unit, for the config's documentation and the summary."""


class RuleChanges(TypedDict, total=False):
    """What a config override (or a test) may change in a built-in rule."""

    severity: Severity
    threshold: float | None
    for_s: float
    keep_firing_for_s: float
    window_s: float | None


BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("gpu_temp_high", Severity.WARNING, "GPU temperature high", 85.0, 60.0, 120.0, unit="°C"),
    Rule(
        "gpu_thermal_clock_events", Severity.WARNING, "GPU clocks cut for heat", None, 300.0, 120.0,
    ),
    Rule(
        "gpu_power_cap_clock_events", Severity.INFO,
        "GPU held at its power cap", None, 600.0, 120.0,
    ),
    Rule(
        "gpu_ecc_uncorrected", Severity.CRITICAL,
        "uncorrected volatile ECC errors", 0.0, unit="errors",
    ),
    Rule("gpu_row_remap_pending", Severity.WARNING, "row remap pending (GPU reset needed)"),
    Rule("gpu_row_remap_failed", Severity.CRITICAL, "row remap failed (return the GPU)"),
    Rule("gpu_nvlink_down", Severity.CRITICAL, "NVLink link down", None, 30.0, 60.0),
    Rule("gpu_missing", Severity.CRITICAL, "GPUs missing", None, 30.0, 60.0),
    Rule("gpu_lost", Severity.CRITICAL, "GPU lost"),
    Rule("ib_port_down", Severity.CRITICAL, "InfiniBand port not ACTIVE", None, 30.0, 60.0),
    Rule(
        "ib_rate_low", Severity.WARNING,
        "InfiniBand port below its expected rate", None, 60.0, 60.0,
    ),
    Rule("host_stale", Severity.WARNING, "host stale"),
    Rule("host_down", Severity.CRITICAL, "host down"),
    Rule("host_key_changed", Severity.CRITICAL, "SSH host key changed (security)"),
    Rule("identity_mismatch", Severity.CRITICAL, "host claims another identity (security)"),
    Rule("uuid_conflict", Severity.CRITICAL, "GPU UUIDs also reported by another host (security)"),
    Rule("extra_gpus", Severity.WARNING, "more GPUs than expected (kept out of totals)"),
    Rule("clock_skew", Severity.WARNING, "host clock off", 10.0, 60.0, 120.0, unit="s"),
    Rule("host_over_budget", Severity.WARNING, "host sends more than its budget", None, 0.0, 120.0),
    Rule("xid_flood", Severity.WARNING, "more XIDs than are alerted one by one", None, 0.0, 600.0),
    Rule(
        "gpu_driver_unresponsive", Severity.CRITICAL, "GPU driver not answering", None, 30.0, 60.0,
    ),
    Rule(
        "ib_errors_rising", Severity.WARNING, "InfiniBand error counters rising", 1.0, 120.0, 300.0,
        unit="errors/s",
    ),
    Rule("net_rtt_high", Severity.WARNING, "SSH round trip high", 50.0, 60.0, 120.0, unit="ms"),
    Rule(
        "net_loss_high", Severity.WARNING, "SSH keepalive probes lost", 20.0, 0.0, 120.0,
        unit="% of the last 20 probes",
    ),
    Rule(
        "rack_power_high", Severity.WARNING, "rack power near its budget", 90.0, 60.0, 300.0,
        unit="% of budget",
    ),
    Rule("lease_ending_soon", Severity.INFO, "lease ending soon", window_s=24 * HOUR_S),
    Rule(
        "gpu_leased_idle", Severity.INFO, "leased GPU idle", 5.0, 0.0, 300.0, window_s=4 * HOUR_S,
        unit="% utilisation",
    ),
)  # fmt: skip
"""`for_s`/`keep_firing_for_s` are zero where the fact is already settled when seen: the
host status has its own stale/down delays, ECC and remap counters do not flap, and the
lease rules read facts (an end time, hours of rollups) that do not flicker."""

XID_ALERTS_PER_HOST = 32
"""At most this many XID event alerts per host per evaluation; beyond it, `xid_flood`."""

XID_RULE_PREFIX = "xid_"
"""XID event alerts are named by code class: xid_application, xid_driver, xid_hardware,
xid_unknown (from the catalogue's likely cause)."""


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and durations, with defaults. `rules` by name (a rule left out never
    fires); `xid_ignore` lists XID codes that never alert (a fleet whose users' jobs fault
    all day may ignore 13 and 43); `xid_lookback_s` ignores XIDs older than this (the agent
    replays the log to boot); `xid_application_severity` is the severity of XIDs the
    catalogue blames on the application. `racks` carries the power budgets
    `rack_power_high` checks (from the fleet; a rack without a budget never fires).
    Built from the config by `opsconsole.alerts.settings`."""

    rules: Mapping[str, Rule] = field(default_factory=lambda: {r.name: r for r in BUILTIN_RULES})
    xid_ignore: frozenset[int] = frozenset()
    xid_lookback_s: float = 24 * HOUR_S
    xid_application_severity: Severity = Severity.INFO
    racks: Mapping[str, Rack] = field(default_factory=dict)

    def with_rule(self, name: str, **changes: Unpack[RuleChanges]) -> AlertSettings:
        """A copy with one rule changed, e.g. `with_rule("gpu_temp_high", threshold=80)`."""
        rules = dict(self.rules)
        rules[name] = dataclasses.replace(rules[name], **changes)
        return dataclasses.replace(self, rules=rules)


class StateView(Protocol):
    """What evaluate() reads: FleetState satisfies it."""

    @property
    def hosts(self) -> Mapping[str, HostState]: ...


def evaluate(
    state_view: StateView,
    now_ts: float,
    pending: PendingTracker,
    settings: AlertSettings | None = None,
    context: AlertContext | None = None,
    extra: Iterable[Condition] = (),
) -> list[Condition]:
    """The conditions firing at `now_ts`. Pure apart from `pending`, which remembers when
    each condition started so `for_s` and `keep_firing_for_s` can be honoured. `context`
    brings leases and idle GPUs from the store; without it the lease rules do not fire.
    `extra` are raw conditions from elsewhere (rule plugins), timed by the same tracker."""
    settings = settings or AlertSettings()
    raw: list[Condition] = list(extra)
    hold: set[str] = set()
    racks = _RackPower(settings)
    for host in state_view.hosts.values():
        raw.extend(_host_conditions(host, settings))
        if host.status == "fresh" and host.sample is not None:
            raw.extend(_sample_conditions(host, settings))
            raw.extend(_network_conditions(host, settings))
            raw.extend(_xid_conditions(host, now_ts, settings))
            if context is not None:
                raw.extend(_idle_conditions(host, settings, context))
        else:
            hold.add(host.name)  # readings unknown: neither start nor clear them
        racks.add(host)
    raw.extend(racks.conditions())
    if context is not None:
        raw.extend(_lease_conditions(context, now_ts, settings))
    return pending.update(raw, now_ts, frozenset(hold))


class _Emit:
    """Builds Conditions for one host from rule names, filling the host's labels."""

    def __init__(self, host: HostState, settings: AlertSettings):
        self.base = {"site": host.host.site, "rack": host.host.rack, "host": host.name}
        self.host = host.name
        self.rules = settings.rules

    def __call__(
        self, rule_name: str, detail: str, *, from_readings: bool = True, **labels: object
    ) -> Condition | None:
        rule = self.rules.get(rule_name)
        if rule is None:
            return None  # a rule disabled in the settings
        all_labels = self.base | {k: str(v) for k, v in labels.items()}
        where = self.host + (f" GPU {labels['gpu']}" if "gpu" in labels else "")
        where += f" {labels['port']}" if "port" in labels else ""
        return Condition(
            rule=rule.name,
            severity=rule.severity,
            kind=Kind.CONDITION,
            labels=all_labels,
            summary=f"{where}: {rule.summary}" + (f" ({detail})" if detail else ""),
            for_s=rule.for_s,
            keep_firing_for_s=rule.keep_firing_for_s,
            from_readings=from_readings,
        )


def _host_conditions(host: HostState, settings: AlertSettings) -> Iterator[Condition]:
    emit = _Emit(host, settings)
    reason = f"{host.reason}: {host.detail}" if host.detail else host.reason
    found: list[Condition | None] = []
    if host.reason == RELAY_DOWN:
        pass  # the relay's own row is down and alerts once for all the hosts behind it
    elif host.status == "stale":
        found.append(emit("host_stale", reason, reason=reason, from_readings=False))
    elif host.status == "down":
        found.append(emit("host_down", reason, reason=reason, from_readings=False))
    if host.key_change is not None:
        # Firing until an operator decides, whatever the later attempts say.
        change = host.key_change
        detail = (
            f"{change.describe()}; check the host, then K on its view or "
            f"`opsconsole hosts trust-key {host.name}` (or `reject-key`)"
        )
        found.append(emit("host_key_changed", detail, from_readings=False))
    elif host.reason == HOST_KEY_CHANGED:
        found.append(emit("host_key_changed", host.detail, from_readings=False))
    # Identity comes from the hello and stands while the host is stale or down.
    if host.identity_problem:
        found.append(emit("identity_mismatch", host.identity_problem, from_readings=False))
    conflicts = host.uuid_conflicts
    if conflicts:
        others = sorted({other for hosts in conflicts.values() for other in hosts})
        uuids = sorted(conflicts)
        detail = f"{len(uuids)} also on {', '.join(others)}: {', '.join(uuids[:4])}"
        detail += f" and {len(uuids) - 4} more" if len(uuids) > 4 else ""
        found.append(emit("uuid_conflict", detail, from_readings=False))
    over = host.over_budget
    if over:
        found.append(emit("host_over_budget", over, from_readings=False))
    yield from (c for c in found if c is not None)


def _sample_conditions(host: HostState, settings: AlertSettings) -> Iterator[Condition]:
    emit = _Emit(host, settings)
    sample = host.sample
    assert sample is not None
    rules = settings.rules
    found: list[Condition | None] = []
    if sample.driver != "ok" and host.expected_gpus > 0:
        detail = sample.driver + (f": {sample.driver_detail}" if sample.driver_detail else "")
        found.append(emit("gpu_driver_unresponsive", detail, reason=sample.driver))
    count = host.gpu_count
    if count is not None and count < host.expected_gpus:
        missing = host.missing_gpu_indexes
        which = f" (missing: {', '.join(map(str, missing))})" if missing else ""
        found.append(emit("gpu_missing", f"{count} of {host.expected_gpus} GPUs visible{which}"))
    if host.extra_gpus:
        detail = f"{count} reported, {host.accepted_gpus} accepted; {host.extra_gpus} kept out"
        found.append(emit("extra_gpus", detail + " of totals until an operator accepts them"))
    skew_rule = rules.get("clock_skew")
    skew_limit = skew_rule.threshold if skew_rule else None
    skew = host.clock_skew_s
    if skew_limit is not None and skew is not None and abs(skew) > skew_limit:
        ahead = "ahead of" if skew > 0 else "behind"
        found.append(emit("clock_skew", f"{abs(skew):.0f} s {ahead} the console"))
    temp_rule = rules.get("gpu_temp_high")
    ecc_rule = rules.get("gpu_ecc_uncorrected")
    for gpu in sample.gpus:
        i = gpu.index
        if gpu.state == "lost":
            found.append(emit("gpu_lost", "fell off or stopped answering NVML", gpu=i))
        limit = temp_rule.threshold if temp_rule else None
        if limit is not None and gpu.temp_c is not None and gpu.temp_c >= limit:
            found.append(emit("gpu_temp_high", f"{gpu.temp_c:.0f} °C ≥ {limit:.0f} °C", gpu=i))
        reasons = gpu.clock_event_reasons or 0
        if reasons & THERMAL_EVENTS:
            found.append(emit("gpu_thermal_clock_events", f"reasons 0x{reasons:x}", gpu=i))
        if reasons & POWER_EVENTS:
            found.append(emit("gpu_power_cap_clock_events", f"reasons 0x{reasons:x}", gpu=i))
        ecc_limit = (ecc_rule.threshold or 0.0) if ecc_rule else 0.0
        ecc = gpu.ecc_volatile_uncorrected
        if ecc is not None and ecc > ecc_limit:
            found.append(emit("gpu_ecc_uncorrected", f"{ecc} since the last reset", gpu=i))
        if gpu.remap_pending:
            found.append(emit("gpu_row_remap_pending", "", gpu=i))
        if gpu.remap_failed:
            found.append(emit("gpu_row_remap_failed", "", gpu=i))
        for link, up in enumerate(gpu.nvlink.up):
            if up is False:  # None is "not read", never "down"
                found.append(emit("gpu_nvlink_down", "", gpu=i, port=f"nvlink{link}"))
    expected_rate = host.host.expected_ib_rate_gbps
    for port in sample.ib:
        name = f"{port.device}/{port.port}"
        if port.state is not None and port.state.upper() != "ACTIVE":
            detail = port.state + (f", {port.phys_state}" if port.phys_state else "")
            found.append(emit("ib_port_down", detail, port=name))
        elif (
            expected_rate is not None
            and port.rate_gbps is not None
            and port.rate_gbps < expected_rate
        ):
            detail = f"{port.rate_gbps:g} of {expected_rate:g} Gb/s"
            found.append(emit("ib_rate_low", detail, port=name))
    yield from (c for c in found if c is not None)


def _network_conditions(host: HostState, settings: AlertSettings) -> Iterator[Condition]:
    """The SSH round trip, and IB error counters as per-second rates over the state's
    window (a raw counter only ever grows; its rate says whether it is growing now)."""
    emit = _Emit(host, settings)
    rtt_rule = settings.rules.get("net_rtt_high")
    limit = rtt_rule.threshold if rtt_rule else None
    if limit is not None and host.rtt_ms is not None:
        # Above the host's own baseline (the best of its recent probes) by the threshold:
        # a far site's 150 ms path is its normal, a loopback host's 60 ms is not.
        baseline = host.rtt_baseline_ms
        floor = (baseline or 0.0) + limit
        if host.rtt_ms > floor:
            detail = f"{host.rtt_ms:.1f} ms > {limit:g} ms"
            if baseline:
                detail += f" above its {baseline:.1f} ms baseline"
            cond = emit("net_rtt_high", detail)
            if cond is not None:
                yield cond
    loss_rule = settings.rules.get("net_loss_high")
    limit = loss_rule.threshold if loss_rule else None
    loss = host.probe_loss_pct
    if limit is not None and loss is not None and loss > limit:
        cond = emit("net_loss_high", f"{loss:.0f} % of probes unanswered > {limit:g} %")
        if cond is not None:
            yield cond
    ib_rule = settings.rules.get("ib_errors_rising")
    limit = ib_rule.threshold if ib_rule else None
    if limit is None or host.sample is None:
        return
    for port in host.sample.ib:
        window = host.ib_rates.get((port.device, port.port))
        rates = window.rates_of(IB_ERROR_COUNTERS) if window is not None else {}
        moving = {n: r for n, r in rates.items() if r}
        total = sum(moving.values())
        if total > limit:
            assert window is not None
            worst = sorted(moving.items(), key=lambda kv: -kv[1])[:2]
            detail = f"{total:.2g} errors/s over {window.span_s:.0f} s: " + ", ".join(
                f"{n} {r:.2g}/s" for n, r in worst
            )
            cond = emit("ib_errors_rising", detail, port=f"{port.device}/{port.port}")
            if cond is not None:
                yield cond


def _xid_conditions(host: HostState, now_ts: float, settings: AlertSettings) -> Iterator[Condition]:
    """Each XID its own event alert. The event label is the same identity the live state
    deduplicates replays by, so a replayed XID maps to the alert it already has. Each
    carries its running count for that GPU and code in the look-back window (`count`), so
    "the third XID 79 on this GPU today" is in the alert, never folded into one gauge."""
    emit = _Emit(host, settings)
    counts: dict[tuple[str | int | None, int], int] = {}
    found = []
    for event in host.events:
        if event.kind != "xid" or event.code in settings.xid_ignore:
            continue
        if now_ts - event.ts > settings.xid_lookback_s:
            continue
        # By bus id where known: it names the GPU even when its index was not known.
        key = (event.pci_bus_id or event.gpu, event.code)
        nth = counts[key] = counts.get(key, 0) + 1
        found.append((event, nth))
    # A tenant has root on the node and can write the kernel log: a flood of XIDs must
    # not become a flood of alerts. The newest are alerted one by one, the rest as one.
    if len(found) > XID_ALERTS_PER_HOST:
        flood = emit(
            "xid_flood",
            f"{len(found)} XIDs in {settings.xid_lookback_s / HOUR_S:g} h; the newest"
            f" {XID_ALERTS_PER_HOST} are alerted one by one",
        )
        if flood is not None:
            yield flood
        found = found[-XID_ALERTS_PER_HOST:]
    for event, nth in found:
        info = xid_info(event.code)
        labels = dict(emit.base, code=str(event.code), cause=info.cause, count=str(nth))
        where = host.name
        if event.gpu is not None:
            labels["gpu"] = str(event.gpu)
            where += f" GPU {event.gpu}"
        labels["event"] = f"{event.code}@{round(event.ts)}@{event.pci_bus_id or event.gpu}"
        severity = (
            settings.xid_application_severity if info.cause == "application" else info.severity
        )
        yield Condition(
            rule=XID_RULE_PREFIX + info.cause,
            severity=severity,
            kind=Kind.EVENT,
            labels=labels,
            summary=f"{where}: XID {event.code} {info.meaning}"
            + (
                f" (#{nth} on this GPU in {settings.xid_lookback_s / HOUR_S:g} h)"
                if nth > 1
                else ""
            )
            + f"; {info.action}",
        )


def _idle_conditions(
    host: HostState, settings: AlertSettings, context: AlertContext
) -> Iterator[Condition]:
    """Leased GPUs the store's rollups show idle for the rule's window. The live reading
    has the last word: a GPU busy right now is not reported idle from older minutes."""
    rule = settings.rules.get("gpu_leased_idle")
    if rule is None or not context.idle_gpus or host.sample is None:
        return
    emit = _Emit(host, settings)
    limit = rule.threshold if rule.threshold is not None else 0.0
    hours = (rule.window_s or 0.0) / HOUR_S
    for gpu in host.sample.gpus:
        idle = context.idle_gpus.get((host.name, gpu.index))
        if idle is None or (gpu.util_gpu_pct is not None and gpu.util_gpu_pct >= limit):
            continue
        detail = f"under {limit:g} % for {hours:g} h, busiest minute {idle.util_pct_max:.0f} %"
        cond = emit("gpu_leased_idle", detail, gpu=gpu.index)
        if cond is not None:
            yield cond


def _lease_conditions(
    context: AlertContext, now_ts: float, settings: AlertSettings
) -> Iterator[Condition]:
    """One alert per lease that ends within the rule's window. It resolves when the lease
    ends or is extended past the window, so the alert list shows only what is coming."""
    rule = settings.rules.get("lease_ending_soon")
    if rule is None or context.leases is None or rule.window_s is None:
        return
    for lease in context.leases.ending:
        if not now_ts < lease.end_ts <= now_ts + rule.window_s:
            continue
        end = time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(lease.end_ts))
        hosts = hostlist.collect_hostlist(list(lease.hosts))
        yield Condition(
            rule=rule.name,
            severity=rule.severity,
            kind=Kind.CONDITION,
            labels={
                "tenant": lease.tenant,
                "lease": str(lease.lease_id),
                "leases": str(lease.lease_id),
            },
            summary=f"{rule.summary}: {end}, {lease.gpus} GPU(s) on {hosts}"
            f" (tenant {lease.tenant}, lease {lease.lease_id})",
            for_s=rule.for_s,
            keep_firing_for_s=rule.keep_firing_for_s,
            from_readings=False,
        )


class _RackPower:
    """Rack power as the fleet view draws it: the GPU power of fresh hosts plus the rack's
    per-host overhead for each of them, against the rack's budget. Hosts whose draw is not
    known are left out and counted; the sum is then a floor."""

    def __init__(self, settings: AlertSettings):
        self.rule = settings.rules.get("rack_power_high")
        self.racks = settings.racks
        self.watts: dict[str, float] = {}
        self.unknown: dict[str, int] = {}

    def add(self, host: HostState) -> None:
        if self.rule is None:
            return
        rack = self.racks.get(host.host.rack)
        if rack is None or not rack.power_budget_kw:
            return
        name = rack.name
        if host.node_power_w is not None:  # the BMC's figure already includes the overhead
            self.watts[name] = self.watts.get(name, 0.0) + host.node_power_w
            return
        powers: list[float] = []
        if host.status == "fresh" and host.sample is not None:
            # bounded by collect.bounds; the check keeps one forged number out of the sum
            powers = [g.power_w for g in host.sample.gpus if g.power_w is not None]
            powers = [p for p in powers if math.isfinite(p)]
        if not powers:
            self.unknown[name] = self.unknown.get(name, 0) + 1
            self.watts.setdefault(name, 0.0)
            return
        self.watts[name] = self.watts.get(name, 0.0) + sum(powers) + rack.host_overhead_w

    def conditions(self) -> Iterator[Condition]:
        rule = self.rule
        if rule is None or rule.threshold is None:
            return
        for name, watts in self.watts.items():
            rack = self.racks[name]
            budget_kw = rack.power_budget_kw or 0.0
            share_pct = watts / 10.0 / budget_kw  # W / (kW * 1000) * 100
            if share_pct <= rule.threshold:
                continue
            unknown = self.unknown.get(name, 0)
            detail = f"{watts / 1000:.1f} of {budget_kw:g} kW, {share_pct:.0f} %"
            detail += f"; {unknown} host(s) not counted" if unknown else ""
            yield Condition(
                rule=rule.name,
                severity=rule.severity,
                kind=Kind.CONDITION,
                labels={"site": rack.site, "rack": name},
                summary=f"rack {name}: {rule.summary} ({detail})",
                for_s=rule.for_s,
                keep_firing_for_s=rule.keep_firing_for_s,
                from_readings=False,
            )
