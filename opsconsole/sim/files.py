"""The files a console needs to watch a simulated fleet: known_hosts, the client key and
a config.toml in the console's own format, all side by side in one directory.

The TOML is formatted by hand (the standard library reads TOML but does not write it);
every string goes through `_q`, so a name can never break the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsconsole.errors import SimError
from opsconsole.sim.hardware import GPU_POWER_LIMIT_W, IB_DEVICES, IB_RATE_FULL
from opsconsole.sim.world import HOSTS_PER_RACK, SimFleet

CONFIG_NAME = "config.toml"
KNOWN_HOSTS_NAME = "known_hosts"
CLIENT_KEY_NAME = "id_ed25519"
HOST_OVERHEAD_W = 1800.0
SITE_TIMEZONES = {"SG1": "Asia/Singapore", "MY1": "Asia/Kuala_Lumpur"}
SIM_USER = "opsconsole"


def _q(text: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML ones)."""
    return json.dumps(text, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _q(value)
    return repr(value)


def rack_power_budget_kw(gpus_per_host: int) -> float:
    """A budget a rack of training hosts runs close to but under: ~92 % of flat-out."""
    flat_out_w = HOSTS_PER_RACK * (gpus_per_host * GPU_POWER_LIMIT_W + HOST_OVERHEAD_W)
    return round(flat_out_w * 0.92 / 1000.0, 1)


def config_toml(fleet: SimFleet, endpoints: dict[str, tuple[str, int]], interval_s: float) -> str:
    gpus = len(next(iter(fleet.hosts.values())).gpus)
    host_class = f"h200-{gpus}"
    lines = [
        f"# Written by `opsconsole sim serve`: {len(fleet.hosts)} simulated hosts on loopback,",
        f"# seed {fleet.seed}, scenario {fleet.scenario_name}. Paths are relative to this file.",
        "",
        "[store]",
        f"path = {_q('opsconsole.db')}",
        "",
        "[ssh]",
        f"known_hosts = {_q(KNOWN_HOSTS_NAME)}",
        f"identity_files = [{_q(CLIENT_KEY_NAME)}]",
        "use_ssh_config = false",
        f"user = {_q(SIM_USER)}",
        "",
        "[polling]",
        f"interval_s = {interval_s:g}",
        "",
    ]
    scenario = fleet.scenario
    if scenario.capacity_settings:
        lines += [
            "# The scenario shortens these so its findings show within minutes.",
            "[capacity]",
        ]
        lines += [f"{key} = {value!r}" for key, value in scenario.capacity_settings]
        lines += [""]
    for site in sorted({h.site for h in fleet.hosts.values()}, key=["SG1", "MY1"].index):
        lines += [
            "[[sites]]",
            f"name = {_q(site)}",
            f"description = {_q('simulated')}",
            f"timezone = {_q(SITE_TIMEZONES[site])}",
            f"country = {_q(site[:2])}",
            "",
        ]
    for rack, (site, leaf) in fleet.racks.items():
        budget_kw = dict(scenario.rack_budgets_kw).get(rack, rack_power_budget_kw(gpus))
        budget = [] if budget_kw is None else [f"power_budget_kw = {budget_kw:g}"]
        lines += [
            "[[racks]]",
            f"names = {_q(rack)}",
            f"site = {_q(site)}",
            f"leaf = {_q(leaf)}",
            *budget,
            f"host_overhead_w = {HOST_OVERHEAD_W:g}",
            "",
        ]
    lines += [
        f"[host_classes.{_q(host_class)}]",
        f"gpus = {gpus}",
        f"gpu_model = {_q('H200')}",
        f"ib_ports = {len(IB_DEVICES)}",
        f"ib_rate_gbps = {IB_RATE_FULL[0]:g}",
        "",
    ]
    lines += [
        "# What a healthy simulated node measures (see opsconsole/sim/tools.py).",
        "[validation]",
        *(f"{key} = {_toml_value(value)}" for key, value in scenario.validation_settings),
        "",
        f"[validation.classes.{_q(host_class)}]",
        "ib_write_bw_gbps = 360.0",
        "nvlink_link_gbps = 25.0",
        "pcie_gen_min = 5",
        "pcie_width_min = 16",
        f'nccl_busbw_gbps = {{ "{gpus}" = 420.0, "{2 * gpus}" = 320.0 }}',
        "",
    ]
    for name, host in fleet.hosts.items():
        address, port = endpoints[name]
        lines += [
            "[[hosts]]",
            f"names = {_q(name)}",
            f"address = {_q(address)}",
            f"port = {port}",
            f"rack = {_q(host.rack)}",
            f"class = {_q(host_class)}",
            "",
        ]
    return "\n".join(lines)


def known_hosts_text(endpoints: dict[str, tuple[str, int]], host_keys: dict[str, bytes]) -> str:
    """One `[address]:port key` line per host (OpenSSH's form for a non-22 port)."""
    lines = []
    for name, (address, port) in endpoints.items():
        algorithm, blob = host_keys[name].split()[:2]
        lines.append(f"[{address}]:{port} {algorithm.decode()} {blob.decode()}")
    return "\n".join(lines) + "\n"


def write_fleet_files(
    directory: str | os.PathLike[str],
    fleet: SimFleet,
    endpoints: dict[str, tuple[str, int]],
    host_public_keys: dict[str, bytes],
    client_private_key: bytes,
    client_public_key: bytes,
    interval_s: float = 2.0,
) -> Path:
    """Write the three files (and the client's .pub); returns the config path."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        key_path = out / CLIENT_KEY_NAME
        key_path.unlink(missing_ok=True)  # a fresh 0600 file, even over an old one
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(client_private_key)
        (out / f"{CLIENT_KEY_NAME}.pub").write_bytes(client_public_key)
        (out / KNOWN_HOSTS_NAME).write_text(known_hosts_text(endpoints, host_public_keys))
        config = out / CONFIG_NAME
        config.write_text(config_toml(fleet, endpoints, interval_s), encoding="utf-8")
    except OSError as exc:
        raise SimError(
            f"cannot write the simulator's files to {out}: {exc.strerror or exc}"
        ) from None
    return config
