"""The event bus between the pipeline and supervisors.

Events are JSON-ready dicts with at least `type` and `call_id`. The in-process bus is the
default; the Redis bus (bus/redis.py) has the same interface and lets nodes scale out.
"""

from __future__ import annotations

from typing import Any, Protocol

from .memory import LocalFanout, MemoryBus, Subscription

Event = dict[str, Any]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class EventBus(Protocol):
    kind: str

    async def publish(self, event: Event) -> None: ...

    def subscribe(self) -> Subscription: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def redacted(url: str) -> str:
    """`url` with its password shown as `***`, for logs and error messages.

    Parsed by hand rather than with urlsplit, which gives up (or splits in the wrong place) on
    the very URLs that end up in an error message: no scheme, a bad port, an unescaped `@` or
    `/` in the password. Everything up to the last `@` is taken as the user info.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}{sep}{user}:***@{host}"


def create_bus(bus: str, prefix: str = "stream_server") -> EventBus:
    """`memory`, or a Redis URL (`redis://host:port/db`); started by the caller."""
    if bus == "memory":
        return MemoryBus()
    if bus.startswith(REDIS_SCHEMES):
        from .redis import RedisBus  # only nodes that use Redis need the client loaded

        return RedisBus(bus, prefix)
    raise ValueError(f"STREAM_SERVER_BUS must be 'memory' or a redis:// URL, not {redacted(bus)!r}")


__all__ = ["Event", "EventBus", "LocalFanout", "MemoryBus", "Subscription", "create_bus", "redacted"]
