"""Slot and drain targets as operators write them: `HOSTS[:GPUS]`, where HOSTS is a host or
a hostlist range ("sg1-r01-n[01-04]") and GPUS indexes or ranges ("0-3,6"); no GPUS
means every GPU of those hosts. Checked against the fleet so a typo is an error, not an
empty lease. `format_slots` writes slots back in that form, for tables and previews.
"""

from __future__ import annotations

from collections.abc import Iterable

import hostlist

from opsconsole.config import Fleet, Host
from opsconsole.errors import LeaseError
from opsconsole.leases.model import GpuSlot


def format_indexes(indexes: Iterable[int]) -> str:
    """[0, 1, 2, 3, 6] → "0-3,6"."""
    runs: list[list[int]] = []
    for index in sorted(set(indexes)):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def format_slots(slots: Iterable[GpuSlot]) -> str:
    """ "sg1-r01-n[01-04]:0-7 sg1-r01-n05:0-3": hosts holding the same GPUs collapse
    into one hostlist range; `parse_slots` reads it back (one spec per word)."""
    by_host: dict[str, list[int]] = {}
    for slot in slots:
        by_host.setdefault(slot.host, []).append(slot.gpu_index)
    by_gpus: dict[str, list[str]] = {}
    for host, indexes in by_host.items():
        by_gpus.setdefault(format_indexes(indexes), []).append(host)
    return " ".join(f"{hostlist.collect_hostlist(hosts)}:{gpus}" for gpus, hosts in by_gpus.items())


def _host_names(text: str) -> list[str]:
    try:
        names: list[str] = hostlist.expand_hostlist(text)
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


def _fleet_host(fleet: Fleet, name: str) -> Host:
    try:
        return fleet.host(name)
    except KeyError:
        raise LeaseError(f'unknown host "{name}" (not in {fleet.path})', code="not_found") from None
