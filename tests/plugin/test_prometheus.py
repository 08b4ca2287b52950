"""A real Prometheus (Debian's `prometheus`) scrapes the exporter plugin of an
`opsconsole poll` collecting from the simulated fleet; the test asks Prometheus's HTTP API
for a GPU temperature and for the tenant label of a leased GPU, and `promtool check
metrics` finds nothing to say about the page."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from opsconsole.config import load_fleet
from opsconsole.leases.allocate import LeaseRequest, allocate_lease
from opsconsole.leases.model import GpuSlot
from opsconsole.leases.tenants import create_tenant
from opsconsole.sim.server import SimServer
from opsconsole.store import open_store

pytestmark = pytest.mark.interop


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("OPSCONSOLE_REQUIRE_INTEROP"):
            pytest.fail(f"{tool} is not installed (CI installs the Debian prometheus package)")
        pytest.skip(f"{tool} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def query(prom_port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        answer = json.loads(get(url))
    except OSError:
        return []  # not up yet
    return answer["data"]["result"] if answer.get("status") == "success" else []


async def eventually(fn, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(fn)
        if result:
            return result
        await asyncio.sleep(0.2)
    return None


async def test_prometheus_scrapes_gpu_temperatures_and_lease_labels(tmp_path):
    prometheus, promtool = need("prometheus"), need("promtool")
    exporter_port, prom_port = free_port(), free_port()
    async with SimServer(2, seed=5) as server:
        config = server.write_files(tmp_path, interval_s=0.5)
        with config.open("a") as f:
            f.write(f"\n[plugins.prometheus]\nport = {exporter_port}\n")
        fleet = load_fleet(config)
        leased = fleet.hosts[0].name
        db = open_store(fleet.store_path)
        now = time.time()
        create_tenant(db, "acme", gpu_quota=8, operator="t", now_ts=now)
        request = LeaseRequest("acme", now, now + 86400, slots=(GpuSlot(leased, 0),))
        lease = allocate_lease(db, fleet, request, operator="t", now_ts=now)
        db.close()

        poll = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opsconsole", "poll", "--config", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: opsconsole\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter_port}']\n"
        )
        prom = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            temps = await eventually(
                lambda: query(prom_port, f'opsconsole_gpu_temperature_celsius{{host="{leased}"}}')
            )
            assert temps, "Prometheus never had a GPU temperature"
            by_gpu = {s["metric"]["gpu"]: s for s in temps}
            assert 10.0 < float(by_gpu["0"]["value"][1]) < 110.0
            assert by_gpu["0"]["metric"]["tenant"] == "acme"  # the slot's holder
            assert by_gpu["1"]["metric"].get("tenant", "") == ""  # Prometheus drops empty labels
            assert by_gpu["0"]["metric"]["rack"] == fleet.hosts[0].rack

            held = await eventually(
                lambda: query(prom_port, 'opsconsole_gpu_lease_info{tenant="acme"}')
            )
            assert held and held[0]["metric"]["host"] == leased
            assert held[0]["metric"]["lease"] == str(lease.id)

            page = await asyncio.to_thread(get, f"http://127.0.0.1:{exporter_port}/metrics")
            lint = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True)
            assert lint.returncode == 0, lint.stdout + lint.stderr
            assert (lint.stdout + lint.stderr).strip() == b""
        finally:
            prom.send_signal(signal.SIGTERM)
            poll.send_signal(signal.SIGTERM)
            await asyncio.wait_for(poll.communicate(), 30)
            await asyncio.to_thread(prom.wait, 30)
    assert poll.returncode == 0


def test_a_non_loopback_listen_needs_the_explicit_flag(tmp_path):
    from opsconsole.config import fleet_from_dict
    from opsconsole.errors import ConfigError
    from opsconsole.plugin.host import load_plugins
    from tests.alerts.fleet import RAW

    def fleet(table):
        return fleet_from_dict(RAW | {"plugins": {"prometheus": table}}, tmp_path / "o.toml")

    with pytest.raises(
        ConfigError, match=r"plugins\.prometheus: listen = \"0\.0\.0\.0\" is not loopback"
    ):
        load_plugins(fleet({"listen": "0.0.0.0"}))
    allowed = load_plugins(
        fleet({"listen": "0.0.0.0", "allow_non_loopback": True}), instantiate=False
    )
    assert next(s for s in allowed.statuses if s.name == "prometheus").state == "loaded"
