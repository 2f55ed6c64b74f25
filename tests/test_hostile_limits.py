"""Hostile peers against a real server on loopback: oversize messages, too many streams from one
source or in all, streams that go silent or never start, and what uvicorn does (and does not do)
about slow HTTP clients. In every case the peer gets its protocol's own answer, the calls already
running go on and are recorded, and every slot a stream took is given back.

Sources are told apart by binding the client to another loopback address (127.0.0.2, 127.0.0.3):
Linux routes all of 127.0.0.0/8 to the loopback interface.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import uuid

import numpy as np
import pytest
import websockets
from live_server import (
    AUDIOHOOK_AUTH_TOKEN,
    STREAM_TOKEN,
    close_code,
    fetch_recording,
    find_call,
    start_server,
    stop_server,
    wait_for_call_end,
)

from stream_server.api.stream_limits import StreamLimits, source_of
from stream_server.config import Settings
from stream_server.media import audiosocket
from stream_server.simulator import SimulatedCall
from stream_server.simulator.audiohook import ClientSession, open_parameters, upgrade_headers

PER_SOURCE = 3
MAX_CALLS = 5
IDLE_S = 1.5
START_S = 1.5
HEADER_S = 2.0
FRAME = np.full(160, 3000, "<i2").tobytes()  # 20 ms of 8 kHz L16
ORG = str(uuid.uuid4())
_SERVERS: dict[str, object] = {}  # the module's running servers, by fixture


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    """Three streams per source, five in all; long enough timeouts not to end the test streams."""
    server = start_server(tmp_path_factory.mktemp("limited"), {
        "STREAM_SERVER_ASR_MODEL": "tiny.en",
        "STREAM_SERVER_MAX_STREAMS_PER_SOURCE": str(PER_SOURCE),
        "STREAM_SERVER_MAX_CALLS": str(MAX_CALLS),
    })
    _SERVERS["limited"] = server
    yield server
    _SERVERS.pop("limited")
    stop_server(server)


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory):
    """Short idle and start timeouts, and uvicorn's HTTP limits turned down."""
    server = start_server(tmp_path_factory.mktemp("impatient"), {
        "STREAM_SERVER_ASR_MODEL": "tiny.en",
        "STREAM_SERVER_MEDIA_IDLE_TIMEOUT_S": str(IDLE_S),
        "STREAM_SERVER_MEDIA_START_TIMEOUT_S": str(START_S),
        "STREAM_SERVER_HTTP_KEEP_ALIVE_TIMEOUT_S": "1",
        "STREAM_SERVER_HTTP_HEADER_TIMEOUT_S": str(HEADER_S),
        "STREAM_SERVER_HTTP_LIMIT_CONCURRENCY": "6",
    })
    _SERVERS["impatient"] = server
    yield server
    _SERVERS.pop("impatient")
    stop_server(server)


OPENED: list[websockets.ClientConnection] = []  # the running scenario's client sockets


def _run(scenario):
    """asyncio.run(scenario()), closing every socket it opened on the way out, pass or fail, so a
    test that fails half way does not leave streams holding the next test's slots."""
    async def guarded():
        try:
            return await scenario()
        finally:
            for ws in OPENED:
                await ws.close()
            OPENED.clear()

    return asyncio.run(guarded())


@pytest.fixture(autouse=True)
def every_call_ended():
    """Each test starts with every slot free: wait until the servers have ended the last test's calls."""
    yield
    deadline = time.monotonic() + 30
    for server in list(_SERVERS.values()):
        while time.monotonic() < deadline:
            with server.client() as http:
                calls = http.get("/v1/calls", params={"limit": 500}).json()
            if not any(call["status"] == "active" for call in calls):
                break
            time.sleep(0.2)


# -- clients -------------------------------------------------------------------------------


def _stream_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/v1/media/stream?token={STREAM_TOKEN}"


async def _connect(url: str, source: str = "127.0.0.1", **kwargs) -> websockets.ClientConnection:
    ws = await websockets.connect(url, local_addr=(source, 0), open_timeout=30, **kwargs)
    OPENED.append(ws)
    return ws


async def _wait_until_active(server, call_sid: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = find_call(server, carrier_call_id=call_sid)
        if call is not None:
            return call
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_sid} did not start")


