"""The configuration file: TOML parsed by tomllib, validated by pydantic, host ranges expanded
with python-hostlist into a `Fleet` of `Host`s.

Every problem is reported as one line naming the file, the key path and what is wrong
(`config.toml: racks[2].power_budget_kw: expected a number, got "12kW"`); unknown keys and
duplicate hosts are refused rather than guessed at.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import hostlist
from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from opsconsole.config.alerts import AlertsConfig
from opsconsole.config.base import Section
from opsconsole.config.capacity import CapacityConfig
from opsconsole.config.validation import ValidationConfig
from opsconsole.errors import ConfigError

DEFAULT_CONFIG_NAME = "opsconsole.toml"


class SshSettings(Section):
    known_hosts: str | None = "~/.ssh/known_hosts"
    """known_hosts file checked for every host key; relative paths are from the config file."""
    identity_files: list[str] = Field(default_factory=list)
    """Private keys offered; empty means the SSH agent and ~/.ssh defaults."""
    use_ssh_config: bool = True
    """Honour ~/.ssh/config (or ssh_config_path) for users, ports, keys and ProxyJump."""
    ssh_config_path: str | None = None
    proxy_jump: str | None = None
    """Bastion as [user@]host[:port]; one tunnel connection carries every host's channel."""
    connect_timeout_s: float = Field(10.0, gt=0)
    keepalive_interval_s: float = Field(15.0, gt=0)
    keepalive_count_max: int = Field(3, ge=1)
    user: str | None = None
    accept_unknown_host_keys_insecure: bool = False
    """Skip host-key checking. Only for throw-away labs: a changed key is then not noticed."""


class PollingSettings(Section):
    interval_s: float = Field(2.0, ge=0.2, le=3600)
    connect_concurrency: int = Field(20, ge=1, le=1000)
    """Connections opened at once to start with; fast connects let it grow (up to 8x),
    timeouts halve it; fixed behind a proxy_jump bastion (its MaxStartups drops storms)."""
    connect_jitter_s: float = Field(1.0, ge=0)
    stale_after_s: float = Field(10.0, gt=0)
    down_after_s: float = Field(30.0, gt=0)
    reconnect_backoff_min_s: float = Field(1.0, gt=0)
    reconnect_backoff_max_s: float = Field(60.0, gt=0)
    history_points: int = Field(300, ge=10, le=100_000)
    """Points of in-memory history per metric, for sparklines."""
    relay_every: int = Field(1, ge=0, le=30)
    """Site relays forward each host's sample every this many intervals, in one line per
    site (`batch N`); faults, events and health changes still come at once. 1: every
    interval; 4: about a quarter of the console's CPU per relayed host (BENCHMARKS.md);
    0: one line per message, as relays before batching. Capped so that no relayed host
    ages into stale between two forwarded samples."""


class StoreSettings(Section):
    path: str = "opsconsole.db"
    """SQLite file; relative paths are from the config file's directory."""
    rollup_retention_days: int = Field(30, ge=1)
    event_retention_days: int = Field(180, ge=1)
    raw_window_h: float = Field(24.0, ge=0)
    """Flight recorder: every raw sample kept this long in a bounded ring (0: off)."""
    incident_capture_s: float = Field(600.0, ge=0)
    """Raw samples kept this long before and after each critical alert, with the alert."""


