"""Alert notifications outside the console: each alert POSTed to the webhook targets it matches.

The AlertNotifier subscribes to the bus like a supervisor socket and, for each `alert` event,
queues one delivery per matching target. Each target has its own bounded queue and one
sender, so a dead or slow receiver delays only its own deliveries, never the bus or the other
targets; when a queue is full the new delivery is dropped (counted, logged, reported failed).

A delivery is tried until the receiver answers 2xx, at most `attempts` times: connection
errors, timeouts, 408, 429 and 5xx are retried after doubling waits (a short Retry-After is
honoured); any other answer is the receiver refusing it and ends it at once. The
X-Stream-Server-Delivery header is the same on every try, so a receiver can drop a repeat.
A delivery that gives up is published as `webhook.failed`; recent ones are kept in memory
for GET /v1/webhooks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

import httpx

from .. import __version__
from ..bus import EventBus, Subscription
from .webhook_deliveries import Delivery, DeliveryLog, RetryPolicy, retry_after_s
from .webhook_formats import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, one_line, render, signature
from .webhook_targets import WebhookTarget, WebhookTargets

__all__ = ["AlertNotifier", "Delivery", "DeliveryLog", "RetryPolicy", "WebhookTarget", "WebhookTargets"]

log = logging.getLogger("stream_server.webhooks")

RETRY_STATUSES = frozenset({408, 429})  # and every 5xx
MAX_ERROR_CHARS = 300
MAX_RESPONSE_BYTES = 512  # of a refusal's body, for the log; a receiver may answer anything


class Attempt(NamedTuple):
    delivered: bool
    retry: bool = False
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None


class UrlRedaction(logging.Filter):
    """Rewrites httpx's own INFO line (`HTTP Request: POST <url> ...`) to show only the host of a
    target's URL: the rest of an incoming-webhook URL is its credential."""

    def __init__(self, targets: list[WebhookTarget]) -> None:
        super().__init__()
        self._shown: dict[str, str] = {}
        for target in targets:
            url = target.url.get_secret_value()
            shown = f"{url.partition('://')[0]}://{target.host}/***"
            self._shown[url] = self._shown[str(httpx.URL(url))] = shown  # as given, and as httpx prints it

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(url in message for url in self._shown):
            for url, shown in sorted(self._shown.items(), key=lambda item: -len(item[0])):
                message = message.replace(url, shown)
            record.msg, record.args = message, ()
        return True


