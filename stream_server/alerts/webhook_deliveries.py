"""Webhook deliveries as records: when to try again, and the log GET /v1/webhooks shows.

Kept in memory only (bounded): a delivery log is for seeing what is failing now, not an audit
trail; the alerts themselves are in the database.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.1  # up to +10%, so nodes retrying one receiver drift apart

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` failed tries; at least a Retry-After that is under the cap."""
        base = self.first_delay_s * 2 ** (failures - 1)
        delay = min(self.max_delay_s, base * (1 + random.uniform(0, self.jitter)))
        if retry_after is not None and retry_after <= self.max_delay_s:
            delay = max(delay, retry_after)
        return delay


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None if absent or unreadable."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Delivery:
    """One alert to one target, as the delivery log shows it."""

    target: str
    alert_id: str
    call_id: str
    category: str
    severity: str
    status: str = "queued"  # queued → retrying → delivered | failed
    attempts: int = 0
    last_error: str | None = None
    http_status: int | None = None
    queued_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        """The idempotency key sent as X-Stream-Server-Delivery on every try."""
        return f"{self.alert_id}:{self.target}"

    def mark(self, status: str) -> None:
        self.status, self.updated_at = status, time.time()

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for key in ("queued_at", "updated_at"):
            body[key] = datetime.fromtimestamp(body[key], UTC).isoformat()
        return {"id": self.id, **body}


class DeliveryLog:
    """The most recent deliveries (bounded) and counters since start."""

    def __init__(self, size: int = 200) -> None:
        self._recent: deque[Delivery] = deque(maxlen=size)
        self.delivered = self.failed = self.dropped = 0

    def add(self, delivery: Delivery) -> None:
        self._recent.append(delivery)

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        newest = list(reversed(self._recent))
        return [d.to_dict() for d in newest[:limit]]
