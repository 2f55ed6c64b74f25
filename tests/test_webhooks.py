"""Alert webhooks against a real HTTP receiver on loopback: signatures, retries, routing,
Slack/Teams bodies, refusals, shutdown, start-up validation, and one live server end to end."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fixture_calls import load_call, simulate_args
from live_server import free_port, run_calls, start_server, stop_server
from pydantic import ValidationError
from pydantic_settings import SettingsError

from stream_server.alerts.alert import Alert
from stream_server.alerts.webhook_formats import verify_signature
from stream_server.alerts.webhooks import AlertNotifier, RetryPolicy, WebhookTarget
from stream_server.bus.memory import MemoryBus
from stream_server.config import Settings

SECRET = "whsec-test-3f9a"
CALLER = "+817098765403"


# -- a real receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread. Each path answers from its script: the n-th
    request gets the n-th answer, the last one repeating (default: 200)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                     body, time.monotonic()))
                    seen = sum(r.path == self.path for r in receiver.requests)
                    script = receiver._scripts.get(self.path, [Answer()])
                answer = script[min(seen, len(script)) - 1]
                time.sleep(answer.delay_s)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *_args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, *_args: object) -> None:
                pass  # a client that hung up on a slow answer (the timeout tests)

        self.server = Server(("127.0.0.1", 0), Handle)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer | int) -> None:
        self._scripts[path] = [a if isinstance(a, Answer) else Answer(a) for a in answers]

    def to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


# -- helpers --------------------------------------------------------------------------------


def alert_event(category: str = "threat", severity: str = "high", text: str = "I know where you live.",
                **fields: Any) -> dict[str, Any]:
    alert = Alert(call_id="call-1", category=category, severity=severity, score=0.97, text=text, start=67.4,
                  end=69.0, metadata={"from": CALLER, "utm_source": "yahoo", "utm_campaign": "mobile_plan_brand",
                                      "tracking_number": "+81120555003"}, **fields)
    return {"type": "alert", **alert.to_event()}


def json_target(receiver: Receiver, name: str, path: str, **rule: Any) -> WebhookTarget:
    return WebhookTarget(name=name, url=receiver.url(path), format="json", secret=SECRET, **rule)


@asynccontextmanager
async def notifying(*targets: WebhookTarget, attempts: int = 3, backoff_s: float = 0.05, timeout_s: float = 5.0,
                    **options: Any) -> AsyncIterator[tuple[MemoryBus, AlertNotifier]]:
    bus = MemoryBus()
    notifier = AlertNotifier(bus, list(targets), RetryPolicy(attempts=attempts, first_delay_s=backoff_s),
                             timeout_s, **options)
    await notifier.start()
    try:
        yield bus, notifier
    finally:
        await notifier.stop()


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def settled(notifier: AlertNotifier, count: int = 1) -> Callable[[], bool]:
    """True once `count` deliveries are delivered or failed."""
    return lambda: sum(d["status"] in ("delivered", "failed") for d in notifier.report()["deliveries"]) >= count


async def next_event(feed: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        async for event in feed:
            if event["type"] == kind:
                return event
        raise AssertionError("feed ended")

    return await asyncio.wait_for(find(), timeout)


def strings(value: Any) -> list[str]:
    """Every string anywhere in a decoded JSON body."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def elements(value: Any) -> list[dict[str, Any]]:
    """Every JSON object anywhere in a decoded body."""
    if isinstance(value, dict):
        return [value] + [e for v in value.values() for e in elements(v)]
    if isinstance(value, list):
        return [e for v in value for e in elements(v)]
    return []


# -- (a) signatures -------------------------------------------------------------------------


def test_a_json_delivery_is_signed_so_the_receiver_can_trust_it(receiver):
    event = alert_event()

    async def scenario() -> None:
        async with notifying(json_target(receiver, "audit", "/audit")) as (bus, notifier):
            await bus.publish(event)
            await wait_until(settled(notifier))

    asyncio.run(scenario())
    [request] = receiver.to("/audit")
    signature = request.headers["x-stream-server-signature"]
    assert verify_signature(SECRET, signature, request.body)
    assert not verify_signature("another-secret", signature, request.body)
    assert not verify_signature(SECRET, signature, request.body.replace(b"live", b"love"))
    assert not verify_signature(SECRET, signature, request.body, now=time.time() + 301)  # a replay, later
    assert not verify_signature(SECRET, None, request.body)
    assert request.headers["x-stream-server-delivery"] == f"{event['id']}:audit"
    assert request.headers["x-stream-server-event"] == "alert"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"type": "alert", "alert": {k: v for k, v in event.items() if k != "type"}}
    assert SECRET not in json.dumps(request.headers) + request.body.decode()


