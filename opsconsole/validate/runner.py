"""Running a level's checks on hosts over SSH and judging each tool's output.

Hosts run in parallel, each host's checks one after another (two GPU tests at once on one
node would measure each other). Fabric checks come after every host's own checks: an
NCCL all-reduce across all the nodes (through the configured launcher, on the first
node) and `ib_write_bw` per InfiniBand device between neighbours in a ring, so each node
is measured against two others and a slow end can be told from a slow pair.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncssh

from opsconsole.collect.ssh import ConnectFailure, SshConnector
from opsconsole.config import Fleet, Host
from opsconsole.validate import judge
from opsconsole.validate.judge import Output
from opsconsole.validate.model import CheckResult, CheckStatus
from opsconsole.validate.settings import ValidationSettings

log = logging.getLogger("opsconsole.validate")

IB_SERVER_HEAD_START_S = 0.5
"""The ib_write_bw server must be listening before its client connects."""
OUTPUT_CAP_CHARS = 1 << 20


class CommandRunner(Protocol):
    """Runs one command on a host; never raises for the host's faults (they come back as
    an Output with exit_status None and the reason in stderr)."""

    async def run(self, host: Host, command: str, timeout_s: float) -> Output: ...

    async def close(self) -> None: ...


class SshCommandRunner:
    """One SSH connection per host for the run, opened with the collector's options (host
    keys checked) and closed at the end."""

    def __init__(self, connector: SshConnector):
        self._connector = connector
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, str] = {}

    async def _connection(self, host: Host) -> asyncssh.SSHClientConnection:
        lock = self._locks.setdefault(host.name, asyncio.Lock())
        async with lock:
            conn = self._conns.get(host.name)
            if conn is None or conn.is_closed():
                conn = await self._connector.connect(host)
                self._conns[host.name] = conn
            return conn

    async def run(self, host: Host, command: str, timeout_s: float) -> Output:
        failed = self._failed.get(host.name)
        if failed is not None:  # one connect timeout per host per run, not one per check
            return Output(command, None, "", failed)
        try:
            conn = await self._connection(host)
            result = await asyncio.wait_for(conn.run(command, check=False), timeout_s)
        except ConnectFailure as failure:
            self._failed[host.name] = f"ssh: {failure}"
            return Output(command, None, "", f"ssh: {failure}")
        except TimeoutError:
            return Output(command, None, "", f"timed out after {timeout_s:g} s")
        except (asyncssh.Error, OSError) as exc:
            return Output(command, None, "", f"ssh: {exc}")
        return Output(
            command,
            result.exit_status,
            _text(result.stdout)[:OUTPUT_CAP_CHARS],
            _text(result.stderr)[:OUTPUT_CAP_CHARS],
        )

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        for conn in self._conns.values():
            await conn.wait_closed()
        self._conns.clear()
        await self._connector.close()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""  # type: ignore[return-value]


async def run_checks(
    fleet: Fleet,
    settings: ValidationSettings,
    runner: CommandRunner,
    hosts: list[Host],
    *,
    level: str,
    fabric: bool,
    kill_leftovers: bool = True,
) -> list[CheckResult]:
    """Every check of `level` on every host, then the fabric checks when asked."""
    per_host = await asyncio.gather(
        *(_host_checks(settings, runner, host, level, kill_leftovers) for host in hosts)
    )
    checks = [c for host_checks in per_host for c in host_checks]
    if fabric:
        checks += await _fabric_checks(settings, runner, hosts, checks)
    return judge.attribute_pairs(checks)


async def _host_checks(
    settings: ValidationSettings, runner: CommandRunner, host: Host, level: str, kill: bool
) -> list[CheckResult]:
    commands = settings.config.commands
    timeout_s = settings.config.command_timeout_s
    limits = settings.thresholds(host)
    checks: list[CheckResult] = []

    async def run(command: str) -> Output:
        return await runner.run(host, command, timeout_s)

    if level == "clean":
        out = await run(commands.processes)
        check, pids = judge.judge_processes(host.name, out)
        if pids and kill:
            await run(commands.kill.format(pids=" ".join(str(p) for p in pids)))
            out = await run(commands.processes)
            check, pids = judge.judge_processes(host.name, out)
        checks.append(check)
        checks.append(judge.judge_gpu_reset(host.name, await run(commands.gpu_reset)))
        if check.status == CheckStatus.ERROR and checks[-1].status == CheckStatus.ERROR:
            return checks  # the host cannot be reached: no point trying the rest
    dcgm_level = settings.dcgm_level("quick" if level == "clean" else level)
    out = await run(commands.dcgm.format(dcgm_level=dcgm_level))
    checks.append(judge.judge_dcgm(host.name, out, dcgm_level))
    checks.append(judge.judge_pcie(host.name, await run(commands.pcie), limits))
    checks.append(judge.judge_nvlink(host.name, await run(commands.nvlink), limits))
    checks.append(
        judge.judge_ib_ports(host.name, await run(commands.ib_ports), host.expected_ib_rate_gbps)
    )
    if level in ("standard", "long"):
        gpus = host.expected_gpus
        out = await run(commands.nccl_local.format(gpus=gpus))
        checks.append(judge.judge_nccl("nccl_local", [host.name], out, gpus, limits))
    return checks


async def _fabric_checks(
    settings: ValidationSettings,
    runner: CommandRunner,
    hosts: list[Host],
    host_checks: list[CheckResult],
) -> list[CheckResult]:
    commands = settings.config.commands
    timeout_s = settings.config.command_timeout_s
    names = [h.name for h in hosts]
    if len(hosts) < 2:
        return [
            CheckResult(
                "fabric", tuple(names), CheckStatus.SKIP, "fabric checks need two or more nodes"
            )
        ]
    checks = []
    ranks = sum(h.expected_gpus for h in hosts)
    slots = ",".join(f"{h.name}:{h.expected_gpus}" for h in hosts)
    out = await runner.run(
        hosts[0], commands.nccl_fabric.format(ranks=ranks, host_slots=slots), timeout_s
    )
    limits = settings.thresholds(hosts[0])
    checks.append(judge.judge_nccl("nccl_fabric", names, out, ranks, limits))
    devices = _active_devices(host_checks, names)
    pairs = [(hosts[i], hosts[(i + 1) % len(hosts)]) for i in range(len(hosts))]
    if len(hosts) == 2:
        pairs = pairs[:1]
    for device in devices:
        results = await asyncio.gather(
            *(_ib_pair(settings, runner, server, client, device) for server, client in pairs)
        )
        checks.extend(results)
    return checks


def _active_devices(checks: list[CheckResult], names: list[str]) -> list[str]:
    """Devices ACTIVE on every host (a port down is already a failed ib_ports check)."""
    per_host = []
    for check in checks:
        if check.name == "ib_ports" and check.hosts[0] in names:
            ports = check.figures.get("ports", [])
            per_host.append({p["device"] for p in ports if p.get("state") == "ACTIVE"})
    if not per_host:
        return []
    return sorted(set.intersection(*per_host))


async def _ib_pair(
    settings: ValidationSettings, runner: CommandRunner, server: Host, client: Host, device: str
) -> CheckResult:
    commands = settings.config.commands
    timeout_s = settings.config.command_timeout_s
    fields = {"device": device, "server": server.name, "server_address": server.address}
    server_task = asyncio.ensure_future(
        runner.run(server, commands.ib_server.format(**fields), timeout_s)
    )
    try:
        await asyncio.sleep(IB_SERVER_HEAD_START_S)
        out = await runner.run(client, commands.ib_client.format(**fields), timeout_s)
    finally:
        await server_task
    limits = settings.thresholds(client)
    return judge.judge_ib_pair(server.name, client.name, device, out, limits)
