"""Fleet view -> Prometheus metric families. Pure: a `FleetView` in, families out.

Names follow Prometheus conventions: base units in the name (`_celsius`, `_watts`,
`_bytes`, `_hertz`, `_seconds`, `_ratio` for 0-1), `_total` only on counters, `_info`
for label-carrying series with value 1. A reading that is not live (host stale or down,
GPU lost, not supported) is left out rather than exported as a number: in PromQL an
absent series is "unknown", a 0 would be a lie.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from opsconsole.plugin import FleetView

HOST_LABELS = ["site", "rack", "host"]
GPU_LABELS = [*HOST_LABELS, "gpu", "uuid", "tenant"]
PORT_LABELS = [*HOST_LABELS, "device", "port"]

MIB = 1024 * 1024
# protocol field -> (metric name, help, scale, counter?)
GPU_READINGS: dict[str, tuple[str, str, float, bool]] = {
    "temp_c": ("opsconsole_gpu_temperature_celsius", "GPU die temperature.", 1.0, False),
    "power_w": ("opsconsole_gpu_power_watts", "GPU board power draw.", 1.0, False),
    "power_limit_w": ("opsconsole_gpu_power_limit_watts", "GPU enforced power limit.", 1.0, False),
    "util_gpu_pct": ("opsconsole_gpu_utilization_ratio", "GPU busy fraction (0-1).", 0.01, False),
    "util_mem_pct": (
        "opsconsole_gpu_memory_utilization_ratio", "GPU memory bus busy fraction (0-1).", 0.01,
        False,
    ),
    "mem_used_mib": ("opsconsole_gpu_memory_used_bytes", "GPU memory used.", MIB, False),
    "mem_total_mib": ("opsconsole_gpu_memory_total_bytes", "GPU framebuffer memory.", MIB, False),
    "sm_clock_mhz": ("opsconsole_gpu_sm_clock_hertz", "GPU SM clock.", 1e6, False),
    "mem_clock_mhz": ("opsconsole_gpu_memory_clock_hertz", "GPU memory clock.", 1e6, False),
    "fan_pct": ("opsconsole_gpu_fan_speed_ratio", "GPU fan speed (0-1).", 0.01, False),
    "remap_pending": ("opsconsole_gpu_row_remap_pending", "1: a remap awaits a reset.", 1.0, False),
    "remap_failed": ("opsconsole_gpu_row_remap_failed", "1 when a row remap failed.", 1.0, False),
    "ecc_aggregate_corrected": (
        "opsconsole_gpu_ecc_corrected_errors_total", "Corrected ECC errors, lifetime.", 1.0, True,
    ),
    "ecc_aggregate_uncorrected": (
        "opsconsole_gpu_ecc_uncorrected_errors_total", "Uncorrected ECC errors, lifetime.", 1.0,
        True,
    ),
    "pcie_replay": ("opsconsole_gpu_pcie_replays_total", "PCIe replay counter.", 1.0, True),
    "retired_pages_dbe": (
        "opsconsole_gpu_retired_pages_dbe", "Pages retired for double-bit errors.", 1.0, False,
    ),
}  # fmt: skip


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def families(view: FleetView | None) -> Iterator[Metric]:
    """Every family for one scrape; without a view yet, only the exporter's own."""
    ready = GaugeMetricFamily(
        "opsconsole_exporter_view_timestamp_seconds",
        "When the fleet view being served was taken (UTC epoch seconds).",
    )
    if view is None:
        yield ready
        return
    ready.add_metric([], view.ts)
    yield ready
    yield from _hosts(view)
    yield from _gpus(view)
    yield from _ports(view)
    yield from _leases(view)
    yield from _alerts(view)


def _host_key(h: Mapping[str, Any]) -> list[str]:
    return [_text(h.get("site")), _text(h.get("rack")), _text(h.get("name"))]


def _hosts(view: FleetView) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "opsconsole_host_up", "1 while the host reports fresh samples.", labels=HOST_LABELS
    )
    rtt = GaugeMetricFamily(
        "opsconsole_host_ssh_rtt_seconds", "SSH keepalive round trip.", labels=HOST_LABELS
    )
    gpus = GaugeMetricFamily("opsconsole_host_gpus", "GPUs the host reports.", labels=HOST_LABELS)
    expected = GaugeMetricFamily(
        "opsconsole_host_gpus_expected", "GPUs its class should have.", labels=HOST_LABELS
    )
    refused = CounterMetricFamily(
        "opsconsole_host_refused_lines", "Agent lines refused by the decoder.", labels=HOST_LABELS
    )
    for h in view.hosts.values():
        key = _host_key(h)
        up.add_metric(key, 1.0 if h.get("status") == "fresh" else 0.0)
        if h.get("rtt_ms") is not None:
            rtt.add_metric(key, h["rtt_ms"] / 1000.0)
        if h.get("gpu_count") is not None:
            gpus.add_metric(key, h["gpu_count"])
        expected.add_metric(key, h.get("expected_gpus") or 0)
        refused.add_metric(key, h.get("protocol_errors") or 0)
    yield from (up, rtt, gpus, expected, refused)
    power = GaugeMetricFamily(
        "opsconsole_host_power_watts",
        "Node power read by a collector plugin (BMC).",
        labels=HOST_LABELS,
    )
    for name, readings in view.extra.items():
        host = view.hosts.get(name)
        value = readings.get("node_power_w")
        if host is not None and value is not None:
            power.add_metric(_host_key(host), value)
    yield power


