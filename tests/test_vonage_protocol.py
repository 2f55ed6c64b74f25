"""Vonage Voice WebSocket: the wire format message by message, then /v1/media/vonage over a real
socket against the live server (auth, documented sequence, garbage, an abusive call end to end)."""

import asyncio
import json

import numpy as np
import pytest
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    VONAGE_TOKEN,
    assert_text_alerts,
    close_code,
    fetch_recording,
    find_call,
    run_calls,
    wait_for_call_end,
)

from stream_server.media.errors import MalformedMessage, UnsupportedStream
from stream_server.media.events import Audio, CallEnded, CallStarted
from stream_server.media.metadata import MAX_PARAMETER_CHARS
from stream_server.media.vonage import (
    VonageMediaStream,
    sample_rate_from_content_type,
    token_matches,
)
from stream_server.simulator import SimulatedCall
from stream_server.simulator.vonage import connected_message, mixed_pcm16, with_token

FRAME_16K = (np.sin(np.arange(320) / 4) * 9000).astype("<i2").tobytes()  # 20 ms at 16 kHz = 640 B
SILENCE_16K = b"\x00" * 640


def _call(**parameters) -> SimulatedCall:
    params = {"utm_source": "google", "tracking_number": "+81120000001", "from": "+81312345678"}
    return SimulatedCall(caller=b"", agent=b"", parameters={**params, **parameters})


def _started(rate: int = 16000) -> tuple[VonageMediaStream, SimulatedCall, list]:
    stream, call = VonageMediaStream(), _call()
    return stream, call, stream.feed(json.dumps(connected_message(call, rate)))


# -- the wire format ----------------------------------------------------------------------


def test_connected_becomes_call_started_with_the_headers_as_metadata():
    _, call, [event] = _started()
    assert isinstance(event, CallStarted)
    assert event.carrier == "vonage"
    assert event.tracks == ("caller",)  # Vonage sends the call's mix on one socket
    assert event.sample_rate == 16000
    assert event.carrier_call_id == call.call_sid
    assert event.metadata == {"uuid": call.call_sid, "utm_source": "google", "tracking_number": "+81120000001",
                              "from": "+81312345678"}


def test_documented_connected_frame_without_a_call_id():
    msg = {"event": "websocket:connected", "content-type": "audio/l16;rate=8000", "prop1": "value1",
           "prop2": {"nested": True}}
    [event] = VonageMediaStream().feed(json.dumps(msg))
    assert event.sample_rate == 8000 and event.carrier_call_id == ""
    assert event.metadata["prop1"] == "value1" and "event" not in event.metadata
    assert "content-type" not in event.metadata


@pytest.mark.parametrize(
    "content_type, rate",
    [("audio/l16;rate=16000", 16000), ("audio/l16;rate=8000", 8000), ("Audio/L16; rate = 8000", 8000),
     (None, 16000)],
)
def test_sample_rate_comes_from_the_content_type(content_type, rate):
    assert sample_rate_from_content_type(content_type) == rate


@pytest.mark.parametrize("content_type", ["audio/l16;rate=44100", "audio/pcmu;rate=8000", "text/plain"])
def test_unsupported_content_type_is_refused(content_type):
    msg = {"event": "websocket:connected", "content-type": content_type}
    with pytest.raises(UnsupportedStream):
        VonageMediaStream().feed(json.dumps(msg))


def test_binary_frames_are_little_endian_pcm_on_the_caller_track_timed_by_samples():
    stream, _, _ = _started()
    events = [stream.feed(FRAME_16K)[0] for _ in range(3)]
    assert all(isinstance(e, Audio) and e.track == "caller" and e.sample_rate == 16000 for e in events)
    assert events[0].pcm16 == FRAME_16K
    assert [e.t for e in events] == pytest.approx([0.0, 0.02, 0.04])
    [short] = stream.feed(FRAME_16K[:320])  # any even length is accepted...
    [after] = stream.feed(FRAME_16K)
    assert short.t == pytest.approx(0.06) and after.t == pytest.approx(0.07)  # ...and time follows the samples


def test_8khz_frames_are_320_bytes_of_20_ms():
    stream, _, _ = _started(8000)
    stream.feed(b"\x01\x00" * 160)
    [second] = stream.feed(b"\x01\x00" * 160)
    assert second.sample_rate == 8000 and second.t == pytest.approx(0.02)


def test_odd_or_empty_frames_are_malformed_and_do_not_move_time():
    stream, _, _ = _started()
    with pytest.raises(MalformedMessage, match="odd"):
        stream.feed(FRAME_16K[:-1])
    with pytest.raises(MalformedMessage, match="empty"):
        stream.feed(b"")
    [audio] = stream.feed(FRAME_16K)
    assert audio.t == 0.0


