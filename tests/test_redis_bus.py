"""The Redis event bus against the real Redis on 127.0.0.1:6379.

Two RedisBus instances in one process stand for two nodes; each test uses its own key
prefix, so runs (and other tests using the same Redis) never see each other's events.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
from fixture_calls import simulate_args
from live_server import free_port, run_calls, start_server, stop_server

from stream_server.bus import Subscription, create_bus
from stream_server.bus.redis import BusUnavailable, RedisBus

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(
    not _redis_answers(), reason=f"no Redis answers on {REDIS_HOST}:{REDIS_PORT} (.ci/run starts redis-server)"
)


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test-bus-{uuid.uuid4().hex[:8]}"
    yield prefix
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT).delete(f"{prefix}:events")


@asynccontextmanager
async def node(prefix: str, url: str = REDIS_URL, **options: int) -> AsyncIterator[RedisBus]:
    bus = RedisBus(url, prefix, **options)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def take(subscription: Subscription, count: int, timeout: float = 10) -> list[dict]:
    return [await asyncio.wait_for(subscription.get(), timeout) for _ in range(count)]


async def nothing_more(subscription: Subscription, wait: float = 0.5) -> None:
    await asyncio.sleep(wait)
    assert subscription.queue.empty(), f"unexpected: {subscription.queue.get_nowait()}"


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def event(n: int, origin: str) -> dict:
    return {"type": "transcript.final", "call_id": f"call-{origin}", "n": n, "text": "お客様 ✓"}


def test_every_subscriber_on_every_node_gets_every_event_once_in_one_order(prefix):
    async def scenario() -> None:
        async with node(prefix) as a, node(prefix) as b:
            a1, a2, b1 = a.subscribe(), a.subscribe(), b.subscribe()
            for n in range(20):
                await a.publish(event(n, "a"))
                await b.publish(event(n, "b"))
            got = [await take(s, 40) for s in (a1, a2, b1)]
            for s in (a1, a2, b1):
                await nothing_more(s)
        assert got[0] == got[1] == got[2]  # same events, same order, on both nodes
        for origin in ("a", "b"):
            assert [e["n"] for e in got[0] if e["call_id"] == f"call-{origin}"] == list(range(20))
        assert got[0][0]["text"] == "お客様 ✓"

    asyncio.run(scenario())


def test_a_node_delivers_only_what_was_published_after_it_started(prefix):
    async def scenario() -> None:
        async with node(prefix) as a:
            await a.publish(event(0, "a"))
            first = a.subscribe()
            await take(first, 1)
            async with node(prefix) as late:
                joined = late.subscribe()
                await a.publish(event(1, "a"))
                assert [e["n"] for e in await take(joined, 1)] == [1]
                await nothing_more(joined)

    asyncio.run(scenario())


def test_a_slow_subscriber_loses_its_oldest_events_not_anyone_elses(prefix):
    async def scenario() -> None:
        async with node(prefix, queue_size=5) as a, node(prefix) as b:
            slow, other = a.subscribe(), b.subscribe()
            for n in range(12):
                await a.publish(event(n, "a"))
            assert [e["n"] for e in await take(other, 12)] == list(range(12))
            await until(lambda: slow.dropped + slow.queue.qsize() == 12)
            assert slow.dropped == 7
            assert [e["n"] for e in await take(slow, 5)] == list(range(7, 12))

    asyncio.run(scenario())


def test_an_entry_sent_twice_after_a_lost_reply_is_delivered_once(prefix):
    async def scenario() -> None:
        async with node(prefix) as a:
            subscription = a.subscribe()
            raw = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT)
            fields = {"n": "othernode", "s": 1, "e": json.dumps(event(1, "x"))}
            await raw.xadd(f"{prefix}:events", fields)
            await raw.xadd(f"{prefix}:events", fields)  # the writer's retry of a batch Redis did apply
            await raw.aclose()
            assert [e["n"] for e in await take(subscription, 1)] == [1]
            await nothing_more(subscription)

    asyncio.run(scenario())


def test_a_killed_connection_is_reopened_and_nothing_is_lost_or_repeated(prefix):
    async def scenario() -> None:
        async with node(prefix) as a, node(prefix) as b:
            on_a, on_b = a.subscribe(), b.subscribe()
            await a.publish(event(0, "a"))
            await take(on_a, 1)
            await take(on_b, 1)
            admin = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
            killed = [c["id"] for c in admin.client_list() if c["name"].startswith(f"stream_server-bus-{a.node}")]
            for client_id in killed:
                admin.client_kill_filter(_id=client_id)
            assert killed, "found none of node A's connections to kill"
            await b.publish(event(1, "b"))  # while A's reader is reconnecting
            await a.publish(event(2, "a"))
            for subscription in (on_a, on_b):
                assert sorted(e["n"] for e in await take(subscription, 2)) == [1, 2]
                await nothing_more(subscription)

    asyncio.run(scenario())


class Link:
    """A TCP relay to Redis that a test cuts and restores, as a network outage would."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._sockets: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._sockets:
            writer.transport.abort()
        self._sockets.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection(REDIS_HOST, REDIS_PORT)
        self._sockets |= {client_writer, redis_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(client_reader, redis_writer), pipe(redis_reader, client_writer))


