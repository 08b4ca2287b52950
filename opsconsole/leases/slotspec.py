"""Slot and drain targets as operators write them: `HOSTS[:GPUS]`, where HOSTS is a host or
a hostlist range ("sg1-r01-n[01-04]") and GPUS indexes or ranges ("0-3,6"); no GPUS
means every GPU of those hosts. Checked against the fleet so a typo is an error, not an
empty lease.
"""

from __future__ import annotations

import hostlist

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases.model import GpuSlot


def _host_names(text: str) -> list[str]:
    try:
        names = hostlist.expand_hostlist(text)
    except hostlist.BadHostlist as exc:
        raise LeaseError(f'bad host range "{text}": {exc}') from None
    if not names:
        raise LeaseError(f'host range "{text}" is empty')
    return names


def _indexes(text: str, spec: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise LeaseError(f'"{spec}": GPU indexes must look like 0-3,6')
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise LeaseError(f'"{spec}": GPU range {part} runs backwards')
        out.extend(range(first, last + 1))
    return out


def parse_target(spec: str, fleet: Fleet) -> tuple[str, int | None]:
    """One host, optionally one GPU ("sg1-r01-n01" or "sg1-r01-n01:3"), for drains."""
    host_text, colon, gpu_text = spec.strip().rpartition(":") if ":" in spec else (spec, "", "")
    name = host_text.strip()
    host = _fleet_host(fleet, name)
    if not colon:
        return name, None
    if not gpu_text.strip().isdigit():
        raise LeaseError(f'"{spec}": expected HOST or HOST:GPU (one GPU index)')
    index = int(gpu_text)
    if index >= host.expected_gpus:
        raise LeaseError(f"{name} has {host.expected_gpus} GPU(s); there is no GPU {index}")
    return name, index


def parse_slots(specs: list[str], fleet: Fleet) -> list[GpuSlot]:
    """Every slot the specs name, in order, each checked against the fleet."""
    slots: list[GpuSlot] = []
    for spec in specs:
        host_text, colon, gpu_text = spec.strip().rpartition(":")
        if not colon:
            host_text, gpu_text = spec.strip(), ""
        for name in _host_names(host_text):
            host = _fleet_host(fleet, name)
            indexes = _indexes(gpu_text, spec) if gpu_text else list(range(host.expected_gpus))
            for index in indexes:
                if index >= host.expected_gpus:
                    raise LeaseError(
                        f"{name} has {host.expected_gpus} GPU(s); there is no GPU {index}"
                    )
                slots.append(GpuSlot(name, index))
    if not slots:
        raise LeaseError("no GPU slots named")
    return slots


def _fleet_host(fleet: Fleet, name: str):
    try:
        return fleet.host(name)
    except KeyError:
        raise LeaseError(f'unknown host "{name}" (not in {fleet.path})') from None
