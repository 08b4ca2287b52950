"""The live state as one JSON-ready dict: what `opsconsole poll --once --json` prints and
what a script or a test can assert on without knowing the state classes.

Every GPU metric is `{"state": ..., "value": ...}` with `last_value` when the host is not
fresh, so a consumer cannot mistake an old number for a live one; IB and Ethernet entries
carry `live: false` for the same reason.
"""

from __future__ import annotations

from typing import Any

from opsconsole.collect.readings import Reading
from opsconsole.collect.state import FleetState, HostState


def fleet_snapshot(state: FleetState, now_ts: float) -> dict[str, Any]:
    return {
        "ts": now_ts,
        "counts": state.counts(),
        "console_lag_ms": state.console_lag_ms,
        "console_starved": state.console_starved,
        "hosts": {name: host_snapshot(host) for name, host in state.hosts.items()},
    }


def reading_dict(reading: Reading) -> dict[str, Any]:
    """One reading as JSON: `poll --json` and the plugins' fleet view say it alike."""
    out: dict[str, Any] = {"state": reading.state}
    if reading.state == "value":
        out["value"] = reading.value
    elif reading.last_value is not None:
        out["last_value"] = reading.last_value
    if reading.detail:
        out["detail"] = reading.detail
    return out


def host_snapshot(host: HostState) -> dict[str, Any]:
    sample = host.sample
    live = host.status == "fresh"
    out: dict[str, Any] = {
        "name": host.name,
        "site": host.host.site,
        "rack": host.host.rack,
        "status": host.status,
        "reason": host.reason,
        "detail": host.detail,
        "since_ts": host.since_ts,
        "last_seen_ts": host.last_seen_ts,
        "last_sample_ts": host.last_sample_ts,
        "connected": host.connected,
        "mode": host.mode,
        "configured_mode": host.host.mode,
        "rtt_ms": host.rtt_ms,
        "lag_ms": host.lag_ms,
        "gpu_count": host.gpu_count,
        "expected_gpus": host.expected_gpus,
        "samples_received": host.samples_received,
        "protocol_errors": host.protocol_errors,
        "last_protocol_error": host.last_protocol_error or None,
        "clock_skew_s": host.clock_skew_s,
        "invalid_readings": host.invalid_readings,
        "last_invalid": host.last_invalid or None,
        "counter_resets": host.counter_resets,
        "accepted_gpus": host.accepted_gpus,
        "extra_gpus": host.extra_gpus,
        "identity_problem": host.identity_problem or None,
        "uuid_conflicts": host.uuid_conflicts,
        "dropped_lines": host.budget.dropped_lines if host.budget is not None else 0,
        "over_budget": host.over_budget or None,
        "rtt_baseline_ms": host.rtt_baseline_ms,
        "rtt_probes_skipped": host.rtt_probes_skipped,
        "seq": sample.seq if sample is not None else None,
        "sample_ts": sample.ts if sample is not None else None,
        "driver": (sample.driver if live else None) if sample is not None else None,
        "facts": _facts(host),
        "gpus": [
            {
                "index": gpu.index,
                "uuid": gpu.uuid,
                "state": gpu.state,
                "readings": {name: reading_dict(r) for name, r in gpu.readings.items()},
                "nvlink": gpu.nvlink_errors,
                "mig": gpu.mig,
                "processes": gpu.processes,
            }
            for gpu in host.gpus()
        ],
        "events": [
            {
                "kind": e.kind,
                "code": e.code,
                "ts": e.ts,
                "source": e.source,
                "gpu": e.gpu,
                "pci_bus_id": e.pci_bus_id,
                "message": e.message,
            }
            for e in host.events
        ],
        "ib": [],
        "eth": [],
    }
    # A changed host key waiting for an operator, whatever the latest attempt said.
    change = host.key_change
    out["host_key_change"] = change.as_dict() if change is not None else None
    if sample is not None:
        for port in sample.ib:
            window = host.ib_rates.get((port.device, port.port))
            out["ib"].append(
                {
                    "device": port.device,
                    "port": port.port,
                    "live": live,
                    "state": port.state,
                    "phys_state": port.phys_state,
                    "rate_gbps": port.rate_gbps,
                    "link_layer": port.link_layer,
                    "counters": port.counters,
                    "rates_per_s": window.rates_per_s() if window and live else None,
                    "rate_window_s": window.span_s if window else 0.0,
                }
            )
        for iface in sample.eth:
            window = host.eth_rates.get(iface.name)
            out["eth"].append(
                {
                    "name": iface.name,
                    "live": live,
                    "operstate": iface.operstate,
                    "speed_mbps": iface.speed_mbps,
                    "counters": iface.counters,
                    "rates_per_s": window.rates_per_s() if window and live else None,
                    "rate_window_s": window.span_s if window else 0.0,
                }
            )
    return out


def _facts(host: HostState) -> dict[str, Any] | None:
    hello = host.hello
    if hello is None:
        return None
    return {
        "agent_version": hello.agent_version,
        "mode": hello.mode,
        "hostname": hello.host.hostname,
        "kernel": hello.host.kernel,
        "os": hello.host.os,
        "driver_version": hello.host.driver_version,
        "cuda_version": hello.host.cuda_version,
        "capabilities": hello.capabilities,
        "gpus": [
            {
                "index": g.index,
                "uuid": g.uuid,
                "name": g.name,
                "serial": g.serial,
                "pci_bus_id": g.pci_bus_id,
                "memory_total_mib": g.memory_total_mib,
            }
            for g in hello.gpus
        ],
    }
