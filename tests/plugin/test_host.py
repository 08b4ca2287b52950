"""Finding, loading and isolating plugins: the shipped folder, a site folder named in the
config, broken plugins (import error, a hook that raises, a hook that never returns, an
invalid config) reported once with their name while everything else carries on."""

from __future__ import annotations

import json
import logging
import threading
import time
from textwrap import dedent

import pytest

from opsconsole.alerts.engine import AlertEngine
from opsconsole.cli import main
from opsconsole.config import fleet_from_dict
from opsconsole.errors import ConfigError
from opsconsole.plugin.host import load_plugins
from opsconsole.plugin.isolation import PluginWorker
from tests.alerts.fleet import RAW, T0, feed, fleet_state, gpu, healthy
from tests.alerts.test_engine import INSTANT

NOTIFIER = """
from opsconsole.plugin import PluginConfig, PluginInfo, PluginKind
import threading

class Config(PluginConfig):
    mode: str = "ok"
    limit: int = 3

class Notifier:
    def __init__(self, config, context):
        self.config = config
        self.heard = []
        self.release = threading.Event()

    def notify(self, transitions):
        if self.config.mode == "hang":
            self.release.wait()
        if self.config.mode == "raise":
            raise RuntimeError("pager exploded")
        self.heard.extend(transitions)

    def close(self):
        self.release.set()

PLUGIN = PluginInfo(PluginKind.NOTIFIER, "{name}", "0.1", Config, Notifier)
"""


def site_fleet(tmp_path, plugins: dict, files: dict[str, str]):
    folder = tmp_path / "site-plugins"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(dedent(text))
    raw = RAW | {"plugin_dirs": ["site-plugins"], "plugins": plugins}
    path = tmp_path / "opsconsole.toml"
    return fleet_from_dict(raw, path), path


def write_config(path, plugins_toml: str) -> None:
    path.write_text(
        dedent(
            """
            plugin_dirs = ["site-plugins"]
            [[sites]]
            name = "SG1"
            [[racks]]
            names = "sg1-r01"
            site = "SG1"
            [host_classes.hgx]
            gpus = 2
            [[hosts]]
            names = "sg1-r01-n01"
            rack = "sg1-r01"
            class = "hgx"
            """
        )
        + dedent(plugins_toml)
    )


def status_of(plugins, name):
    return next(s for s in plugins.statuses if s.name == name)


def test_shipped_and_folder_plugins_are_found_and_only_configured_ones_load(tmp_path):
    fleet, _ = site_fleet(tmp_path, {"pager": {}}, {"pager": NOTIFIER.format(name="pager")})
    plugins = load_plugins(fleet)
    shipped = status_of(plugins, "webhook")
    assert (shipped.origin, shipped.state, shipped.enabled) == ("shipped", "disabled", False)
    pager = status_of(plugins, "pager")
    assert (pager.origin, pager.state, pager.kind, pager.version) == (
        "folder", "loaded", "notifier", "0.1",
    )  # fmt: skip
    plugins.close()


def test_import_error_is_reported_with_the_reason_and_the_rest_loads(tmp_path, caplog):
    files = {"broken": "import no_such_module_anywhere\n", "pager": NOTIFIER.format(name="pager")}
    fleet, _ = site_fleet(tmp_path, {"broken": {}, "pager": {}}, files)
    with caplog.at_level(logging.ERROR, logger="opsconsole.plugins"):
        plugins = load_plugins(fleet)
    broken = status_of(plugins, "broken")
    assert broken.state == "failed" and "no_such_module_anywhere" in broken.reason
    assert status_of(plugins, "pager").state == "loaded"
    lines = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("plugin broken:")
    plugins.close()


def test_an_import_that_hangs_is_reported_not_waited_for(tmp_path):
    files = {"sleepy": "import threading\nthreading.Event().wait()\n"}
    fleet, _ = site_fleet(tmp_path, {"sleepy": {}}, files)
    plugins = load_plugins(fleet, import_timeout_s=0.3)
    sleepy = status_of(plugins, "sleepy")
    assert sleepy.state == "failed" and "did not finish within 0.3 s" in sleepy.reason


def test_an_invalid_plugin_config_is_a_config_error_with_its_key_path(tmp_path):
    fleet, path = site_fleet(
        tmp_path, {"pager": {"limit": "many"}}, {"pager": NOTIFIER.format(name="pager")}
    )
    with pytest.raises(ConfigError) as caught:
        load_plugins(fleet)
    assert str(caught.value) == f'{path}: plugins.pager.limit: expected an integer, got "many"'


def test_a_configured_plugin_that_does_not_exist_is_a_config_error(tmp_path):
    fleet, _ = site_fleet(tmp_path, {"pagr": {}}, {"pager": NOTIFIER.format(name="pager")})
    with pytest.raises(ConfigError, match=r"plugins\.pagr: no plugin of that name"):
        load_plugins(fleet)


def test_a_hook_that_raises_is_retried_with_backoff_and_reported_once(caplog):
    calls: list[float] = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("receiver down")

    worker = PluginWorker("flaky", backoff_min_s=0.05, backoff_max_s=1.0)
    with caplog.at_level(logging.INFO, logger="opsconsole.plugins"):
        worker.submit("notify", flaky)
        assert worker.wait_idle(10)
    worker.close()
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.05 * 0.8  # it waited out the backoff
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["plugin flaky: notify raised RuntimeError: receiver down"]
    assert any("working again" in r.getMessage() for r in caplog.records)


