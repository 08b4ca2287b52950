"""Built-in alert rules as data, and `evaluate()`: live state in, firing conditions out.

Why rules as data: an operator tunes a threshold or a duration in the config (TOML wiring
comes later) without touching code, and a test can shorten a `for_s` to zero. The checks
themselves stay in Python, one small function per family, because each reads a different
part of the live state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from opsconsole.alerts.conditions import Condition, PendingTracker
from opsconsole.alerts.xid_catalogue import xid_info
from opsconsole.collect.reasons import HOST_KEY_CHANGED
from opsconsole.collect.state import HostState

# NVML clock event reason bits (nvmlClocksEventReason*).
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
THERMAL_EVENTS = HW_SLOWDOWN | SW_THERMAL | HW_THERMAL
POWER_EVENTS = SW_POWER_CAP | HW_POWER_BRAKE


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: str  # "info", "warning", "critical"
    summary: str
    threshold: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0


BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("gpu_temp_high", "warning", "GPU temperature high", 85.0, 60.0, 120.0),
    Rule("gpu_thermal_clock_events", "warning", "GPU clocks cut for heat", None, 300.0, 120.0),
    Rule("gpu_power_cap_clock_events", "info", "GPU held at its power cap", None, 600.0, 120.0),
    Rule("gpu_ecc_uncorrected", "critical", "uncorrected volatile ECC errors", 0.0),
    Rule("gpu_row_remap_pending", "warning", "row remap pending (GPU reset needed)"),
    Rule("gpu_row_remap_failed", "critical", "row remap failed (return the GPU)"),
    Rule("gpu_nvlink_down", "critical", "NVLink link down", None, 30.0, 60.0),
    Rule("gpu_missing", "critical", "GPUs missing", None, 30.0, 60.0),
    Rule("gpu_lost", "critical", "GPU lost"),
    Rule("ib_port_down", "critical", "InfiniBand port not ACTIVE", None, 30.0, 60.0),
    Rule("ib_rate_low", "warning", "InfiniBand port below its expected rate", None, 60.0, 60.0),
    Rule("host_stale", "warning", "host stale"),
    Rule("host_down", "critical", "host down"),
    Rule("host_key_changed", "critical", "SSH host key changed (security)"),
)
"""`for_s`/`keep_firing_for_s` are zero where the fact is already settled when seen: the
host status has its own stale/down delays, and ECC and remap counters do not flap."""

XID_RULE_PREFIX = "xid_"
"""XID event alerts are named by code class: xid_application, xid_driver, xid_hardware,
xid_unknown (from the catalogue's likely cause)."""


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and durations, with defaults. `rules` by name; `xid_ignore` lists XID
    codes that never alert (a fleet whose users' jobs fault all day may ignore 13 and 43);
    `xid_lookback_s` ignores XIDs older than this (the agent replays the log to boot)."""

    rules: Mapping[str, Rule] = field(default_factory=lambda: {r.name: r for r in BUILTIN_RULES})
    xid_ignore: frozenset[int] = frozenset()
    xid_lookback_s: float = 24 * 3600.0

    def with_rule(self, name: str, **changes: object) -> AlertSettings:
        """A copy with one rule changed, e.g. `with_rule("gpu_temp_high", threshold=80)`."""
        rules = dict(self.rules)
        rules[name] = dataclasses.replace(rules[name], **changes)
        return dataclasses.replace(self, rules=rules)


class StateView(Protocol):
    """What evaluate() reads: FleetState satisfies it."""

    hosts: Mapping[str, HostState]


def evaluate(
    state_view: StateView,
    now_ts: float,
    pending: PendingTracker,
    settings: AlertSettings | None = None,
) -> list[Condition]:
    """The conditions firing at `now_ts`. Pure apart from `pending`, which remembers when
    each condition started so `for_s` and `keep_firing_for_s` can be honoured."""
    settings = settings or AlertSettings()
    raw: list[Condition] = []
    hold: set[str] = set()
    for host in state_view.hosts.values():
        raw.extend(_host_conditions(host, settings))
        if host.status == "fresh" and host.sample is not None:
            raw.extend(_sample_conditions(host, settings))
            raw.extend(_xid_conditions(host, now_ts, settings))
        else:
            hold.add(host.name)  # readings unknown: neither start nor clear them
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
            return None  # a rule removed in the settings
        all_labels = self.base | {k: str(v) for k, v in labels.items()}
        where = self.host + (f" GPU {labels['gpu']}" if "gpu" in labels else "")
        where += f" {labels['port']}" if "port" in labels else ""
        return Condition(
            rule.name,
            rule.severity,
            "condition",
            all_labels,
            f"{where}: {rule.summary}" + (f" ({detail})" if detail else ""),
            rule.for_s,
            rule.keep_firing_for_s,
            from_readings,
        )


def _host_conditions(host: HostState, settings: AlertSettings) -> Iterator[Condition]:
    emit = _Emit(host, settings)
    reason = f"{host.reason}: {host.detail}" if host.detail else host.reason
    found: list[Condition | None] = []
    if host.status == "stale":
        found.append(emit("host_stale", reason, reason=reason, from_readings=False))
    elif host.status == "down":
        found.append(emit("host_down", reason, reason=reason, from_readings=False))
    if host.reason == HOST_KEY_CHANGED:
        found.append(emit("host_key_changed", host.detail, from_readings=False))
    yield from (c for c in found if c is not None)


def _sample_conditions(host: HostState, settings: AlertSettings) -> Iterator[Condition]:
    emit = _Emit(host, settings)
    sample = host.sample
    assert sample is not None
    rules = settings.rules
    found: list[Condition | None] = []
    count = host.gpu_count
    if count is not None and count < host.expected_gpus:
        found.append(emit("gpu_missing", f"{count} of {host.expected_gpus} GPUs visible"))
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


def _xid_conditions(host: HostState, now_ts: float, settings: AlertSettings) -> Iterator[Condition]:
    """Each XID its own event alert. The event label is the same identity the live state
    deduplicates replays by, so a replayed XID maps to the alert it already has."""
    emit = _Emit(host, settings)
    for event in host.events:
        if event.kind != "xid" or event.code in settings.xid_ignore:
            continue
        if now_ts - event.ts > settings.xid_lookback_s:
            continue
        info = xid_info(event.code)
        labels = dict(emit.base, code=str(event.code), cause=info.cause)
        where = host.name
        if event.gpu is not None:
            labels["gpu"] = str(event.gpu)
            where += f" GPU {event.gpu}"
        labels["event"] = f"{event.code}@{round(event.ts)}@{event.pci_bus_id or event.gpu}"
        yield Condition(
            XID_RULE_PREFIX + info.cause,
            info.severity,
            "event",
            labels,
            f"{where}: XID {event.code} {info.meaning}; {info.action}",
        )
