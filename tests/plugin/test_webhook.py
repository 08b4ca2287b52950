"""The webhook notifier against a real HTTP server on loopback: signed bodies, retries on
500 with backoff, giving up at the limit, and PagerDuty's dedup key across the life of one
alert driven through the real alert engine."""

from __future__ import annotations

import logging

import pytest

from opsconsole.alerts.engine import AlertEngine
from opsconsole.alerts.store import acknowledge
from opsconsole.config import fleet_from_dict
from opsconsole.errors import ConfigError
from opsconsole.plugin.host import load_plugins
from opsconsole.store import open_store
from tests.alerts.fleet import RAW, T0, feed, fleet_state, gpu, healthy
from tests.alerts.test_engine import INSTANT
from tests.plugin.receiver import Receiver, signature_ok

SECRET = "s3cret-do-not-log"
FAST = {"backoff_min_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 5.0}


def webhook_fleet(tmp_path, **table):
    return fleet_from_dict(RAW | {"plugins": {"webhook": table}}, tmp_path / "opsconsole.toml")


def engine_with_webhook(tmp_path, fleet):
    plugins = load_plugins(fleet)
    (status,) = [s for s in plugins.statuses if s.name == "webhook"]
    assert status.state == "loaded", status.reason
    engine = AlertEngine(fleet.store_path, INSTANT, notifiers=plugins.notifiers())
    engine.resume(T0)
    return engine, plugins


def hot(state, ts):
    feed(state, ts, healthy(ts, gpus=[gpu(0, temp_c=95.0), gpu(1)]))


@pytest.mark.slow
def test_signed_json_body_is_verified_by_the_receiver_and_the_secret_is_never_logged(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with Receiver() as receiver, caplog.at_level(logging.DEBUG):
        fleet = webhook_fleet(tmp_path, url=receiver.url, secret_env="HOOK_SECRET", **FAST)
        engine, plugins = engine_with_webhook(tmp_path, fleet)
        state = fleet_state()
        hot(state, T0)
        (alert,) = engine.step(state, T0)
        assert receiver.wait_for(lambda r: len(r.accepted()) == 1)
        engine.close()
        plugins.close()
    headers, body, _ = receiver.requests[0]
    assert signature_ok(SECRET.encode(), headers, body)
    assert not signature_ok(b"another key", headers, body)
    (sent,) = receiver.accepted()
    assert sent["transition"] == "firing" and sent["alert"]["id"] == alert.id
    assert sent["alert"]["labels"]["host"] == alert.labels["host"]
    assert SECRET not in caplog.text and SECRET not in body.decode()


@pytest.mark.slow
def test_retries_on_500_with_backoff_then_delivers(tmp_path):
    with Receiver([500, 500]) as receiver:
        fleet = webhook_fleet(tmp_path, url=receiver.url, max_attempts=5, **FAST)
        engine, plugins = engine_with_webhook(tmp_path, fleet)
        state = fleet_state()
        hot(state, T0)
        engine.step(state, T0)
        assert receiver.wait_for(lambda r: len(r.accepted()) == 1)
        engine.close()
        plugins.close()
    assert [status for _, _, status in receiver.requests] == [500, 500, 200]
    db = open_store(fleet.store_path)
    assert db.execute("SELECT count(*) FROM plugin_queue").fetchone()[0] == 0
    db.close()


@pytest.mark.slow
def test_gives_up_after_the_attempt_limit_and_says_so_once(tmp_path, caplog):
    with Receiver(default_status=500) as receiver, caplog.at_level(logging.WARNING):
        fleet = webhook_fleet(tmp_path, url=receiver.url, max_attempts=3, **FAST)
        engine, plugins = engine_with_webhook(tmp_path, fleet)
        state = fleet_state()
        hot(state, T0)
        engine.step(state, T0)
        (webhook,) = plugins.loaded
        assert receiver.wait_for(lambda r: webhook.instance.given_up == 1)
        engine.close()
        plugins.close()
    assert len(receiver.requests) == 3
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1 and "3 attempt" in gave_up[0].getMessage()
    assert receiver.url not in caplog.text  # the URL may carry a token: only host:port


@pytest.mark.slow
def test_pagerduty_dedup_key_is_stable_from_firing_through_ack_to_resolve(tmp_path, monkeypatch):
    key_file = tmp_path / "pd.key"
    key_file.write_text("R0UTING-KEY\n")
    with Receiver() as receiver:
        fleet = webhook_fleet(
            tmp_path, format="pagerduty", url=receiver.url, routing_key_file="pd.key", **FAST
        )
        engine, plugins = engine_with_webhook(tmp_path, fleet)
        state = fleet_state()
        hot(state, T0)
        (alert,) = engine.step(state, T0)
        console = open_store(fleet.store_path)
        acknowledge(console, alert.id, "alice", "looking", now_ts=T0 + 1)
        console.close()
        engine.step(state, T0 + 2)
        feed(state, T0 + 4)  # cooled down: the condition clears
        engine.step(state, T0 + 4)
        assert receiver.wait_for(lambda r: len(r.accepted()) == 3)
        engine.close()
        plugins.close()
    events = receiver.accepted()
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert len({e["dedup_key"] for e in events}) == 1
    assert all(e["routing_key"] == "R0UTING-KEY" for e in events)
    assert events[0]["payload"]["severity"] == alert.severity
    assert events[0]["payload"]["source"] == alert.labels["host"]
    db = open_store(fleet.store_path)  # the key is added at send time, never stored
    assert (
        db.execute("SELECT count(*) FROM plugin_queue WHERE payload LIKE '%R0UTING%'").fetchone()[0]
        == 0
    )
    db.close()


@pytest.mark.slow
def test_slack_body_has_text_and_colour(tmp_path):
    with Receiver() as receiver:
        fleet = webhook_fleet(tmp_path, format="slack", url=receiver.url, **FAST)
        engine, plugins = engine_with_webhook(tmp_path, fleet)
        state = fleet_state()
        hot(state, T0)
        engine.step(state, T0)
        assert receiver.wait_for(lambda r: len(r.accepted()) == 1)
        engine.close()
        plugins.close()
    (body,) = receiver.accepted()
    assert "FIRING" in body["text"] and "gpu_temp_high" in body["text"]
    assert body["attachments"][0]["color"].startswith("#")


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ({"url": "http://x", "max_attempts": "three"}, "plugins.webhook.max_attempts"),
        ({"url": "http://x", "colour": "red"}, "plugins.webhook.colour: unknown key"),
        ({"format": "pagerduty"}, "routing_key"),
        ({}, "a url is needed"),
    ],
)
def test_a_bad_webhook_table_is_one_line_naming_the_key(tmp_path, table, where):
    with pytest.raises(ConfigError) as caught:
        load_plugins(webhook_fleet(tmp_path, **table))
    assert where in str(caught.value) and "opsconsole.toml" in str(caught.value)