def _gpus(view: FleetView) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "opsconsole_gpu_up", "1 while the GPU answers (state ok).", labels=GPU_LABELS
    )
    out = {
        field: (CounterMetricFamily if counter else GaugeMetricFamily)(
            name.removesuffix("_total") if counter else name, text, labels=GPU_LABELS
        )
        for field, (name, text, _, counter) in GPU_READINGS.items()
    }
    for h in view.hosts.values():
        live = h.get("status") == "fresh"
        for g in h.get("gpus", ()):
            index = g["index"]
            tenant = view.tenants.get((h["name"], index), "")
            labels = [*_host_key(h), str(index), _text(g.get("uuid")), tenant]
            if not live:
                continue
            up.add_metric(labels, 1.0 if g.get("state") == "ok" else 0.0)
            for field, reading in g.get("readings", {}).items():
                spec = GPU_READINGS.get(field)
                if spec is None or reading.get("state") != "value":
                    continue
                out[field].add_metric(labels, float(reading["value"]) * spec[2])
    yield up
    yield from out.values()


def _ports(view: FleetView) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "opsconsole_ib_port_up", "1 while the InfiniBand port is ACTIVE.", labels=PORT_LABELS
    )
    rate = GaugeMetricFamily(
        "opsconsole_ib_port_rate_bytes_per_second", "InfiniBand port link rate.", labels=PORT_LABELS
    )
    for h in view.hosts.values():
        if h.get("status") != "fresh":
            continue
        for p in h.get("ib", ()):
            labels = [*_host_key(h), _text(p.get("device")), _text(p.get("port"))]
            up.add_metric(labels, 1.0 if p.get("state") == "ACTIVE" else 0.0)
            if p.get("rate_gbps") is not None:
                rate.add_metric(labels, p["rate_gbps"] * 1e9 / 8)  # base unit: bytes
    yield from (up, rate)


def _leases(view: FleetView) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "opsconsole_lease_info", "An active lease (value 1).", labels=["lease", "tenant"]
    )
    gpus = GaugeMetricFamily(
        "opsconsole_lease_gpus", "GPUs held by an active lease.", labels=["lease", "tenant"]
    )
    end = GaugeMetricFamily(
        "opsconsole_lease_end_timestamp_seconds",
        "When the lease ends (UTC epoch).",
        labels=["lease", "tenant"],
    )
    slot = GaugeMetricFamily(
        "opsconsole_gpu_lease_info", "Which lease holds a GPU slot now (value 1).",
        labels=[*HOST_LABELS, "gpu", "tenant", "lease"],
    )  # fmt: skip
    for lease in view.leases:
        key = [str(lease["id"]), lease["tenant"]]
        info.add_metric(key, 1.0)
        gpus.add_metric(key, lease["gpu_count"])
        end.add_metric(key, lease["end_ts"])
        for s in lease["slots"]:
            h = view.hosts.get(s["host"], {"name": s["host"]})
            slot.add_metric(
                [*_host_key(h), str(s["gpu_index"]), lease["tenant"], str(lease["id"])], 1.0
            )
    yield from (info, gpus, end, slot)


def _alerts(view: FleetView) -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        "opsconsole_alerts_open", "Open alerts by severity and state.", labels=["severity", "state"]
    )
    tally: dict[tuple[str, str], int] = {
        (sev, state): 0
        for sev in ("info", "warning", "critical")
        for state in ("firing", "acknowledged")
    }
    each = GaugeMetricFamily(
        "opsconsole_alert_open", "One open alert (value 1), with what it is about.",
        labels=["rule", "severity", "state", "site", "rack", "host", "gpu", "tenant"],
    )  # fmt: skip
    for a in view.alerts:
        tally[(a["severity"], a["state"])] = tally.get((a["severity"], a["state"]), 0) + 1
        labels = a["labels"]
        each.add_metric(
            [a["rule"], a["severity"], a["state"],
             *(_text(labels.get(k)) for k in ("site", "rack", "host", "gpu", "tenant"))],
            1.0,
        )  # fmt: skip
    for (sev, state), n in sorted(tally.items()):
        counts.add_metric([sev, state], n)
    yield from (counts, each)