# -- (b) retries until delivered, then never again --------------------------------------------


def test_a_receiver_failing_twice_gets_the_alert_exactly_once_successfully(receiver):
    receiver.script("/flaky", 500, 502, 200)
    event = alert_event()

    async def scenario() -> AlertNotifier:
        async with notifying(json_target(receiver, "flaky", "/flaky"), attempts=6) as (bus, notifier):
            await bus.publish(event)
            await wait_until(settled(notifier))
            await asyncio.sleep(0.6)  # 12× the first backoff: any further try would have come
            return notifier

    notifier = asyncio.run(scenario())
    requests = receiver.to("/flaky")
    assert len(requests) == 3
    assert {r.headers["x-stream-server-delivery"] for r in requests} == {f"{event['id']}:flaky"}
    assert all(verify_signature(SECRET, r.headers["x-stream-server-signature"], r.body) for r in requests)
    assert requests[1].at - requests[0].at >= 0.05 and requests[2].at - requests[1].at >= 0.1  # doubling
    [delivery] = notifier.report()["deliveries"]
    assert delivery | {"queued_at": None, "updated_at": None} == {
        "id": f"{event['id']}:flaky", "target": "flaky", "alert_id": event["id"], "call_id": "call-1",
        "category": "threat", "severity": "high", "status": "delivered", "attempts": 3, "last_error": None,
        "http_status": 200, "queued_at": None, "updated_at": None}
    assert notifier.report()["failed"] == 0 and notifier.report()["delivered"] == 1


def test_a_429_waits_as_long_as_retry_after_asks(receiver):
    receiver.script("/busy", Answer(429, {"Retry-After": "1"}), 200)

    async def scenario() -> AlertNotifier:
        async with notifying(json_target(receiver, "busy", "/busy")) as (bus, notifier):
            await bus.publish(alert_event())
            await wait_until(settled(notifier))
            return notifier

    notifier = asyncio.run(scenario())
    first, second = receiver.to("/busy")
    assert second.at - first.at >= 0.95  # not the 0.05 s backoff
    assert notifier.report()["deliveries"][0]["status"] == "delivered"


# -- (c) a receiver that keeps failing is visible ---------------------------------------------


def test_a_delivery_that_gives_up_is_logged_and_published(receiver, caplog):
    caplog.set_level(logging.INFO)  # httpx logs each request's URL at INFO: it must not show the path
    receiver.script("/down/SECRETPATH", Answer(503, body=b"maintenance"))
    nobody = WebhookTarget(name="nobody", url=f"http://127.0.0.1:{free_port()}/T0/SECRETPATH", format="slack")
    event = alert_event()

    async def scenario() -> tuple[AlertNotifier, list[dict]]:
        async with notifying(json_target(receiver, "down", "/down/SECRETPATH"), nobody) as (bus, notifier):
            with bus.subscribe() as feed:
                await bus.publish(event)
                failures = [await next_event(feed, "webhook.failed"), await next_event(feed, "webhook.failed")]
            return notifier, failures

    notifier, failures = asyncio.run(scenario())
    assert len(receiver.to("/down/SECRETPATH")) == 3
    by_target = {f["target"]: f for f in failures}
    assert by_target["down"] == {"type": "webhook.failed", "call_id": "call-1", "alert_id": event["id"],
                                 "target": "down", "attempts": 3, "error": "HTTP 503: maintenance",
                                 "http_status": 503}
    assert by_target["nobody"]["attempts"] == 3 and by_target["nobody"]["error"].startswith("ConnectError")
    report = notifier.report()
    assert report["failed"] == 2
    assert {(d["target"], d["status"], d["attempts"]) for d in report["deliveries"]} == {
        ("down", "failed", 3), ("nobody", "failed", 3)}
    assert {"name": "nobody", "format": "slack", "host": nobody.host, "min_severity": "medium",
            "categories": []} in report["targets"]
    assert "SECRETPATH" not in json.dumps(report)
    assert f"webhook down: gave up on alert {event['id']} of call call-1 after 3 attempts" in caplog.text
    assert f"POST http://127.0.0.1:{receiver.port}/***" in caplog.text and "SECRETPATH" not in caplog.text


# -- (d) routing ----------------------------------------------------------------------------