class Stream:
    """One jambonz-style stream (metadata frame, then 20 ms L16 frames) from one source."""

    def __init__(self, server, source: str = "127.0.0.1") -> None:
        self.server = server
        self.source = source
        self.sid = "CA" + uuid.uuid4().hex
        self.frames_sent = 0
        self.ws: websockets.ClientConnection | None = None

    async def open(self) -> Stream:
        self.ws = await _connect(_stream_url(self.server), self.source)
        await self.ws.send(json.dumps({"sampleRate": 8000, "mixType": "mono", "callSid": self.sid}))
        return self

    async def started(self) -> Stream:
        """Open it and wait until the server has started its call."""
        await self.open()
        await _wait_until_active(self.server, self.sid)
        return self

    async def send(self, frames: int = 5) -> None:
        for _ in range(frames):
            await self.ws.send(FRAME)
        self.frames_sent += frames

    async def hang_up(self) -> dict:
        await self.ws.close()
        return await wait_for_call_end(self.server, carrier_call_id=self.sid)

    async def refusal(self) -> tuple[int | None, str]:
        """Open it expecting to be refused: the close code and reason it got."""
        try:
            await self.open()
        except websockets.ConnectionClosed:
            pass  # refused before its metadata frame went out
        code = await close_code(self.ws, timeout=10)
        return code, self.ws.close_reason


def _frames_recorded(server, stored: dict) -> int:
    return len(fetch_recording(server, stored["id"]).samples) // 160


# -- 1. oversize messages ------------------------------------------------------------------


def test_an_oversize_message_is_closed_with_1009_and_the_call_recorded(limited_server):
    async def scenario():
        stream = await Stream(limited_server).started()
        await stream.send(10)
        await asyncio.sleep(0.5)  # uvicorn drops frames still queued when it fails the connection
        await stream.ws.send(b"\x00" * (Settings().max_message_bytes + 2))
        code = await close_code(stream.ws)
        return code, await wait_for_call_end(limited_server, carrier_call_id=stream.sid)

    code, stored = _run(scenario)
    assert code == 1009
    assert stored["status"] == "interrupted" and stored["end_reason"] == "message_too_big"
    assert _frames_recorded(limited_server, stored) == 10


# -- 2. too many streams from one source, or in all ------------------------------------------


def test_a_source_over_its_limit_is_refused_with_1013_and_the_other_calls_go_on(limited_server):
    async def scenario():
        running = [await Stream(limited_server).started() for _ in range(PER_SOURCE)]
        for stream in running:
            await stream.send(5)
        refused = await Stream(limited_server).refusal()
        other_source = await Stream(limited_server, "127.0.0.2").started()  # its own count
        for stream in running:  # still streaming after the refusal
            await stream.send(5)
        await other_source.send(5)
        await asyncio.sleep(0.3)
        ended = [await stream.hang_up() for stream in [*running, other_source]]
        return refused, ended

    (code, reason), ended = _run(scenario)
    assert code == 1013 and "127.0.0.1" in reason and f"limit {PER_SOURCE}" in reason
    for stored in ended:
        assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert [_frames_recorded(limited_server, s) for s in ended] == [10, 10, 10, 5]
    log = limited_server.log()
    assert "Exception in ASGI application" not in log and "exception was never retrieved" not in log


def test_slots_come_back_however_a_stream_ends(limited_server):
    """Open the source's limit, end each stream another way, and the source can open its limit again."""
    async def scenario():
        first = [await Stream(limited_server).started() for _ in range(PER_SOURCE)]
        for stream in first:
            await stream.send(2)
        await first[0].hang_up()  # a clean close: completed
        first[1].ws.transport.abort()  # the TCP connection dropped, no close frame
        for _ in range(Settings().max_bad_messages + 1):  # a malformed flood: 1007
            await first[2].ws.send("{not json")
        flooded = await close_code(first[2].ws)
        reasons = [(await wait_for_call_end(limited_server, carrier_call_id=s.sid))["end_reason"] for s in first]
        again = [await Stream(limited_server).started() for _ in range(PER_SOURCE)]
        over = await Stream(limited_server).refusal()
        for stream in again:
            await stream.hang_up()
        return flooded, reasons, over

    flooded, reasons, (over_code, _) = _run(scenario)
    assert flooded == 1007
    assert reasons == ["completed", "disconnected", "protocol_error"]
    assert over_code == 1013  # the limit still holds once the slots are taken again