def test_hung_is_reported_with_its_reason_before_the_watchdog_runs(caplog):
    """A loaded machine runs the watchdog timer late: whoever sees the hang first reports
    it, once, so a "hung" state never comes without its reason and its log line."""
    release, running = threading.Event(), threading.Event()
    worker = PluginWorker("stuck", timeout_s=30.0)
    with caplog.at_level(logging.ERROR, logger="opsconsole.plugins"):
        worker.submit("notify", lambda: (running.set(), release.wait(10)))
        assert running.wait(10)
        later = time.monotonic() + 60  # as if 60 s had passed and the timer had not fired
        health = worker.health(now=later)
        again = worker.health(now=later + 1)
    release.set()
    assert worker.wait_idle(10)
    worker.close()
    assert health.state == again.state == "hung"
    assert health.detail == "notify has not returned after 30 s"
    assert worker.failures == 1
    assert [r.getMessage() for r in caplog.records] == [
        "plugin stuck: notify has not returned after 30 s"
    ]


@pytest.mark.slow
def test_a_hook_that_never_returns_delays_neither_the_engine_nor_other_plugins(tmp_path, caplog):
    files = {"hangs": NOTIFIER.format(name="hangs"), "pager": NOTIFIER.format(name="pager")}
    fleet, _ = site_fleet(tmp_path, {"hangs": {"mode": "hang"}, "pager": {}}, files)
    plugins = load_plugins(fleet, worker_timeout_s=0.5)
    engine = AlertEngine(fleet.store_path, INSTANT, notifiers=plugins.notifiers())
    engine.resume(T0)
    state = fleet_state()
    with caplog.at_level(logging.ERROR, logger="opsconsole.plugins"):
        feed(state, T0, healthy(T0, gpus=[gpu(0, temp_c=95.0), gpu(1)]))
        done = threading.Event()
        recorder = threading.Thread(target=lambda: (engine.step(state, T0), done.set()))
        recorder.start()
        assert done.wait(10), "recording waited for a hung notifier"
        pager = next(p for p in plugins.loaded if p.info.name == "pager")
        hangs = next(p for p in plugins.loaded if p.info.name == "hangs")
        assert pager.worker.wait_idle(10) and len(pager.instance.heard) == 1
        deadline = time.monotonic() + 10
        while hangs.worker.health().state != "hung" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hangs.worker.health().state == "hung"
    hung_lines = [
        r for r in caplog.records if "plugin hangs: notify has not returned" in r.getMessage()
    ]
    assert len(hung_lines) == 1  # reported once, however long it hangs
    hangs.instance.release.set()
    engine.close()
    plugins.close()
    recorder.join()


def test_plugins_command_lists_found_enabled_and_failed_as_json(tmp_path, capsys):
    folder = tmp_path / "site-plugins"
    folder.mkdir()
    (folder / "pager.py").write_text(NOTIFIER.format(name="pager"))
    (folder / "broken.py").write_text("raise RuntimeError('half-written plugin')\n")
    config = tmp_path / "opsconsole.toml"
    write_config(
        config,
        '[plugins.pager]\nlimit = 5\n[plugins.broken]\n[plugins.webhook]\nformat = "smoke"\n'
        "[plugins.pagr]\n",
    )
    code = main(["plugins", "--config", str(config), "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["plugins"]}
    assert code == 1  # something enabled failed
    assert rows["pager"]["state"] == "loaded" and rows["pager"]["enabled"]
    assert rows["broken"]["state"] == "failed" and "half-written plugin" in rows["broken"]["reason"]
    assert rows["prometheus"]["state"] == "disabled" and rows["prometheus"]["origin"] == "shipped"
    assert (
        rows["webhook"]["state"] == "failed"
        and "plugins.webhook.format" in rows["webhook"]["reason"]
    )
    assert rows["pagr"]["state"] == "missing" and "no plugin of that name" in rows["pagr"]["reason"]


def test_entry_point_plugins_are_listed_without_importing_them(tmp_path, monkeypatch):
    import sys

    from opsconsole.plugin.discovery import discover

    dist = tmp_path / "site" / "acme_ops-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-ops\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[opsconsole.plugins]\nacme_pager = acme_ops_pager:PLUGIN\n"
    )
    (tmp_path / "site" / "acme_ops_pager.py").write_text(NOTIFIER.format(name="acme_pager"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found, _ = discover()
    (entry,) = [f for f in found if f.name == "acme_pager"]
    assert (entry.origin, entry.module, entry.attr) == ("entry-point", "acme_ops_pager", "PLUGIN")
    assert "acme_ops_pager" not in sys.modules  # found, not imported

    raw = RAW | {"plugins": {"acme_pager": {}}}
    plugins = load_plugins(fleet_from_dict(raw, tmp_path / "o.toml"))
    assert status_of(plugins, "acme_pager").state == "loaded"
    plugins.close()
    sys.modules.pop("acme_ops_pager", None)


def test_the_poll_status_line_and_console_header_name_plugins_in_trouble(tmp_path):
    from types import SimpleNamespace

    from opsconsole.cli.poll import status_line

    files = {
        "broken": "raise ImportError('half-written')\n",
        "pager": NOTIFIER.format(name="pager"),
    }
    fleet, _ = site_fleet(tmp_path, {"broken": {}, "pager": {}}, files)
    plugins = load_plugins(fleet)
    poller = SimpleNamespace(state=fleet_state(), writer=None, engine=None, plugins=plugins)
    line = status_line(poller)
    from opsconsole.plugin.runner import PluginPoller

    note = PluginPoller(poller, plugins, store_path=None).plugin_note  # the console's header
    plugins.close()
    assert line.endswith("; plugins: broken failed")  # pager is fine: not named
    assert note == "plugins: broken failed (opsconsole plugins)"