def test_dtmf_and_unknown_events_produce_nothing():
    stream, _, _ = _started()
    assert stream.feed(json.dumps({"event": "websocket:dtmf", "digit": "5", "duration": 260})) == []
    assert stream.feed(json.dumps({"event": "websocket:quantum"})) == []
    assert stream.feed(json.dumps({"no_event": True})) == []


def test_audio_before_connected_is_held_and_released_in_order():
    stream, call = VonageMediaStream(), _call()
    assert stream.feed(FRAME_16K) == []
    assert stream.feed(SILENCE_16K) == []
    events = stream.feed(json.dumps(connected_message(call)))
    assert isinstance(events[0], CallStarted)
    assert [e.pcm16 for e in events[1:]] == [FRAME_16K, SILENCE_16K]
    assert [e.t for e in events[1:]] == [0.0, 0.02]


def test_duplicate_connected_is_ignored():
    stream, call, _ = _started()
    assert stream.feed(json.dumps(connected_message(call, 8000))) == []
    assert stream.sample_rate == 16000


@pytest.mark.parametrize("message", ["{not json", "[1, 2, 3]", '"websocket:connected"'])
def test_malformed_text_raises_malformed(message):
    with pytest.raises(MalformedMessage):
        VonageMediaStream().feed(message)


def test_a_normal_close_completes_the_call_anything_else_does_not():
    stream, _, _ = _started()
    assert stream.on_close(1000) == CallEnded("completed")
    assert stream.on_close(1006) is None and stream.on_close(None) is None
    assert VonageMediaStream().on_close(1000) is None  # nothing started, nothing completed


def test_hostile_headers_are_bounded_strings():
    msg = {"event": "websocket:connected", "content-type": "audio/l16;rate=16000",
           **{f"k{i}": "x" * 5000 for i in range(500)}}
    [event] = VonageMediaStream().feed(json.dumps(msg))
    assert len(event.metadata) == 64
    assert all(isinstance(v, str) and len(v) <= MAX_PARAMETER_CHARS for v in event.metadata.values())


def test_token_from_query_or_bearer_header():
    assert token_matches("s3cret", "s3cret", None)
    assert token_matches("s3cret", None, "Bearer s3cret")
    assert token_matches("s3cret", None, "s3cret")
    assert token_matches("s3cret", "wrong", "Bearer s3cret")
    assert not token_matches("s3cret", None, None)
    assert not token_matches("s3cret", "wrong", "Bearer wrong")
    assert not token_matches("s3cret", "", "Bearer ")


def test_simulator_mixes_both_legs_into_one_16khz_track():
    from stream_server.media.codecs import pcm16_to_ulaw

    tone = pcm16_to_ulaw((np.sin(np.arange(8000) / 3) * 8000).astype("<i2").tobytes())
    alone = SimulatedCall(caller=tone, agent=None)
    both = SimulatedCall(caller=tone, agent=tone)
    mixed_alone = np.frombuffer(mixed_pcm16(alone), dtype="<i2").astype(float)
    mixed_both = np.frombuffer(mixed_pcm16(both), dtype="<i2").astype(float)
    assert len(mixed_alone) == pytest.approx(16000, abs=2)  # one second at 16 kHz
    assert np.sqrt(np.mean(mixed_both**2)) == pytest.approx(2 * np.sqrt(np.mean(mixed_alone**2)), rel=0.05)
    assert with_token("ws://h/v1/media/vonage?x=1", "t k") == "ws://h/v1/media/vonage?x=1&token=t+k"


# -- over a real socket -------------------------------------------------------------------


def _url(server, token=VONAGE_TOKEN) -> str:
    return with_token(server.media_url("vonage"), token)


async def _connected_stream(server, call: SimulatedCall, frames: int) -> websockets.ClientConnection:
    """A stream that has sent `call`'s connected frame and `frames` 20 ms silences at 16 kHz."""
    ws = await websockets.connect(_url(server))
    await ws.send(json.dumps(connected_message(call)))
    for _ in range(frames):
        await ws.send(SILENCE_16K)
    return ws


@pytest.mark.parametrize(
    "query, header",
    [(None, None), ("wrong", None), (None, "Bearer wrong"), ("wrong", "Bearer wrong")],
    ids=["none", "wrong-query", "wrong-bearer", "both-wrong"],
)
def test_stream_without_the_right_token_is_closed_with_1008(live_server, query, header):
    call = _call()

    async def scenario():
        headers = {"Authorization": header} if header else {}
        ws = await websockets.connect(_url(live_server, query), additional_headers=headers)
        try:
            await ws.send(json.dumps(connected_message(call)))
            await ws.send(FRAME_16K)
        except websockets.ConnectionClosed:
            pass
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1008
    assert find_call(live_server, carrier_call_id=call.call_sid) is None


