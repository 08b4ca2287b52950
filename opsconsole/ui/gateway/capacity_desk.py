"""The capacity report, as the console asks for it: the store's reads (leases, drains,
rollup aggregates) through the gateway, on a connection of their own, then the report
built from them and the live readings the screen handed over as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opsconsole.capacity import CapacityReport, Readings, StoreFacts, build_report, resolve_site
from opsconsole.capacity.report import read_facts
from opsconsole.config import Fleet
from opsconsole.ui.gateway.store import StoreGateway


@dataclass(frozen=True, slots=True)
class CapacityRead:
    report: CapacityReport
    facts: StoreFacts
    """The store reads behind the report: their rollup aggregates are reused for a minute."""


class CapacityDesk:
    def __init__(self, gateway: StoreGateway, fleet: Fleet) -> None:
        self.gateway = gateway
        self.fleet = fleet

    def report(
        self,
        now_ts: float,
        *,
        readings: Readings,
        health: Mapping[object, str],
        site: str | None,
        reuse: StoreFacts | None,
    ) -> CapacityRead:
        """On a worker: aggregating rollups can take seconds on a big fleet, so the reads
        run apart from the lease desk's connection (`StoreGateway.call_apart`)."""
        fleet = self.fleet
        days = fleet.config.capacity.runway_days
        facts = self.gateway.call_apart(
            "reading capacity", lambda db: read_facts(db, fleet, now_ts, days, reuse)
        )
        report = build_report(
            fleet,
            facts,
            readings=readings,
            health=health,
            health_source="live state",
            site=resolve_site(fleet, site),
        )
        return CapacityRead(report, facts)
