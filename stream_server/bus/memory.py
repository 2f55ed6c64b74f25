"""In-process pub/sub: every subscriber gets every event, in order.

A slow supervisor socket must never slow the pipeline, so each subscriber has a bounded
queue; when it is full the oldest event is dropped and counted.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self


class Subscription:
    def __init__(self, fanout: LocalFanout, maxsize: int) -> None:
        self._fanout = fanout
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def deliver(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            self._fanout.dropped_deliveries += 1
        self.queue.put_nowait(event)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self._fanout._subscribers.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self.get()


class LocalFanout:
    """This process's subscribers; every bus implementation ends by handing events to it."""

    kind = "local"

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self.dropped_deliveries = 0  # every subscriber's, closed ones too: a counter for /metrics

    def fan_out(self, event: dict[str, Any]) -> None:
        for subscription in list(self._subscribers):
            subscription.deliver(event)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        """Nothing to connect to in-process; here so the app treats every bus alike."""

    async def stop(self) -> None:
        """See start()."""


class MemoryBus(LocalFanout):
    kind = "memory"

    async def publish(self, event: dict[str, Any]) -> None:
        self.fan_out(event)
