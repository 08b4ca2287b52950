"""What the allocate and extend dialogs accept, turned into leases-layer requests. Pure, so
the rules are tested without a terminal; every refusal is a one-line LeaseError, the same
type the leases layer raises, so a dialog shows both the same way.

Times are the CLI's (`leases.times`): "now", "+2h", "+7d" or ISO 8601; without an offset
read in the config's `timezone`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsconsole.config import Fleet
from opsconsole.errors import LeaseError
from opsconsole.leases import LeaseRequest, parse_duration, parse_time
from opsconsole.leases.allocate import resolve_site
from opsconsole.leases.placement import Locality
from opsconsole.ui.view.model import FleetModel

LOCALITIES: tuple[Locality, ...] = (Locality.NODE, Locality.RACK, Locality.LEAF)
"""How close together every GPU of a lease must be (the leases layer's `locality`)."""

_AMOUNT = re.compile(r"^(\d+)\s*(gpus?|g|nodes?|n)?$")


@dataclass(frozen=True, slots=True)
class AllocateForm:
    """The dialog's fields as typed."""

    tenant: str
    amount: str
    start: str
    end: str
    site: str = ""
    locality: str = ""


def parse_amount(text: str) -> tuple[str, int]:
    """ "8" or "8 gpus" → ("gpus", 8); "2 nodes" or "2n" → ("nodes", 2)."""
    match = _AMOUNT.match(text.strip().lower())
    if not match:
        raise LeaseError(f'"{text}" is not an amount: a GPU count such as 8, or 2 nodes')
    count, unit = int(match.group(1)), match.group(2) or "gpus"
    return ("nodes" if unit.startswith("n") else "gpus"), count


def build_request(form: AllocateForm, now_ts: float, fleet: Fleet) -> LeaseRequest:
    """The whole form as one request: the site and locality are the leases layer's
    constraints, applied by placement itself."""
    tenant = form.tenant.strip()
    if not tenant:
        raise LeaseError("name a tenant")
    kind, count = parse_amount(form.amount)
    if not form.end.strip():
        raise LeaseError('give an end: ISO 8601, or relative to now such as "+7d"')
    return LeaseRequest(
        tenant=tenant,
        start_ts=parse_time(form.start.strip() or "now", now_ts),
        end_ts=parse_time(form.end, now_ts),
        gpus=count if kind == "gpus" else None,
        nodes=count if kind == "nodes" else None,
        site=parse_site(form.site, fleet),
        locality=parse_locality(form.locality),
    )


def parse_site(text: str, fleet: Fleet) -> str | None:
    """A site of the config (any case), or None for "anywhere the tenant may use"."""
    return resolve_site(fleet, text)


def parse_locality(text: str) -> Locality:
    text = text.strip().lower()
    if not text or text == Locality.ANY:
        return Locality.ANY
    for locality in LOCALITIES:
        if text == locality:
            return locality
    raise LeaseError(f"locality is one of {', '.join(LOCALITIES)} (or empty for any)")


def parse_new_end(text: str, end_ts: float, now_ts: float) -> float:
    """ "2d" or "+12h": that much later than the current end; ISO 8601: that time."""
    text = text.strip()
    if not text:
        raise LeaseError("give how much longer (2d, 12h) or a new end (ISO 8601)")
    try:
        return end_ts + parse_duration(text)
    except LeaseError:
        return parse_time(text, now_ts)


def placement_health(model: FleetModel) -> dict[object, str]:
    """Live health in the leases layer's words: a down host is "down"; on a fresh host a
    faulty or vanished GPU is "critical". Built on the UI thread (the model lives there)
    and handed to the worker as a plain dict."""
    health: dict[object, str] = {}
    for name, snap in model.hosts.items():
        if snap.status == "down":
            health[name] = "down"
            continue
        if not snap.is_fresh:
            continue
        reported = set()
        for gpu, gpu_health in zip(snap.gpus, snap.health, strict=False):
            reported.add(gpu.index)
            if gpu_health.level == "fault":
                health[(name, gpu.index)] = "critical"
        if snap.gpu_count is not None:
            for index in range(snap.host.expected_gpus):
                if index not in reported:
                    health[(name, index)] = "critical"
    return health