class SiteConfig(Section):
    name: str = Field(min_length=1)
    description: str = ""
    timezone: str = "UTC"
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2 code (SG, MY): tenant reports show where each GPU was."""
    relay: str | None = None
    """A host (`mode = "relay"`) that collects this site's hosts and serves their merged
    stream; the console then reaches them only through it (see ARCHITECTURE, Site relays)."""


class RackConfig(Section):
    names: str = Field(min_length=1)
    """One rack name or a hostlist range such as "sg1-r[01-04]"."""
    site: str
    leaf: str | None = None
    """The fabric leaf switch these racks hang off."""
    power_budget_kw: float | None = Field(None, gt=0)
    host_overhead_w: float = Field(0.0, ge=0)
    """Per-host power beyond the GPUs (CPUs, NICs, fans) counted against the budget."""


class HostClass(Section):
    gpus: int = Field(ge=0, le=64)
    gpu_model: str | None = None
    ib_ports: int | None = Field(None, ge=0)
    ib_rate_gbps: float | None = Field(None, gt=0)


class HostGroup(Section):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    names: str = Field(min_length=1)
    """One host name or a hostlist range such as "sg1-r01-n[01-16]"."""
    address: str | None = None
    """Address template: "{name}.mgmt", a hostlist range of the same length, or one address."""
    port: int = Field(22, ge=1, le=65535)
    user: str | None = None
    rack: str
    """Rack name, or a template using fields of a `name_pattern` match: "sg1-r{rack}"."""
    name_pattern: str | None = None
    """Regex with named groups taken from each host name, for use in `rack`."""
    host_class: str = Field(alias="class")
    mode: Literal["agent", "agentless", "relay"] = "agent"
    python: str = "python3"
    relay_command: str = "opsconsole poll --relay --site {site}"
    """With mode = "relay": what the console runs on the relay host ({site} is filled in)."""


class Config(Section):
    operator: str | None = None
    """Who this console acts as in audit records; defaults to the login name."""
    timezone: str = "UTC"
    """IANA zone ("Asia/Singapore") in which typed times without an offset are read and
    every time is printed (with the zone beside it)."""
    store: StoreSettings = StoreSettings()
    ssh: SshSettings = SshSettings()
    polling: PollingSettings = PollingSettings()
    sites: list[SiteConfig] = Field(default_factory=list)
    racks: list[RackConfig] = Field(default_factory=list)
    host_classes: dict[str, HostClass] = Field(default_factory=dict)
    hosts: list[HostGroup] = Field(default_factory=list)
    alerts: AlertsConfig = AlertsConfig()
    capacity: CapacityConfig = CapacityConfig()
    validation: ValidationConfig = ValidationConfig()
    plugin_dirs: list[str] = Field(default_factory=list)
    """Folders of site plugins (`NAME.py` or `NAME/__init__.py`), relative to the config."""
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """`[plugins.NAME]`: enables plugin NAME; its keys are checked by the plugin's schema."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value.strip().upper() not in ("UTC", "Z"):
            try:
                ZoneInfo(value.strip())
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    "unknown time zone (use an IANA name such as Asia/Singapore)"
                ) from None
        return value.strip()


@dataclass(frozen=True, slots=True)
class Rack:
    name: str
    site: str
    leaf: str | None
    power_budget_kw: float | None
    host_overhead_w: float


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str
    port: int
    user: str | None
    site: str
    rack: str
    leaf: str | None
    host_class: str
    expected_gpus: int
    gpu_model: str | None
    expected_ib_ports: int | None
    expected_ib_rate_gbps: float | None
    mode: Literal["agent", "agentless", "relay"]
    python: str
    relay_command: str = ""


class Fleet:
    """The resolved fleet: every host expanded, every reference checked."""

    def __init__(self, config: Config, path: Path, hosts: list[Host], racks: dict[str, Rack]):
        self.config = config
        self.path = path
        self.hosts = hosts
        self.racks = racks
        self.sites = {site.name: site for site in config.sites}
        self._by_name = {host.name: host for host in hosts}

    def host(self, name: str) -> Host:
        return self._by_name[name]

    def resolve_path(self, value: str) -> Path:
        """Paths in the config are relative to the config file, with ~ expanded."""
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.path.parent / path

    @property
    def store_path(self) -> Path:
        return self.resolve_path(self.config.store.path)


def default_config_path() -> Path:
    return Path(os.environ.get("OPSCONSOLE_CONFIG", DEFAULT_CONFIG_NAME))


def load_fleet(path: str | os.PathLike[str] | None = None) -> Fleet:
    """Read, validate and expand a config file; ConfigError names file, key path, problem."""
    path = Path(path) if path is not None else default_config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return fleet_from_dict(raw, path)


def fleet_from_dict(raw: dict[str, Any], path: Path) -> Fleet:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None
    try:
        racks = _expand_racks(config)
        hosts = _expand_hosts(config, racks)
    except _Problem as problem:
        raise ConfigError(f"{path}: {problem}") from None
    return Fleet(config, path, hosts, racks)


class _Problem(Exception):
    pass


