"""The simulated fleet over real SSH: host keys, the agent stream, agentless, faults."""

from __future__ import annotations

import stat

import asyncssh
import pytest

from opsconsole.agent.agentless import AGENTLESS_COMMAND, parse_agentless_output
from opsconsole.agent.bundle import agent_command
from opsconsole.config import load_fleet
from opsconsole.wire import Hello, Sample, decode_line
from tests.support.sim import client_options

FIRST = "sg1-r01-n01"


async def connect(sim, name=FIRST, **kw):
    address, port = sim.hosts[name]
    return await asyncssh.connect(address, port, options=client_options(sim.files_dir, **kw))


async def next_message(process):
    line = await process.stdout.readline()
    assert line.endswith(b"\n"), f"stream ended: {line!r}"
    return decode_line(line[:-1])


async def sample_where(process, predicate, limit=40):
    """The first sample that satisfies predicate, reading at most `limit` messages."""
    for _ in range(limit):
        message = await next_message(process)
        if isinstance(message, Sample) and predicate(message):
            return message
    raise AssertionError("no matching sample")


def test_written_files(sim):
    directory = sim.files_dir
    assert stat.S_IMODE((directory / "id_ed25519").stat().st_mode) == 0o600
    lines = (directory / "known_hosts").read_text().splitlines()
    assert len(lines) == 3
    address, port = sim.hosts[FIRST]
    assert lines[0].startswith(f"[{address}]:{port} ssh-ed25519 AAAA")


def test_config_toml_loads_with_the_console_s_loader(sim):
    fleet = load_fleet(sim.files_dir / "config.toml")
    assert [(h.name, h.address, h.port) for h in fleet.hosts] == [
        (name, address, port) for name, (address, port) in sim.hosts.items()
    ]
    host = fleet.host(FIRST)
    assert (host.site, host.rack, host.leaf) == ("SG1", "sg1-r01", "sg1-leaf-01")
    assert (host.expected_gpus, host.gpu_model, host.expected_ib_ports) == (8, "H200", 8)
    assert host.expected_ib_rate_gbps == 400 and host.mode == "agent"
    assert fleet.racks["sg1-r01"].power_budget_kw > 0
    assert fleet.config.ssh.use_ssh_config is False
    assert fleet.resolve_path(fleet.config.ssh.known_hosts) == sim.files_dir / "known_hosts"
    assert fleet.resolve_path(fleet.config.ssh.identity_files[0]).exists()


async def test_agent_command_streams_hello_then_samples(sim):
    async with await connect(sim) as conn:
        process = await conn.create_process(agent_command(0.2), encoding=None)
        hello = await next_message(process)
        assert isinstance(hello, Hello) and hello.mode == "nvml"
        assert hello.host.hostname == FIRST and len(hello.gpus) == 8
        first, second = await next_message(process), await next_message(process)
        assert isinstance(first, Sample) and isinstance(second, Sample)
        assert second.seq == first.seq + 1 and second.ts > first.ts
        assert first.gpu_count == 8 and len(first.ib) == 8 and first.driver == "ok"
        process.stdin.write_eof()  # the agent exits when its stdin closes
        assert (await process.wait()).exit_status == 0


async def test_agentless_command_over_ssh(sim):
    async with await connect(sim) as conn:
        result = await conn.run(AGENTLESS_COMMAND, check=False)
    assert result.exit_status == 0
    sample = parse_agentless_output(result.stdout, 1, 0.0)
    assert sample["gpu_count"] == 8 and len(sample["ib"]) == 8


async def test_unknown_command_exits_127(sim):
    async with await connect(sim) as conn:
        result = await conn.run("racadm getsysinfo", check=False)  # ipmitool is simulated
    assert result.exit_status == 127
    assert result.stderr == "bash: racadm: command not found\n"


async def test_a_wrong_host_key_is_refused_by_the_client(sim, tmp_path):
    _, port = sim.hosts[FIRST]
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known = tmp_path / "stale_known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {impostor}")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await connect(sim, known_hosts=known)


async def test_host_unreachable_drops_connections_until_cleared(sim):
    address, port = sim.hosts[FIRST]
    conn = await connect(sim)
    process = await conn.create_process(agent_command(0.2), encoding=None)
    await next_message(process)
    await sim.inject(FIRST, "host_unreachable")
    await process.stdout.read()  # whatever was in flight, then the end of the stream
    await conn.wait_closed()
    with pytest.raises(OSError):
        await connect(sim)
    await sim.clear(FIRST, "host_unreachable")
    async with await connect(sim) as again:  # back on the same port, same host key
        assert sim.hosts[FIRST] == (address, port)
        assert (await again.run("true", check=False)).exit_status == 0


async def test_xid79_over_ssh(sim):
    async with await connect(sim) as conn:
        process = await conn.create_process(agent_command(0.2), encoding=None)
        await next_message(process)
        sim.fleet.host(FIRST).inject("xid79", gpu=6)
        sample = await sample_where(process, lambda s: s.events)
        assert [(e.code, e.gpu) for e in sample.events] == [(79, 6)]
        assert sample.gpus[6].state == "lost"
        process.stdin.write_eof()


@pytest.mark.slow
async def test_driver_hang_over_ssh_reports_unresponsive_then_recovers(sim):
    async with await connect(sim) as conn:
        process = await conn.create_process(agent_command(0.2), encoding=None)
        await next_message(process)
        await sim.inject(FIRST, "driver_hang")
        try:
            hung = await sample_where(process, lambda s: s.driver != "ok")
            assert hung.driver == "unresponsive"
            assert {g.state for g in hung.gpus} == {"unresponsive"}
        finally:
            await sim.clear(FIRST, "driver_hang")
        recovered = await sample_where(process, lambda s: s.driver == "ok")
        assert {g.state for g in recovered.gpus} == {"ok"}
        process.stdin.write_eof()


async def test_a_driver_hung_at_connect_time_costs_that_host_only(sim):
    hung, healthy = "sg1-r01-n01", "sg1-r01-n02"
    await sim.inject(hung, "driver_hang")
    try:
        async with await connect(sim, hung) as first, await connect(sim, healthy) as second:
            stuck = await first.create_process(agent_command(0.2), encoding=None)
            fine = await second.create_process(agent_command(0.2), encoding=None)
            hello = await next_message(stuck)
            assert isinstance(hello, Hello) and hello.gpus == []  # no inventory yet
            assert (await next_message(stuck)).driver == "unresponsive"
            assert len((await next_message(fine)).gpus) == 8
            stuck.stdin.write_eof()
            fine.stdin.write_eof()
    finally:
        await sim.clear(hung, "driver_hang")
