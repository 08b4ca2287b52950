"""The UI thread's copy of the fleet: the newest snapshot of every host, with version
counters that widgets use to know which cached rows are out of date.

Only the UI thread touches a FleetModel; it changes only in `apply()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsconsole.config import Fleet
from opsconsole.ui.feed.feed import FeedNotes, FleetBatch
from opsconsole.ui.view.lease_board import GpuTenant
from opsconsole.ui.view.snapshot import HostDetail, HostSnapshot


@dataclass(frozen=True, slots=True)
class FleetTotals:
    hosts: dict[str, int]  # by status
    gpus_ok: int
    gpus_warn: int
    gpus_fault: int
    gpus_unknown: int  # on hosts that are not fresh (or never heard from)
    newest_sample_ts: float | None


class FleetModel:
    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.hosts: dict[str, HostSnapshot] = {}
        self.host_versions: dict[str, int] = dict.fromkeys((h.name for h in fleet.hosts), 0)
        self.rack_versions: dict[str, int] = dict.fromkeys(fleet.racks, 0)
        self.site_versions: dict[str, int] = dict.fromkeys(fleet.sites, 0)
        self.hosts_by_rack: dict[str, list[str]] = {name: [] for name in fleet.racks}
        for host in fleet.hosts:
            self.hosts_by_rack.setdefault(host.rack, []).append(host.name)
        self.detail: HostDetail | None = None
        self.notes = FeedNotes()
        self.generation = 0
        self.last_batch_ts: float | None = None
        self._totals: FleetTotals | None = None
        self.leases_shown = False
        """The console has a lease store: the grid gets a TENANT column."""
        self.tenancy: dict[str, dict[int, GpuTenant]] | None = None
        """host → {GPU index: who holds it now}; None until the first lease board."""

    def apply_tenancy(self, by_host: dict[str, dict[int, GpuTenant]]) -> set[str]:
        """Take who holds which GPU; returns the hosts whose holders changed (their
        version moves, so cached grid lines repaint)."""
        old = self.tenancy
        if old is None:
            changed = set(self.host_versions)
        else:
            changed = {h for h in old.keys() | by_host.keys() if old.get(h) != by_host.get(h)}
            changed &= self.host_versions.keys()  # a lease may name a host no longer configured
        self.tenancy = by_host
        for name in changed:
            self.host_versions[name] = self.host_versions.get(name, 0) + 1
        return changed

    def apply(self, batch: FleetBatch) -> set[str]:
        """Take a batch; returns the names of the hosts whose snapshot changed."""
        changed = set()
        for name, snapshot in batch.snapshots.items():
            if self.hosts.get(name) is snapshot:
                continue
            self.hosts[name] = snapshot
            self.host_versions[name] = self.host_versions.get(name, 0) + 1
            host = snapshot.host
            self.rack_versions[host.rack] = self.rack_versions.get(host.rack, 0) + 1
            self.site_versions[host.site] = self.site_versions.get(host.site, 0) + 1
            changed.add(name)
        if batch.detail is not None:
            self.detail = batch.detail
        if batch.notes is not None:
            self.notes = batch.notes
        self.last_batch_ts = batch.now_ts
        self.generation += 1
        if changed:
            self._totals = None
        return changed

    def detail_for(self, name: str) -> HostDetail | None:
        detail = self.detail
        return detail if detail is not None and detail.snapshot.name == name else None

    def totals(self) -> FleetTotals:
        if self._totals is None:
            counts = {"pending": 0, "fresh": 0, "stale": 0, "down": 0}
            ok = warn = fault = unknown = 0
            newest = None
            for host in self.fleet.hosts:
                snap = self.hosts.get(host.name)
                if snap is None:
                    counts["pending"] += 1
                    unknown += host.expected_gpus
                    continue
                counts[snap.status] = counts.get(snap.status, 0) + 1
                if snap.last_sample_ts is not None and (
                    newest is None or snap.last_sample_ts > newest
                ):
                    newest = snap.last_sample_ts
                if snap.status != "fresh":
                    unknown += max(host.expected_gpus, len(snap.gpus))
                    continue
                fault += snap.faults + snap.missing_gpus  # a GPU that vanished is a fault
                warn += snap.warnings
                ok += len(snap.gpus) - snap.faults - snap.warnings
            self._totals = FleetTotals(counts, ok, warn, fault, unknown, newest)
        return self._totals