def test_events_published_while_redis_is_unreachable_arrive_when_it_returns(prefix):
    async def scenario() -> None:
        link = Link()
        await link.up()
        async with node(prefix, link.url, outbox_size=3) as a, node(prefix) as b:
            on_a, on_b = a.subscribe(), b.subscribe()
            await a.publish(event(0, "a"))
            await take(on_a, 1)
            await take(on_b, 1)
            await link.cut()
            await until(lambda: not a.connected)
            for n in range(1, 4):
                await b.publish(event(n, "b"))  # B is fine: its own supervisors see these at once
            assert [e["n"] for e in await take(on_b, 3)] == [1, 2, 3]
            began = time.monotonic()
            for n in range(1, 6):
                await a.publish(event(n, "a"))  # the pipeline on A must not wait for Redis
            assert time.monotonic() - began < 0.05
            assert a.dropped_publishes == 2 and a.outbox_depth == 3  # the outbox keeps the newest 3
            await link.up()
            got_a = await take(on_a, 6, timeout=20)
            assert [e["n"] for e in got_a if e["call_id"] == "call-b"] == [1, 2, 3]  # replayed from the stream
            assert [e["n"] for e in got_a if e["call_id"] == "call-a"] == [3, 4, 5]
            assert [e["n"] for e in await take(on_b, 3)] == [3, 4, 5]
            await until(lambda: a.connected)
            for subscription in (on_a, on_b):
                await nothing_more(subscription)

    asyncio.run(scenario())


def test_start_fails_naming_the_url_when_redis_is_down():
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(BusUnavailable, match=f"cannot reach Redis at redis://:\\*\\*\\*@127.0.0.1:{url.split(':')[-1]}") as error:
        asyncio.run(RedisBus(url).start())
    assert "s3cret" not in str(error.value)


def test_an_unknown_bus_setting_is_refused():
    with pytest.raises(ValueError, match="redis://"):
        create_bus("kafka://somewhere")


def test_a_server_whose_redis_is_down_exits_with_the_url(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RuntimeError, match="server exited") as error:
        start_server(tmp_path, {"STREAM_SERVER_BUS": url}, timeout=60)
    assert f"cannot reach Redis at {url}" in str(error.value)


def test_a_supervisor_on_one_server_sees_every_event_of_a_call_on_another_once(tmp_path, prefix):
    env = {"STREAM_SERVER_BUS": REDIS_URL, "STREAM_SERVER_BUS_PREFIX": prefix}
    ingest = start_server(tmp_path / "a", env)
    try:
        gateway = start_server(tmp_path / "b", env)
        try:
            health = httpx.get(f"{gateway.http}/healthz").json()
            assert (health["bus"], health["bus_connected"]) == ("redis", True)
            runs = asyncio.run(run_calls(ingest, {"abusive": simulate_args("en_abusive")}, timeout=180,
                                         supervisor=gateway))
        finally:
            stop_server(gateway)
        run = runs["abusive"]
        assert len(run.of_type("call.started")) == 1 and len(run.of_type("call.ended")) == 1
        alert_ids = [a["id"] for a in run.of_type("alert")]
        assert alert_ids and len(alert_ids) == len(set(alert_ids))
        with ingest.client() as http:
            stored = http.get(f"/v1/calls/{run.call_id}").json()
        assert sorted(alert_ids) == sorted(a["id"] for a in stored["alerts"])  # every alert, once each
        assert run.events[0]["type"] == "call.started" and run.events[-1]["type"] == "call.ended"
    finally:
        stop_server(ingest)


def test_events_redis_cannot_encode_or_json_cannot_hold_are_dropped_and_the_bus_goes_on(prefix):
    """A lone surrogate (caller text) must not kill the writer; an event that is not JSON is
    refused at publish. Either way the events after it still arrive."""
    async def scenario() -> None:
        async with node(prefix) as a, node(prefix) as b:
            received = b.subscribe()
            await a.publish({"type": "transcript.final", "text": "\udc80 lone surrogate"})
            await a.publish({"type": "transcript.final", "text": object()})
            await a.publish(event(1, "a"))
            first, second = await take(received, 2)
            assert first["text"] == "\udc80 lone surrogate" and second["n"] == 1
            assert a.dropped_publishes == 1

    asyncio.run(scenario())
