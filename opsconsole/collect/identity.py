"""Who a host says it is, checked against the config and against every other host.

Why: a tenant with root can make its host claim another host's name and that host's GPU
UUIDs. Data is always filed under the host we connected to (the configured name), so the
claim fools nobody's numbers; but the operator must hear of it, because it is either a
tenant probing or a wrong address in the config. A GPU UUID is unique in the world: one
seen on two hosts at once names both hosts.
"""

from __future__ import annotations

from collections.abc import Iterable

from opsconsole.config import Host


def _short(name: str) -> str:
    return name.strip().lower().rstrip(".").split(".")[0]


class IdentityRegistry:
    """Configured names and addresses, and the GPU UUIDs each host currently claims."""

    def __init__(self, hosts: Iterable[Host] = ()):
        self._names: dict[str, str] = {}  # short name or address -> configured host name
        self._claims: dict[str, frozenset[str]] = {}  # host name -> UUIDs it claims
        self._holders: dict[str, set[str]] = {}  # UUID -> host names claiming it
        for host in hosts:
            self.add_host(host)

    def add_host(self, host: Host) -> None:
        self._names.setdefault(_short(host.name), host.name)
        if host.address:
            self._names.setdefault(host.address.lower(), host.name)

    def hostname_problem(self, host: Host, hostname: str) -> str:
        """Why the hostname in `host`'s hello does not match the config, or ""."""
        if not hostname:
            return ""  # agentless hosts and old agents may not say
        claimed = hostname.strip().lower().rstrip(".")
        if claimed in (host.name.lower(), (host.address or "").lower()):
            return ""
        if _short(claimed) == _short(host.name):
            return ""
        other = self._names.get(claimed) or self._names.get(_short(claimed))
        if other is not None and other != host.name:
            return f"says it is {hostname!r}, which is configured host {other}"
        return f"says its hostname is {hostname!r}"

    def claim(self, host_name: str, uuids: Iterable[str | None]) -> None:
        """Record the UUIDs `host_name` reports now, replacing its earlier claim."""
        new = frozenset(u.strip().upper() for u in uuids if u and u.strip())
        old = self._claims.get(host_name, frozenset())
        if new == old:
            return
        for uuid in old - new:
            holders = self._holders.get(uuid)
            if holders is not None:
                holders.discard(host_name)
                if not holders:
                    del self._holders[uuid]
        for uuid in new - old:
            self._holders.setdefault(uuid, set()).add(host_name)
        self._claims[host_name] = new

    def conflicts(self, host_name: str) -> dict[str, list[str]]:
        """UUIDs `host_name` claims that other hosts claim too, with those hosts."""
        out: dict[str, list[str]] = {}
        for uuid in self._claims.get(host_name, ()):
            holders = self._holders.get(uuid, ())
            if len(holders) > 1:
                out[uuid] = sorted(h for h in holders if h != host_name)
        return out
