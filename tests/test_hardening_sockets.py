"""Hardening of the raw-socket carriers and the app's lifecycle: AudioSocket after a hangup and
when the peer goes silent, WebRTC at shutdown and without its own token, the bus URL in errors,
and start-up that fails half way."""

import asyncio
import socket
import struct
import time
import uuid

import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from live_server import (
    API_TOKEN,
    WEBRTC_TOKEN,
    fetch_recording,
    free_port,
    start_server,
    stop_server,
    wait_for_call_end,
)

from stream_server import app as app_module
from stream_server.bus import MemoryBus, create_bus
from stream_server.config import Settings
from stream_server.media import audiosocket as media_audiosocket
from stream_server.media.audiosocket import AudioSocketStream
from stream_server.media.codecs import pcm16_to_ulaw
from stream_server.media.events import CallEnded
from stream_server.simulator import SimulatedCall
from stream_server.simulator import audiosocket as simulator_audiosocket
from stream_server.simulator.webrtc import CallerTrack, negotiate
from stream_server.simulator.webrtc import stream_call as webrtc_stream_call
from stream_server.store.repository import CallStore

IDLE_TIMEOUT_S = 1.5


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("!BH", kind, len(payload)) + payload


def slin(value: int, samples: int = 160) -> bytes:
    return frame(0x10, np.full(samples, value, dtype="<i2").tobytes())


def uuid_frame(call_id: uuid.UUID) -> bytes:
    return frame(0x01, call_id.bytes)


def _tone_call(seconds: float) -> SimulatedCall:
    t = np.arange(int(8000 * seconds)) / 8000
    return SimulatedCall(caller=pcm16_to_ulaw((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()))


@pytest.fixture(scope="module")
def hardened_server(tmp_path_factory):
    """A short AudioSocket idle timeout, and an API token but no WebRTC token of its own."""
    server = start_server(tmp_path_factory.mktemp("hardened"), {
        "STREAM_SERVER_AUDIOSOCKET_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "STREAM_SERVER_WEBRTC_TOKEN": "",
        "STREAM_SERVER_ASR_MODEL": "tiny.en",
    })
    yield server
    stop_server(server)


# -- 1. AudioSocket: nothing counts after the hangup -----------------------------------------


def test_the_parser_keeps_no_bytes_after_a_hangup():
    stream = AudioSocketStream()
    events = stream.feed(uuid_frame(uuid.uuid4()) + slin(1) + frame(0x00) + slin(2)[:100])
    assert events[-1] == CallEnded("completed") and stream.ended
    assert stream.feed(slin(3) * 100 + b"\xff\xff") == []
    assert stream.finish() == CallEnded("completed")  # no half frame held after the hangup
    assert stream.error is None


def test_a_hangup_before_the_uuid_closes_the_connection_at_once(hardened_server):
    async def scenario():
        reader, writer = await asyncio.open_connection("127.0.0.1", hardened_server.audiosocket_port)
        writer.write(frame(0x00))
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), 1.0)  # the UUID wait would be 10 s
        finally:
            writer.close()

    assert asyncio.run(scenario()) == b""


# -- 2. AudioSocket: a peer that goes silent -------------------------------------------------


def test_a_silent_peer_is_closed_after_the_idle_timeout_and_the_call_is_recorded(hardened_server):
    call_id = uuid.uuid4()

    async def scenario():
        reader, writer = await asyncio.open_connection("127.0.0.1", hardened_server.audiosocket_port)
        writer.write(uuid_frame(call_id) + slin(9) * 25)
        await writer.drain()
        started = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), IDLE_TIMEOUT_S + 10)
        waited = time.monotonic() - started
        writer.close()
        return rest, waited, await wait_for_call_end(hardened_server, carrier_call_id=str(call_id))

    rest, waited, stored = asyncio.run(scenario())
    assert rest == b"" and IDLE_TIMEOUT_S - 0.2 <= waited <= IDLE_TIMEOUT_S + 5
    assert stored["status"] == "interrupted" and stored["end_reason"] == "idle_timeout"
    assert len(fetch_recording(hardened_server, stored["id"]).samples) == 25 * 160


def test_the_idle_timeout_is_a_setting_on_by_default():
    assert Settings().audiosocket_idle_timeout_s == 30.0


# -- 3. WebRTC: peer connections are closed at shutdown --------------------------------------


async def _peer_closed(pc: RTCPeerConnection, within: float) -> bool:
    """Whether the far end closed `pc` (DTLS close_notify, or the connection failed) in time."""
    transport = pc.getTransceivers()[0].sender.transport
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if transport.state in ("closed", "failed") or pc.connectionState in ("closed", "failed"):
            return True
        await asyncio.sleep(0.05)
    return False