def test_each_target_gets_only_the_alerts_its_rule_asks_for(receiver):
    targets = [
        json_target(receiver, "urgent", "/urgent", min_severity="high"),
        json_target(receiver, "insults", "/insults", min_severity="low", categories=["insult"]),
        json_target(receiver, "everything", "/everything", min_severity="low"),
        json_target(receiver, "default", "/default"),  # medium and up
    ]
    alerts = [alert_event("profanity", "low", "damn it"), alert_event("threat", "high"),
              alert_event("insult", "medium", "you idiot")]

    async def scenario() -> None:
        async with notifying(*targets) as (bus, notifier):
            for alert in alerts:
                await bus.publish(alert)
            await bus.publish({"type": "transcript.final", "call_id": "call-1", "text": "hello"})
            await wait_until(settled(notifier, 1 + 2 + 1 + 3))
            await asyncio.sleep(0.2)

    asyncio.run(scenario())

    def categories(path: str) -> list[str]:
        return sorted(r.json()["alert"]["category"] for r in receiver.to(path))

    assert categories("/urgent") == ["threat"]
    assert categories("/insults") == ["insult"]
    assert categories("/everything") == ["insult", "profanity", "threat"]
    assert categories("/default") == ["insult", "threat"]


# -- (e) Slack and Teams bodies ---------------------------------------------------------------


HOSTILE = "You <script>alert(1)</script> & <!channel> [click](https://evil.example) idiot\nsecond line"


def test_slack_and_teams_messages_carry_the_alert_without_letting_caller_text_become_markup(receiver):
    targets = [WebhookTarget(name="slack", url=receiver.url("/slack"), format="slack"),
               WebhookTarget(name="teams", url=receiver.url("/teams"), format="teams")]

    async def scenario() -> None:
        async with notifying(*targets, console_url="https://console.example.com/") as (bus, notifier):
            await bus.publish(alert_event("insult", "high", HOSTILE))
            await wait_until(settled(notifier, 2))

    asyncio.run(scenario())
    [slack_request], [teams_request] = receiver.to("/slack"), receiver.to("/teams")
    link = "https://console.example.com/calls/call-1"

    slack = slack_request.json()
    escaped = ("You &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt; [click](https://evil.example) "
               "idiot second line")
    assert escaped in slack["text"]
    assert any(s == f">{escaped}" for s in strings(slack["blocks"]))
    assert not any("<script>" in s or "<!channel>" in s for s in strings(slack))
    facts = " ".join(strings(slack["blocks"]))
    for expected in ("Insult alert · high", CALLER, "yahoo", "mobile_plan_brand", "+81120555003", "1:07"):
        assert expected in facts, expected
    assert {"type": "button", "text": {"type": "plain_text", "text": "Open call"}, "url": link} in elements(slack)

    teams = teams_request.json()
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    runs = [e["text"] for e in elements(card) if e.get("type") == "TextRun"]
    # TextRuns are never read as Markdown: the sentence arrives exactly as said, on one line.
    assert HOSTILE.replace("\n", " ") in runs
    assert not [e for e in elements(card) if e.get("type") == "TextBlock"]
    for expected in (CALLER, "yahoo", "mobile_plan_brand", "1:07"):
        assert expected in runs, expected
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open call", "url": link}]
    assert all(r.headers["content-type"] == "application/json" for r in (slack_request, teams_request))


# -- (f) refusals, slow receivers, shutdown ---------------------------------------------------


def test_a_4xx_refusal_is_not_retried(receiver):
    receiver.script("/gone", Answer(404, body=b"no_service"))

    async def scenario() -> AlertNotifier:
        async with notifying(WebhookTarget(name="gone", url=receiver.url("/gone"), format="slack"),
                             attempts=6) as (bus, notifier):
            await bus.publish(alert_event())
            await wait_until(settled(notifier))
            await asyncio.sleep(0.4)
            return notifier

    notifier = asyncio.run(scenario())
    assert len(receiver.to("/gone")) == 1
    [delivery] = notifier.report()["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["http_status"], delivery["last_error"]) == (
        "failed", 1, 404, "HTTP 404: no_service")


def test_a_slow_receiver_delays_only_its_own_target_and_times_out(receiver):
    receiver.script("/slow", Answer(200, delay_s=3.0))
    targets = [json_target(receiver, "slow", "/slow"), json_target(receiver, "fast", "/fast")]

    async def scenario() -> AlertNotifier:
        async with notifying(*targets, attempts=1, timeout_s=0.8) as (bus, notifier):
            await bus.publish(alert_event())
            started = time.monotonic()
            await wait_until(lambda: receiver.to("/fast"), timeout=0.5)  # while /slow still hangs
            await wait_until(settled(notifier, 2), timeout=3)
            assert time.monotonic() - started < 2.0
            return notifier

    notifier = asyncio.run(scenario())
    status = {d["target"]: (d["status"], d["last_error"]) for d in notifier.report()["deliveries"]}
    assert status == {"fast": ("delivered", None), "slow": ("failed", "timed out after 0.8 s")}