def key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_EXPECTED = {
    "float": "a number",
    "int": "an integer",
    "string": "a string",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table",
    "model": "a table",
}


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem as `key.path: what is wrong`, plus a count of any others."""
    errors = exc.errors()
    first = errors[0]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{key_path(first['loc'])}: {_describe(first)}" + (more if len(errors) > 1 else "")


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    got = _show(error.get("input"))
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        return f"expected one of {error['ctx']['expected']}, got {got}"
    for prefix, expected in _EXPECTED.items():
        if kind.startswith(prefix):
            return f"expected {expected}, got {got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{error['msg'].lower()}, got {got}"
    return f"{error['msg']}, got {got}"


def _show(value: object) -> str:
    if isinstance(value, str | int | float | bool):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _expand(pattern: str, where: str) -> list[str]:
    try:
        names: list[str] = hostlist.expand_hostlist(pattern)
    except hostlist.BadHostlist as exc:
        raise _Problem(f'{where}: bad host range "{pattern}": {exc}') from None
    if not names:
        raise _Problem(f'{where}: host range "{pattern}" is empty')
    return names


def _expand_racks(config: Config) -> dict[str, Rack]:
    site_names = {site.name for site in config.sites}
    if len(site_names) != len(config.sites):
        dupes = _duplicates([site.name for site in config.sites])
        raise _Problem(f'sites: site "{dupes[0]}" is defined twice')
    racks: dict[str, Rack] = {}
    for i, group in enumerate(config.racks):
        if group.site not in site_names:
            raise _Problem(f'racks[{i}].site: unknown site "{group.site}"')
        for name in _expand(group.names, f"racks[{i}].names"):
            if name in racks:
                raise _Problem(f'racks[{i}].names: rack "{name}" is defined twice')
            racks[name] = Rack(
                name, group.site, group.leaf, group.power_budget_kw, group.host_overhead_w
            )
    return racks


def _expand_hosts(config: Config, racks: dict[str, Rack]) -> list[Host]:
    hosts: list[Host] = []
    seen: dict[str, str] = {}
    endpoints: dict[tuple[str, int], str] = {}
    for i, group in enumerate(config.hosts):
        where = f"hosts[{i}]"
        host_class = config.host_classes.get(group.host_class)
        if host_class is None:
            raise _Problem(f'{where}.class: unknown host class "{group.host_class}"')
        names = _expand(group.names, f"{where}.names")
        addresses = _addresses(group, names, where)
        pattern = _compile_pattern(group.name_pattern, f"{where}.name_pattern")
        for name, address in zip(names, addresses, strict=True):
            if name in seen:
                raise _Problem(f'{where}.names: host "{name}" is already defined in {seen[name]}')
            seen[name] = where
            endpoint = (address, group.port)
            if endpoint in endpoints:
                raise _Problem(
                    f'{where}: host "{name}" has the same address and port as '
                    f'"{endpoints[endpoint]}" ({address}:{group.port})'
                )
            endpoints[endpoint] = name
            rack_name = _rack_for(group, name, pattern, where)
            rack = racks.get(rack_name)
            if rack is None:
                raise _Problem(f'{where}.rack: unknown rack "{rack_name}" (host "{name}")')
            hosts.append(
                Host(
                    name=name,
                    address=address,
                    port=group.port,
                    user=group.user or config.ssh.user,
                    site=rack.site,
                    rack=rack.name,
                    leaf=rack.leaf,
                    host_class=group.host_class,
                    expected_gpus=host_class.gpus,
                    gpu_model=host_class.gpu_model,
                    expected_ib_ports=host_class.ib_ports,
                    expected_ib_rate_gbps=host_class.ib_rate_gbps,
                    mode=group.mode,
                    python=group.python,
                    relay_command=group.relay_command,
                )
            )
    _check_relays(config, hosts)
    return hosts


def _check_relays(config: Config, hosts: list[Host]) -> None:
    """Every site relay names a relay host, and every relay host serves a site."""
    modes = {host.name: host.mode for host in hosts}
    served = set()
    for i, site in enumerate(config.sites):
        if site.relay is None:
            continue
        if site.relay not in modes:
            raise _Problem(f'sites[{i}].relay: unknown host "{site.relay}"')
        if modes[site.relay] != "relay":
            raise _Problem(f'sites[{i}].relay: host "{site.relay}" needs mode = "relay"')
        served.add(site.relay)
    for i, group in enumerate(config.hosts):
        if group.mode == "relay":
            for name in _expand(group.names, f"hosts[{i}].names"):
                if name not in served:
                    raise _Problem(
                        f'hosts[{i}].mode: relay host "{name}" is the relay of no site '
                        "(set sites[].relay)"
                    )


def _addresses(group: HostGroup, names: list[str], where: str) -> list[str]:
    if group.address is None:
        return names
    if "{name}" in group.address:
        return [group.address.replace("{name}", name) for name in names]
    addresses = _expand(group.address, f"{where}.address")
    if len(addresses) == len(names):
        return addresses
    raise _Problem(
        f"{where}.address: {len(addresses)} address(es) for {len(names)} hosts; "
        'give one per host or a template such as "{name}.mgmt"'
    )


def _compile_pattern(pattern: str | None, where: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _Problem(f"{where}: invalid regular expression: {exc}") from None


def _rack_for(group: HostGroup, name: str, pattern: re.Pattern[str] | None, where: str) -> str:
    if pattern is None:
        return group.rack
    match = pattern.search(name)
    if match is None:
        raise _Problem(f'{where}.name_pattern: does not match host "{name}"')
    try:
        return group.rack.format(**match.groupdict())
    except (KeyError, IndexError, ValueError) as exc:
        raise _Problem(f"{where}.rack: template needs a group the pattern lacks: {exc}") from None


def _duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for value in values:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    return repeated