def test_shutdown_closes_webrtc_peer_connections_and_ends_their_calls(tmp_path):
    server = start_server(tmp_path, {"STREAM_SERVER_ASR_MODEL": "tiny.en"})
    try:
        async def scenario():
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            track = CallerTrack(_tone_call(60.0), 3000, 1.0)
            pc.addTransceiver(track, direction="sendonly")
            answer = await negotiate(server.media_url("webrtc"), pc, {}, WEBRTC_TOKEN)
            await asyncio.sleep(2.0)  # some audio in the recording
            await asyncio.to_thread(stop_server, server)
            try:
                return answer["call_id"], await _peer_closed(pc, 5)  # a dead line takes ~30 s to notice
            finally:
                await pc.close()

        call_id, peer_closed = asyncio.run(scenario())
        log = server.log()
        assert f"webrtc: call {call_id} ended (server_shutdown)" in log
        assert log.index("ended (server_shutdown)") < log.index("Application shutdown complete")
        assert peer_closed, "the server left the peer connection open"
        store = CallStore(f"sqlite:///{tmp_path / 'stream_server.db'}")
        try:
            stored = store.get_call(call_id)
        finally:
            store.close()
        assert stored["status"] == "interrupted" and stored["end_reason"] == "server_shutdown"
        assert stored["duration"] >= 1.0
        assert "Traceback" not in log
    finally:
        stop_server(server)  # already stopped unless the scenario failed first


# -- 4. WebRTC: the API token guards the offer when there is no WebRTC token -----------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_without_a_webrtc_token_the_offer_needs_the_api_token(hardened_server, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{hardened_server.http}/v1/webrtc/offer", json={"type": "offer", "sdp": ""},
                          headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_without_a_webrtc_token_the_api_token_is_accepted(hardened_server):
    result = asyncio.run(webrtc_stream_call(hardened_server.media_url("webrtc"), _tone_call(0.5),
                                            auth_token=API_TOKEN))
    assert result.completed
    ended = asyncio.run(wait_for_call_end(hardened_server, carrier_call_id=result.call_sid))
    assert ended["carrier"] == "webrtc" and ended["end_reason"] == "completed"


# -- 6. the bus URL never shows its password ---------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://user:s3cret-pw@bus.internal:6379/0",
    "REDIS://:s3cret-pw@bus.internal:6379/0",
    "redis+sentinel://default:s3cret-pw@bus.internal",
    "user:s3cret-pw@bus.internal:6379",
])
def test_a_bad_bus_url_is_refused_without_its_password(url):
    with pytest.raises(ValueError) as refused:
        create_bus(url)
    assert "s3cret-pw" not in str(refused.value) and "***" in str(refused.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://user:s3cret-pw@host:6379/0", "redis://user:***@host:6379/0"),
    ("rediss://:s3cret-pw@host/1", "rediss://:***@host/1"),
    ("redis://host:6379/0", "redis://host:6379/0"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ("memory", "memory"),
    ("redis://user:p@ss/w:rd@host:6379", "redis://user:***@host:6379"),
])
def test_redacted_hides_only_the_password(url, shown):
    from stream_server.bus import redacted

    assert redacted(url) == shown


# -- 7. start-up that fails half way stops what it started -----------------------------------


class RecordingBus(MemoryBus):
    """A memory bus that remembers whether it was stopped."""

    stopped = False

    async def stop(self) -> None:
        self.stopped = True
        await super().stop()


@pytest.fixture
def recorded_buses(monkeypatch):
    buses: list[RecordingBus] = []

    def create(bus: str, prefix: str = "stream_server") -> RecordingBus:
        buses.append(RecordingBus())
        return buses[-1]

    monkeypatch.setattr(app_module, "create_bus", create)
    return buses


def test_a_store_that_fails_at_start_up_stops_the_bus(tmp_path, monkeypatch, recorded_buses):
    def broken_store(*_args, **_kwargs):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(app_module, "CallStore", broken_store)
    with pytest.raises(RuntimeError, match="database unreachable"):
        asyncio.run(app_module.build_services(Settings(data_dir=tmp_path)))
    assert [bus.stopped for bus in recorded_buses] == [True]


def test_an_audiosocket_port_in_use_fails_start_up_and_stops_everything_started(tmp_path, recorded_buses):
    busy = socket.socket()
    busy.bind(("127.0.0.1", free_port()))
    busy.listen()
    port = busy.getsockname()[1]
    settings = Settings(data_dir=tmp_path, asr_model="tiny.en", audiosocket_port=port)
    app = app_module.create_app(settings)

    async def scenario():
        with pytest.raises(OSError):
            async with app.router.lifespan_context(app):
                pass
        await asyncio.sleep(0)
        return [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    try:
        leaked = asyncio.run(scenario())
    finally:
        busy.close()
    assert [bus.stopped for bus in recorded_buses] == [True]
    assert leaked == []  # no ASR worker left running
    assert app.state.services.writer.executor._shutdown


# -- 8. one definition of the AudioSocket wire format ----------------------------------------


def test_the_simulator_speaks_the_servers_frame_format():
    assert simulator_audiosocket.frame is media_audiosocket.frame
    assert simulator_audiosocket.KIND_UUID == media_audiosocket.KIND_UUID
    assert media_audiosocket.AUDIO_RATES[simulator_audiosocket.KIND_SLIN] == 8000