def test_shutdown_waits_briefly_for_in_flight_deliveries_then_reports_them_failed(receiver):
    receiver.script("/hang", Answer(200, delay_s=5.0))

    async def scenario() -> tuple[float, AlertNotifier, dict]:
        bus = MemoryBus()
        notifier = AlertNotifier(bus, [json_target(receiver, "hang", "/hang")], RetryPolicy(attempts=3),
                                 timeout_s=10, grace_s=0.3)
        await notifier.start()
        with bus.subscribe() as feed:
            await bus.publish(alert_event())
            await wait_until(lambda: receiver.to("/hang"))
            started = time.monotonic()
            await notifier.stop()
            return time.monotonic() - started, notifier, await next_event(feed, "webhook.failed", 1)

    took, notifier, failed = asyncio.run(scenario())
    assert took < 1.5
    assert failed["error"] == "not delivered before the server shut down"
    assert notifier.report()["deliveries"][0]["status"] == "failed"


def test_a_full_target_queue_drops_the_new_delivery_and_says_so(receiver):
    receiver.script("/slow", Answer(200, delay_s=0.4))
    alerts = [alert_event() for _ in range(3)]

    async def scenario() -> tuple[AlertNotifier, dict]:
        async with notifying(json_target(receiver, "slow", "/slow"), queue_size=1) as (bus, notifier):
            with bus.subscribe() as feed:
                await bus.publish(alerts[0])
                await wait_until(lambda: receiver.to("/slow"))  # in flight; the next one waits in the queue
                for alert in alerts[1:]:
                    await bus.publish(alert)
                failed = await next_event(feed, "webhook.failed")
                await wait_until(settled(notifier, 3))
            return notifier, failed

    notifier, failed = asyncio.run(scenario())
    assert failed["alert_id"] == alerts[2]["id"] and failed["error"].startswith("dropped: 1 deliveries already")
    report = notifier.report()
    assert (report["delivered"], report["failed"], report["dropped"]) == (2, 1, 1)
    assert len(receiver.to("/slow")) == 2


def test_retry_waits_double_with_a_little_jitter_up_to_a_minute():
    policy = RetryPolicy(attempts=10, first_delay_s=1.0)
    for failures, base in [(1, 1), (2, 2), (3, 4), (6, 32)]:
        assert base <= policy.delay(failures) <= base * 1.1
    assert all(policy.delay(failures) == 60 for failures in (8, 9, 30))


# -- (g) configuration ----------------------------------------------------------------------


def test_webhook_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_SERVER_WEBHOOKS", json.dumps([
        {"name": "ops", "url": "https://hooks.slack.com/services/T0/B0/SECRETPATH", "format": "slack"},
        {"name": "qa.audit", "url": "https://user:pw@audit.example.com:8443/in?key=SECRETQUERY", "format": "json",
         "secret": SECRET, "min_severity": "high", "categories": ["threat", "exposure"]},
    ]))
    settings = Settings(data_dir=tmp_path)
    ops, audit = settings.webhooks
    assert (ops.min_severity, ops.categories, ops.host) == ("medium", (), "hooks.slack.com")
    assert audit.public() == {"name": "qa.audit", "format": "json", "host": "audit.example.com:8443",
                              "min_severity": "high", "categories": ["threat", "exposure"]}
    assert (settings.webhook_attempts, settings.webhook_backoff_s, settings.webhook_timeout_s) == (6, 1.0, 10.0)
    assert "SECRET" not in repr(settings)


GOOD = {"name": "ops", "url": "https://hooks.example.com/T0/B0/SECRETPATH", "format": "json", "secret": SECRET}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([GOOD | {"url": "ftp://hooks.example.com/T0/B0/SECRETPATH"}],
         "webhook 'ops': url must be http:// or https://"),
        ([GOOD | {"url": "SECRETPATH"}], "url must be http:// or https://"),
        ([GOOD | {"format": "email"}], "Input should be 'slack', 'teams' or 'json'"),
        ([{k: v for k, v in GOOD.items() if k != "secret"}], "webhook 'ops': format json needs a secret"),
        ([GOOD | {"min_severity": "urgent"}], "Input should be 'low', 'medium', 'high' or 'critical'"),
        ([GOOD | {"categories": ["insluts"]}], "unknown alert categories ['insluts']"),
        ([GOOD, GOOD], "webhook names must be unique (they key deliveries): ['ops']"),
        ([GOOD | {"name": "ops team"}], "String should match pattern"),
        ([GOOD | {"severity": "high"}], "Extra inputs are not permitted"),
    ],
)
def test_a_bad_webhook_target_is_refused_with_a_message_that_keeps_its_secrets(monkeypatch, tmp_path, targets,
                                                                                message):
    monkeypatch.setenv("STREAM_SERVER_WEBHOOKS", json.dumps(targets))
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path)
    assert message in str(refused.value)
    assert "SECRETPATH" not in str(refused.value) and SECRET not in str(refused.value)