def test_audiohook_over_the_limit_is_answered_in_protocol(limited_server):
    async def scenario():
        running = [await Stream(limited_server).started() for _ in range(PER_SOURCE)]
        url = limited_server.media_url("audiohook")
        client = ClientSession(str(uuid.uuid4()))
        ws = await _connect(url, additional_headers=upgrade_headers(url, AUDIOHOOK_AUTH_TOKEN, ORG, client.session_id))
        await ws.send(client.message("open", open_parameters(SimulatedCall(caller=b""), ORG, str(uuid.uuid4()))))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        code = await close_code(ws)
        for stream in running:
            await stream.hang_up()
        return client, answer, code

    client, answer, code = _run(scenario)
    assert answer["type"] == "disconnect" and answer["parameters"]["reason"] == "error"
    assert answer["id"] == client.session_id and answer["clientseq"] == 1
    assert "limit" in answer["parameters"]["info"]
    assert code == 1013
    assert find_call(limited_server, stream_id=client.session_id) is None


def _audiosocket_call(server, call_id: uuid.UUID, frames: int) -> bytes:
    """Play one AudioSocket call (UUID, audio, hangup); everything the server sent back."""
    with socket.create_connection(("127.0.0.1", server.audiosocket_port), timeout=10) as sock:
        sock.sendall(audiosocket.frame(audiosocket.KIND_UUID, call_id.bytes)
                     + audiosocket.frame(audiosocket.KIND_SLIN, FRAME) * frames + audiosocket.frame(audiosocket.KIND_HANGUP))
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received


def test_audiosocket_counts_with_the_websockets_and_gets_its_error_frame(limited_server):
    async def scenario():
        running = [await Stream(limited_server).started() for _ in range(PER_SOURCE)]
        refused = await asyncio.to_thread(_audiosocket_call, limited_server, uuid.uuid4(), 3)
        for stream in running:
            await stream.hang_up()
        call_id = uuid.uuid4()  # and with the slots back, AudioSocket gets through
        answered = await asyncio.to_thread(_audiosocket_call, limited_server, call_id, 3)
        return refused, answered, await wait_for_call_end(limited_server, carrier_call_id=str(call_id))

    refused, answered, stored = _run(scenario)
    assert refused == struct.pack("!BHB", audiosocket.KIND_ERROR, 1, audiosocket.ERROR_BUSY)
    assert answered == b"" and stored["end_reason"] == "completed"


def test_the_server_wide_cap_refuses_every_source_alike(limited_server):
    async def scenario():
        sources = ["127.0.0.1"] * PER_SOURCE + ["127.0.0.2"] * (MAX_CALLS - PER_SOURCE)
        running = [await Stream(limited_server, source).started() for source in sources]
        refused = await Stream(limited_server, "127.0.0.3").refusal()  # a fresh source, but the server is full
        await running[0].hang_up()
        admitted = await Stream(limited_server, "127.0.0.3").started()
        for stream in [*running[1:], admitted]:
            await stream.hang_up()
        return refused

    code, reason = _run(scenario)
    assert code == 1013 and f"limit of {MAX_CALLS} calls" in reason


def test_stream_limits_count_sources_and_give_every_slot_back():
    limits = StreamLimits(per_source=2, total=3)
    with limits.slot("10.0.0.1") as a, limits.slot("10.0.0.1") as b:
        assert a is b is None
        with limits.slot("10.0.0.1") as refused:
            assert "limit 2" in refused
        with pytest.raises(RuntimeError), limits.slot("10.0.0.2") as c:
            assert c is None and limits.open_streams == 3
            with limits.slot("10.0.0.3") as full:
                assert "limit of 3 calls" in full
            raise RuntimeError("the stream's handler failed")
    assert limits.open_streams == 0 and limits.open_from("10.0.0.1") == 0
    assert source_of("::ffff:10.0.0.1") == "10.0.0.1" and source_of(None) == "?"
    assert StreamLimits().refusal("10.0.0.1") is None  # 0 and 0: no limits