class AlertNotifier:
    """Sends every `alert` on the bus to the webhook targets whose rule it matches."""

    def __init__(self, bus: EventBus, targets: list[WebhookTarget], policy: RetryPolicy | None = None,
                 timeout_s: float = 10.0, console_url: str | None = None, queue_size: int = 100,
                 log_size: int = 200, grace_s: float = 3.0) -> None:
        self.bus = bus
        self.targets = list(targets)
        self.policy = policy or RetryPolicy()
        self.timeout_s = timeout_s
        self.console_url = console_url
        self.grace_s = grace_s
        self.deliveries = DeliveryLog(log_size)
        self._queue_size = queue_size
        self._queues: dict[str, asyncio.Queue[tuple[Delivery, dict[str, Any]] | None]] = {}
        self._in_flight: dict[str, Delivery] = {}
        self._senders: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._client: httpx.AsyncClient | None = None
        self._redaction = UrlRedaction(self.targets)

    async def start(self) -> None:
        """Subscribe and start one sender per target; nothing at all without targets."""
        if not self.targets:
            return
        logging.getLogger("httpx").addFilter(self._redaction)
        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False,
                                         headers={"User-Agent": f"stream_server/{__version__} webhooks"})
        self._subscription = self.bus.subscribe()
        for target in self.targets:
            queue: asyncio.Queue[tuple[Delivery, dict[str, Any]] | None] = asyncio.Queue(self._queue_size)
            self._queues[target.name] = queue
            self._senders.append(asyncio.create_task(self._send_all(target, queue), name=f"webhook-{target.name}"))
        self._reader = asyncio.create_task(self._read(self._subscription), name="webhook-reader")
        # Names, formats and hosts only: an incoming-webhook URL is a credential.
        log.info("webhooks: alerts go to %s", ", ".join(f"{t.name} ({t.format}, {t.host})" for t in self.targets))

    async def stop(self) -> None:
        """Deliver what is queued for up to `grace_s`, then cancel; whatever was not sent is
        reported failed."""
        if self._reader is None or self._subscription is None or self._client is None:
            return
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        while not self._subscription.queue.empty():  # e.g. alerts of the calls the shutdown ended
            await self._route(self._subscription.queue.get_nowait())
        self._subscription.close()
        for queue in self._queues.values():
            if not queue.full():
                queue.put_nowait(None)  # "no more": the sender returns once the queue is empty
        _, late = await asyncio.wait(self._senders, timeout=self.grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        unsent = list(self._in_flight.values())
        for queue in self._queues.values():
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    unsent.append(item[0])
        for delivery in unsent:
            if delivery.status not in ("delivered", "failed"):
                await self._gave_up(delivery, "not delivered before the server shut down")
        await self._client.aclose()
        logging.getLogger("httpx").removeFilter(self._redaction)
        self._reader = None

    def report(self, limit: int = 100) -> dict[str, Any]:
        """What GET /v1/webhooks shows: targets (no URLs, no secrets), recent deliveries, counters."""
        log_ = self.deliveries
        return {"targets": [t.public() for t in self.targets], "deliveries": log_.recent(limit),
                "failed": log_.failed, "delivered": log_.delivered, "dropped": log_.dropped}

    async def _read(self, subscription: Subscription) -> None:
        async for event in subscription:
            try:
                await self._route(event)
            except Exception:  # one odd event must not end notifications for the rest of the run
                log.exception("webhooks: could not route event %r", event.get("type"))

    async def _route(self, event: dict[str, Any]) -> None:
        """Queue one delivery of an `alert` event per target that wants it; never waits."""
        if event.get("type") != "alert":
            return
        for target in self.targets:
            if not target.wants(event):
                continue
            delivery = Delivery(target.name, str(event.get("id", "")), str(event.get("call_id", "")),
                                str(event.get("category", "")), str(event.get("severity", "")))
            self.deliveries.add(delivery)
            queue = self._queues[target.name]
            try:
                queue.put_nowait((delivery, event))
            except asyncio.QueueFull:
                self.deliveries.dropped += 1
                await self._gave_up(delivery, f"dropped: {queue.qsize()} deliveries already waiting for this target")

    async def _send_all(self, target: WebhookTarget, queue: asyncio.Queue) -> None:
        while (item := await queue.get()) is not None:
            delivery, alert = item
            self._in_flight[target.name] = delivery  # left there if cancelled: stop() reports it
            try:
                await self._deliver(target, delivery, alert)
            except Exception as exc:  # a bad alert or receiver must not stop this target's sender
                log.exception("webhook %s: delivery %s failed unexpectedly", target.name, delivery.id)
                await self._gave_up(delivery, f"internal error: {type(exc).__name__}")
            del self._in_flight[target.name]

    async def _deliver(self, target: WebhookTarget, delivery: Delivery, alert: dict[str, Any]) -> None:
        body = render(target.format, alert, self.console_url)
        for attempt in range(1, self.policy.attempts + 1):
            delivery.attempts = attempt
            result = await self._attempt(target, delivery, body)
            delivery.http_status = result.http_status
            if result.delivered:
                delivery.last_error = None
                delivery.mark("delivered")
                self.deliveries.delivered += 1
                log.debug("webhook %s: delivered %s after %d attempts", target.name, delivery.id, attempt)
                return
            delivery.last_error = result.error
            if not result.retry or attempt == self.policy.attempts:
                break
            delivery.mark("retrying")
            await asyncio.sleep(self.policy.delay(attempt, result.retry_after))
        await self._gave_up(delivery, delivery.last_error or "failed")

    async def _attempt(self, target: WebhookTarget, delivery: Delivery, body: bytes) -> Attempt:
        assert self._client is not None
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery.id, EVENT_HEADER: "alert"}
        if target.secret is not None:  # signed afresh on every try: the timestamp is part of it
            headers[SIGNATURE_HEADER] = signature(target.secret.get_secret_value(), body)
        url = target.url.get_secret_value()
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole exchange, not just each read
                async with self._client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    excerpt = "" if 200 <= status < 300 else await _excerpt(response)
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(False, retry=True, error=f"timed out after {self.timeout_s:g} s")
        except httpx.TransportError as exc:
            # httpx messages may quote the URL, which is a secret: show the host instead.
            message = str(exc).replace(url, target.host) or "no detail"
            return Attempt(False, retry=True, error=f"{type(exc).__name__}: {message}"[:MAX_ERROR_CHARS])
        if 200 <= status < 300:
            return Attempt(True, http_status=status)
        retry = status in RETRY_STATUSES or status >= 500
        error = (f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}")[:MAX_ERROR_CHARS]
        after = retry_after_s(response.headers.get("retry-after")) if retry else None
        return Attempt(False, retry=retry, error=error, http_status=status, retry_after=after)

    async def _gave_up(self, delivery: Delivery, error: str) -> None:
        delivery.last_error = error
        delivery.mark("failed")
        self.deliveries.failed += 1
        log.warning("webhook %s: gave up on alert %s of call %s after %d attempts: %s", delivery.target,
                    delivery.alert_id, delivery.call_id, delivery.attempts, error)
        event = {"type": "webhook.failed", "call_id": delivery.call_id, "alert_id": delivery.alert_id,
                 "target": delivery.target, "attempts": delivery.attempts, "error": error,
                 "http_status": delivery.http_status}
        try:
            await self.bus.publish(event)
        except Exception:  # the log above already says it; the sender must carry on
            log.exception("webhook %s: could not publish webhook.failed", delivery.target)


async def _excerpt(response: httpx.Response) -> str:
    """The start of a refusal's body (Slack says why: `invalid_payload`, `no_service`...)."""
    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= MAX_RESPONSE_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status already says enough
    return one_line(data[:MAX_RESPONSE_BYTES].decode("utf-8", "replace"))