def test_webhooks_that_are_not_json_are_refused_naming_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_SERVER_WEBHOOKS", "https://hooks.slack.com/services/T0/B0/SECRETPATH")
    with pytest.raises(SettingsError, match='field "webhooks"') as refused:
        Settings(data_dir=tmp_path)
    assert "SECRETPATH" not in str(refused.value)


def test_serve_refuses_to_start_on_a_bad_webhook(tmp_path):
    env = dict(os.environ, STREAM_SERVER_WEBHOOKS=json.dumps([{k: v for k, v in GOOD.items() if k != "secret"}]))
    done = subprocess.run([sys.executable, "-m", "stream_server.cli", "serve", "--data-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "format json needs a secret" in done.stderr
    assert "SECRETPATH" not in done.stderr + done.stdout


# -- end to end: a live server, a fixture call --------------------------------------------------


def test_a_live_call_s_alerts_reach_slack_and_a_dead_receiver_shows_on_the_api_and_feed(receiver, tmp_path):
    receiver.script("/audit/SECRETPATH", 500)
    webhooks = [
        {"name": "ops", "url": receiver.url("/services/T0/B0/SECRETPATH"), "format": "slack", "min_severity": "low"},
        {"name": "audit", "url": receiver.url("/audit/SECRETPATH"), "format": "json", "secret": SECRET,
         "min_severity": "low"},
    ]
    server = start_server(tmp_path / "server", extra_env={
        "STREAM_SERVER_WEBHOOKS": json.dumps(webhooks), "STREAM_SERVER_WEBHOOK_ATTEMPTS": "2",
        "STREAM_SERVER_WEBHOOK_BACKOFF_S": "0.05", "STREAM_SERVER_CONSOLE_URL": "https://console.example.com"})
    try:
        run = asyncio.run(run_calls(server, {"abusive": simulate_args("en_abusive")}))["abusive"]
        alerts = run.of_type("alert")
        assert alerts, "the abusive fixture call raised no alert"
        with server.client() as http:
            deadline = time.monotonic() + 30
            while (report := http.get("/v1/webhooks").json())["delivered"] + report["failed"] < 2 * len(alerts):
                assert time.monotonic() < deadline, report
                time.sleep(0.2)
            assert httpx.get(f"{server.http}/v1/webhooks").status_code == 401  # no token
        log = server.log()
    finally:
        stop_server(server)

    # Slack got each alert once, with what a supervisor needs to act on it.
    slack = receiver.to("/services/T0/B0/SECRETPATH")
    assert sorted(r.headers["x-stream-server-delivery"] for r in slack) == sorted(f"{a['id']}:ops" for a in alerts)
    metadata = load_call("en_abusive").metadata
    for request in slack:
        text = " ".join(strings(request.json()))
        for expected in (metadata["from"], metadata["utm_source"], metadata["utm_campaign"],
                         f"https://console.example.com/calls/{run.call_id}"):
            assert expected in text, expected
    # The dead receiver: tried twice per alert, each failure on the live feed and in the API.
    assert len(receiver.to("/audit/SECRETPATH")) == 2 * len(alerts)
    failed_on_feed = run.of_type("webhook.failed")
    assert failed_on_feed and all(e["target"] == "audit" and e["call_id"] == run.call_id for e in failed_on_feed)
    assert {e["alert_id"] for e in failed_on_feed} <= {a["id"] for a in alerts}
    host = f"127.0.0.1:{receiver.port}"
    assert report["targets"] == [
        {"name": "ops", "format": "slack", "host": host, "min_severity": "low", "categories": []},
        {"name": "audit", "format": "json", "host": host, "min_severity": "low", "categories": []}]
    assert report["failed"] == len(alerts) and report["delivered"] == len(alerts)
    assert {(d["target"], d["status"], d["attempts"]) for d in report["deliveries"]} == {
        ("ops", "delivered", 1), ("audit", "failed", 2)}
    assert "SECRETPATH" not in json.dumps(report) and SECRET not in json.dumps(report)
    assert f"webhooks: alerts go to ops (slack, {host}), audit (json, {host})" in log
    assert "SECRETPATH" not in log and SECRET not in log