@pytest.mark.parametrize("via", ["query", "bearer"])
def test_documented_sequence_is_recorded_and_a_normal_close_completes_the_call(live_server, via):
    call = _call(utm_campaign="spring")
    frames = [(np.full(320, 100 * i)).astype("<i2").tobytes() for i in range(50)]

    async def scenario():
        url = _url(live_server, VONAGE_TOKEN if via == "query" else None)
        headers = {"Authorization": f"Bearer {VONAGE_TOKEN}"} if via == "bearer" else {}
        ws = await websockets.connect(url, additional_headers=headers)
        await ws.send(json.dumps(connected_message(call)))
        for i, frame in enumerate(frames):
            await ws.send(frame)
            if i == 10:
                await ws.send(json.dumps({"event": "websocket:dtmf", "digit": "5", "duration": 260}))
        await ws.close(1000)  # Vonage hangs up: a normal close, no goodbye message
        return await wait_for_call_end(live_server, carrier_call_id=call.call_sid)

    stored = asyncio.run(scenario())
    assert stored["carrier"] == "vonage" and stored["tracks"] == ["caller"]
    assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert stored["metadata"]["utm_source"] == "google" and stored["metadata"]["utm_campaign"] == "spring"
    assert stored["metadata"]["from"] == "+81312345678" and stored["caller_number"] == "+81312345678"
    assert stored["metadata"]["tracking_number"] == "+81120000001"
    recording = fetch_recording(live_server, stored["id"])
    assert recording.rate == 16000 and recording.frames == b"".join(frames)


def test_garbage_is_survived_and_every_valid_frame_is_recorded(live_server):
    call = _call(utm_source="garbage-test")

    async def scenario():
        ws = await websockets.connect(_url(live_server))
        await ws.send(SILENCE_16K)  # audio before the connected frame: held
        await ws.send(json.dumps(connected_message(call, 8000)))
        await ws.send("{this is not json")
        await ws.send(json.dumps({"event": "websocket:teleport"}))
        await ws.send(b"\x00\x01\x02")  # odd length: not 16-bit audio
        await ws.send(b"")
        await ws.send(json.dumps(connected_message(call, 16000)))  # a second connected: ignored
        for _ in range(49):
            await ws.send(b"\x00\x00" * 160)  # 20 ms at 8 kHz
        await ws.close(1000)
        return await wait_for_call_end(live_server, carrier_call_id=call.call_sid)

    stored = asyncio.run(scenario())
    # bad JSON, the odd and the empty frame were dropped; the unknown event is ignored.
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 3
    assert stored["metadata"]["utm_source"] == "garbage-test"
    recording = fetch_recording(live_server, stored["id"])
    assert recording.rate == 8000
    assert len(recording.frames) == 640 + 49 * 320  # the held 640 B frame, then 49 frames of 320 B


def test_too_many_malformed_messages_close_with_1007_and_keep_the_call(live_server):
    call = _call()

    async def scenario():
        ws = await _connected_stream(live_server, call, frames=10)
        for _ in range(101):
            await ws.send(b"\x01")
        code = await close_code(ws)
        return code, ws.close_reason, await wait_for_call_end(live_server, carrier_call_id=call.call_sid)

    code, reason, stored = asyncio.run(scenario())
    assert code == 1007 and "malformed" in reason
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 10 * 640


def test_unsupported_rate_is_closed_with_1003(live_server):
    async def scenario():
        ws = await websockets.connect(_url(live_server))
        await ws.send(json.dumps(connected_message(_call(), 44100)))
        return await close_code(ws), ws.close_reason

    code, reason = asyncio.run(scenario())
    assert code == 1003 and "44100" in reason


def test_oversized_frame_is_refused_with_1009(live_server):
    call = _call()

    async def scenario():
        ws = await _connected_stream(live_server, call, frames=1)
        await asyncio.sleep(0.5)  # uvicorn drops frames still queued when it fails the connection
        await ws.send(b"\x00" * 200_000)
        return await close_code(ws), await wait_for_call_end(live_server, carrier_call_id=call.call_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1009 and stored["status"] == "interrupted"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 640


def test_dropped_connection_is_an_interrupted_call_with_its_recording(live_server):
    call = _call()

    async def scenario():
        ws = await _connected_stream(live_server, call, frames=20)
        await asyncio.sleep(0.5)
        ws.transport.abort()  # no closing handshake: not a hang-up
        return await wait_for_call_end(live_server, carrier_call_id=call.call_sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "interrupted" and stored["end_reason"] == "disconnected"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 20 * 640


# -- end to end ---------------------------------------------------------------------------


def test_abusive_call_over_vonage_raises_a_text_alert_from_the_mixed_track(live_server):
    runs = asyncio.run(run_calls(live_server, {"vonage_abusive": simulate_args("en_abusive")},
                                 protocol="vonage", auth_token=VONAGE_TOKEN))
    run, truth = runs["vonage_abusive"], load_call("en_abusive")
    started = run.of_type("call.started")[0]
    assert started["carrier"] == "vonage" and started["tracks"] == ["caller"]
    assert run.ended["status"] == "ended" and run.ended["reason"] == "completed"
    assert_text_alerts(run, truth.metadata)