# -- 3. silent streams ---------------------------------------------------------------------


def test_a_silent_stream_is_ended_as_idle_and_its_recording_kept(impatient_server):
    async def scenario():
        stream = await Stream(impatient_server).started()
        await stream.send(10)
        started = time.monotonic()
        code = await close_code(stream.ws, timeout=IDLE_S + 10)
        waited = time.monotonic() - started
        return code, stream.ws.close_reason, waited, await wait_for_call_end(impatient_server, carrier_call_id=stream.sid)

    code, reason, waited, stored = _run(scenario)
    assert code == 1008 and "idle" in reason
    assert IDLE_S - 0.2 <= waited <= IDLE_S + 5
    assert stored["status"] == "interrupted" and stored["end_reason"] == "idle_timeout"
    assert _frames_recorded(impatient_server, stored) == 10


@pytest.mark.parametrize("keeps_sending", [False, True], ids=["silent", "junk-that-never-starts"])
def test_a_stream_that_never_starts_its_call_is_closed_after_the_start_timeout(impatient_server, keeps_sending):
    """Messages that start nothing do not push the deadline back: a slow loris gains nothing."""
    async def scenario():
        ws = await _connect(_stream_url(impatient_server))
        started = time.monotonic()
        while keeps_sending and time.monotonic() - started < START_S + 5:
            try:
                await ws.send(json.dumps({"event": "dtmf", "dtmf": "1"}))  # valid, but starts no call
                await asyncio.sleep(0.3)
            except websockets.ConnectionClosed:
                break
        code = await close_code(ws, timeout=START_S + 10)
        return code, ws.close_reason, time.monotonic() - started

    code, reason, waited = _run(scenario)
    assert code == 1008 and "no call started" in reason
    assert START_S - 0.2 <= waited <= START_S + 3


# -- 4. slow HTTP clients: what uvicorn does and does not do -------------------------------


def _response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a Content-Length body) read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock`, or None if it was still open after `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        closed = _closed_within(sock, 5)
    assert closed is not None and closed <= 2.5


def test_headers_trickled_byte_by_byte_are_cut_off_at_the_header_deadline(impatient_server):
    """Slow loris: each byte comes well within any idle timeout, but the headers never end."""
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        closed = None
        while closed is None and time.monotonic() - started < HEADER_S + 5:
            try:
                sock.sendall(b"a")
            except OSError:
                closed = time.monotonic() - started
                break
            if _closed_within(sock, 0.25) is not None:
                closed = time.monotonic() - started
    assert closed is not None and HEADER_S - 0.3 <= closed <= HEADER_S + 2
    assert "request headers not complete within" in impatient_server.log()


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as silent:
        closed = _closed_within(silent, HEADER_S + 3)
    assert closed is not None and HEADER_S - 0.3 <= closed <= HEADER_S + 2


def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_deadline(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as sock:
        for _ in range(2):  # whole requests, one after the other, are served as usual
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            assert _response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # then a third that never ends
        closed = _closed_within(sock, HEADER_S + 3)
    assert closed is not None and closed <= HEADER_S + 2


def test_a_websocket_outlives_the_header_deadline(impatient_server):
    """The deadline is for headers only: an upgraded socket lives on (here a supervisor feed)."""
    async def scenario():
        async with websockets.connect(impatient_server.supervisor_url) as feed:
            hello = json.loads(await feed.recv())
            await asyncio.sleep(HEADER_S + 1)
            pong = await feed.ping()
            await asyncio.wait_for(pong, 5)
            return hello["type"]

    assert asyncio.run(scenario()) == "hello"


def test_limit_concurrency_answers_503_once_connections_pile_up(impatient_server):
    """What uvicorn does offer: past STREAM_SERVER_HTTP_LIMIT_CONCURRENCY connections it answers
    503 at once, instead of queueing; idle connections count too, so it bounds a slow loris's
    damage to 503s, not to a hung server."""
    idle = [socket.create_connection(("127.0.0.1", impatient_server.port)) for _ in range(6)]
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            crowded = sock.recv(4096)
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        freed = sock.recv(4096)
    assert crowded.startswith(b"HTTP/1.1 503") and freed.startswith(b"HTTP/1.1 200")
