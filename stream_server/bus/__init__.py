"""The event bus between the pipeline and supervisors.

Events are JSON-ready dicts with at least `type` and `call_id`. The in-process bus is the
default; a Redis implementation with the same interface lets nodes scale out.
"""

from __future__ import annotations

from typing import Any, Protocol

from .memory import MemoryBus, Subscription

Event = dict[str, Any]


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def subscribe(self) -> Subscription: ...


__all__ = ["Event", "EventBus", "MemoryBus", "Subscription"]
