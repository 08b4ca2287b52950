"""`opsconsole serve` opened by a real headless Chromium: the page's terminal receives the
fleet view (host and rack names), and a screenshot goes to the test's directory. The
terminal is drawn by xterm.js on a canvas, so the text is read from the WebSocket frames
the page received (Chrome DevTools Protocol), which is what xterm.js drew."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
import urllib.request

import aiohttp
import pytest

from opsconsole.cli import main
from opsconsole.sim.server import SimServer

pytestmark = pytest.mark.interop
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,900",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("OPSCONSOLE_REQUIRE_INTEROP"):
            pytest.fail("chromium is not installed (CI installs the Debian chromium package)")
        pytest.skip("chromium is not installed")
    return path


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


async def wait_for(fn, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(fn)
        if value:
            return value
        await asyncio.sleep(0.1)
    return None


class DevTools:
    """Just enough of the Chrome DevTools Protocol: commands and the events they cause."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        call_id = self.next_id
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == call_id:
                return message.get("result", {})
            self.events.append(message)

    async def pump(self, seconds: float) -> None:
        try:
            while True:
                self.events.append(await asyncio.wait_for(self.ws.receive_json(), seconds))
        except TimeoutError:
            pass

    def terminal_text(self) -> str:
        out = b""
        for e in self.events:
            if e.get("method") == "Network.webSocketFrameReceived":
                frame = e["params"]["response"]
                data = frame["payloadData"]
                out += base64.b64decode(data) if frame.get("opcode") == 2 else data.encode()
        return ANSI.sub(b"", out).decode("utf-8", "replace")


def test_serve_refuses_a_non_loopback_bind_without_the_flag(tmp_path, capsys):
    code = main(["serve", "--host", "0.0.0.0", "--config", str(tmp_path / "x.toml")])
    err = capsys.readouterr().err
    assert code == 4 and "refusing to serve" in err and "--allow-non-loopback" in err


async def test_chromium_shows_the_fleet_view(tmp_path):
    browser = chromium()
    serve_port, devtools_port = free_port(), free_port()
    async with SimServer(2, seed=7) as server:
        config = server.write_files(tmp_path, interval_s=0.5)
        host = next(iter(server.hosts))
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opsconsole", "serve", "--config", str(config),
            "--port", str(serve_port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        chrome = await asyncio.create_subprocess_exec(
            browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}",
            f"--remote-debugging-port={devtools_port}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{serve_port}/"
            assert await wait_for(lambda: http_ok(url)), "opsconsole serve did not answer"
            targets = await wait_for(
                lambda: (
                    http_ok(f"http://127.0.0.1:{devtools_port}/json/version")
                    and json.load(urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json"))
                )
            )
            page = next(t for t in targets if t["type"] == "page")
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
                tools = DevTools(ws)
                await tools.call("Network.enable")
                await tools.call("Page.enable")
                await tools.call("Page.navigate", url=url)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # until both hosts report (or the deadline)
                    await tools.pump(0.5)
                    if host in tools.terminal_text() and "2 fresh" in tools.terminal_text():
                        break
                text = tools.terminal_text()
                shot = await tools.call("Page.captureScreenshot", format="png")
                (tmp_path / "serve.png").write_bytes(base64.b64decode(shot["data"]))
                await ws.close()
        finally:
            for process in (chrome, serve):
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            await asyncio.wait_for(asyncio.gather(chrome.wait(), serve.wait()), 30)
    assert host in text and "2 fresh" in text, text[-2000:]  # live, not just drawn
    assert server.fleet.host(host).rack in text
    assert "read-only" in text.lower() or "read only" in text.lower()
    assert (tmp_path / "serve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
