"""`webhook`: alert transitions POSTed to a URL as generic JSON, Slack or PagerDuty.

Delivery is durable and off every hot path: `notify` (on the plugin's worker thread)
writes the bodies into the store's plugin queue and wakes the sender thread, which POSTs
them oldest first and retries failures with exponential backoff and jitter until
`max_attempts`. What is queued survives a kill -9 and is sent after the restart. Secrets
(the HMAC key, PagerDuty's routing key, a Slack URL) are read from the environment or a
file, are never written to the queue or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from opsconsole.plugin import (
    AlertTransition,
    PluginConfig,
    PluginContext,
    PluginError,
    PluginInfo,
    PluginKind,
    Severity,
    TransitionKind,
)
from opsconsole.plugin.queue import DurableQueue

from .bodies import PAGERDUTY_URL, generic, pagerduty, slack

TransitionName = Literal["firing", "acknowledged", "unacknowledged", "resolved", "refired"]
"""`TransitionKind`'s values, as the config file names them."""

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
RETRY_STATUSES = {408, 425, 429}
"""Besides 5xx: the receiver asks us to come back later."""


class WebhookConfig(PluginConfig):
    format: Literal["json", "slack", "pagerduty"] = "json"
    url: str | None = None
    """Where to POST. PagerDuty defaults to its Events v2 endpoint."""
    url_env: str | None = None
    """Read the URL from this environment variable instead (a Slack URL is a secret)."""
    url_file: str | None = None
    secret_env: str | None = None
    """HMAC-SHA256 key for the signature header, from this environment variable..."""
    secret_file: str | None = None
    """...or from this file (first line)."""
    routing_key_env: str | None = None
    """PagerDuty integration key (format = "pagerduty"), from the environment or a file."""
    routing_key_file: str | None = None
    signature_header: str = "X-Opsconsole-Signature-256"
    transitions: list[TransitionName] = Field(
        default_factory=lambda: [TransitionKind(k).value for k in get_args(TransitionName)]
    )
    """Which transitions to send."""
    min_severity: Annotated[Severity, Field(strict=False)] = Severity.INFO
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_min_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)
    queue_max: int = Field(1000, ge=1, le=1_000_000)
    """Messages kept while the receiver is down; the oldest go first past this."""

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        given = [k for k in ("url", "url_env", "url_file") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one of url, url_env, url_file, not {' and '.join(given)}")
        if not given and self.format != "pagerduty":
            raise ValueError("a url is needed (url, url_env or url_file)")
        if self.format == "pagerduty" and not (self.routing_key_env or self.routing_key_file):
            raise ValueError("format pagerduty needs routing_key_env or routing_key_file")
        if self.secret_env and self.secret_file:
            raise ValueError("give one of secret_env, secret_file")
        return self


class WebhookNotifier:
    def __init__(self, config: WebhookConfig, context: PluginContext):
        if context.store_path is None:
            raise PluginError("webhook needs the store for its delivery queue")
        self.config = config
        self.log = context.log
        self._url = (
            context.secret(env=config.url_env, file=config.url_file, what="url")
            or config.url
            or PAGERDUTY_URL
        )
        self._where = urlsplit(self._url).netloc or "?"  # logged instead of the URL
        secret = context.secret(env=config.secret_env, file=config.secret_file, what="secret")
        self._secret = secret.encode() if secret else None
        self._routing_key = context.secret(
            env=config.routing_key_env, file=config.routing_key_file, what="routing key"
        )
        self.queue = DurableQueue(context.store_path, context.name, max_items=config.queue_max)
        self.sent = 0
        self.given_up = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failing = False
        self._sender = threading.Thread(target=self._send_loop, name="webhook-sender", daemon=True)
        self._sender.start()  # what a previous run left queued goes out now

    # --- the plugin worker's side ---

    def notify(self, transitions: Sequence[AlertTransition]) -> None:
        wanted = set(self.config.transitions)
        floor = SEVERITY_RANK[self.config.min_severity]
        bodies = [
            self._body(t)
            for t in transitions
            if str(t.kind) in wanted and SEVERITY_RANK.get(t.alert.severity, 2) >= floor
        ]
        if bodies:
            self.queue.put(bodies, time.time())
            self._wake.set()

    def _body(self, t: AlertTransition) -> dict[str, Any]:
        if self.config.format == "slack":
            return slack(t)
        if self.config.format == "pagerduty":
            return pagerduty(t, routing_key="")  # the key is added at send time, never stored
        return generic(t)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._sender.join(self.config.timeout_s + 1)
        self.queue.close()

    # --- the sender thread ---

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for item in self.queue.due(now):
                if self._stop.is_set():
                    return
                self._deliver(item.id, item.payload, item.attempts)
            next_ts = self.queue.next_due_ts()
            wait = 60.0 if next_ts is None else max(0.0, min(60.0, next_ts - time.time()))
            self._wake.wait(wait)
            self._wake.clear()

    def _deliver(self, item_id: int, payload: dict[str, Any], attempts: int) -> None:
        if self.config.format == "pagerduty":
            payload = payload | {"routing_key": self._routing_key}
        body = json.dumps(payload, separators=(",", ":")).encode()
        status, error = self.post(body)
        if error is None:
            self.queue.done(item_id)
            self.sent += 1
            if self._failing:
                self.log.info("webhook %s: delivering again", self._where)
                self._failing = False
            return
        attempt = attempts + 1
        retryable = status is None or status >= 500 or status in RETRY_STATUSES
        if not retryable or attempt >= self.config.max_attempts:
            self.queue.done(item_id)
            self.given_up += 1
            self.log.error(
                "webhook %s: gave up on a message after %d attempt(s): %s",
                self._where, attempt, error,
            )  # fmt: skip
            return
        if not self._failing:
            self.log.warning("webhook %s: %s; retrying with backoff", self._where, error)
            self._failing = True
        step = min(self.config.backoff_max_s, self.config.backoff_min_s * 2 ** (attempt - 1))
        due = time.time() + step * random.uniform(0.5, 1.0)  # jitter: receivers recover
        self.queue.retry(item_id, due, error)

    def post(self, body: bytes) -> tuple[int | None, str | None]:
        """POST one body: (HTTP status or None, error text or None when delivered)."""
        headers = {"Content-Type": "application/json", "User-Agent": "opsconsole-webhook"}
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers[self.config.signature_header] = f"sha256={digest}"
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                response.read(65536)
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, f"{type(exc).__name__}: {reason}"


PLUGIN = PluginInfo(
    kind=PluginKind.NOTIFIER,
    name="webhook",
    version="1.0",
    config_schema=WebhookConfig,
    factory=WebhookNotifier,
    description="alert transitions to a webhook: JSON, Slack or PagerDuty Events v2",
)
