"""jambonz `listen` / mod_audio_fork (`WS /v1/media/stream`): the adapter message by message,
then the documented sequences over a real socket against the live server, then one abusive
fixture call end to end."""

import asyncio
import base64
import json

import numpy as np
import pytest
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    STREAM_TOKEN,
    assert_text_alerts,
    close_code,
    fetch_recording,
    find_call,
    run_calls,
    wait_for_call_end,
)

from stream_server.media.errors import MalformedMessage, UnsupportedStream
from stream_server.media.events import Audio, CallEnded, CallStarted
from stream_server.media.l16_stream import (
    L16MediaStream,
    offered_subprotocol,
    parse_sample_rate,
    token_matches,
)
from stream_server.simulator import SimulatedCall
from stream_server.simulator.stream import basic_auth, l16_audio, metadata_message

PARAMS = {"utm_source": "google", "tracking_number": "+81120000111", "from": "+81312345678"}


def _metadata(**overrides) -> dict:
    msg = {"callSid": "b7d1c3a0-1111-4222-8333-444455556666", "direction": "inbound", "from": "+81312345678",
           "to": "+81120000111", "callId": "sip-call-id", "sampleRate": 8000, "mixType": "stereo",
           "utm_source": "google", "tracking_number": "+81120000111"}
    msg.update(overrides)
    return msg


def _stereo(caller: int, agent: int, samples: int = 160) -> bytes:
    return np.column_stack((np.full(samples, caller), np.full(samples, agent))).astype("<i2").tobytes()


def _mono(value: int, samples: int = 160) -> bytes:
    return np.full(samples, value, dtype="<i2").tobytes()


# -- the adapter ------------------------------------------------------------------------


def test_metadata_frame_becomes_call_started_with_the_listen_metadata_at_top_level():
    [event] = L16MediaStream().feed(json.dumps(_metadata()))
    assert isinstance(event, CallStarted)
    assert event.carrier == "stream" and event.tracks == ("caller", "agent") and event.sample_rate == 8000
    assert event.carrier_call_id == "b7d1c3a0-1111-4222-8333-444455556666"
    assert event.metadata["utm_source"] == "google" and event.metadata["tracking_number"] == "+81120000111"
    assert event.metadata["from"] == "+81312345678" and event.metadata["callSid"] == event.carrier_call_id
    assert "sampleRate" not in event.metadata and "mixType" not in event.metadata


def test_nested_metadata_and_customer_data_are_flattened_without_shadowing_call_info():
    msg = _metadata(metadata={"utm_campaign": "spring", "from": "spoofed"}, customerData={"gclid": "abc"})
    [event] = L16MediaStream().feed(json.dumps(msg))
    assert event.metadata["utm_campaign"] == "spring" and event.metadata["gclid"] == "abc"
    assert event.metadata["from"] == "+81312345678"


@pytest.mark.parametrize("mix_type,tracks", [("mono", ("caller",)), ("mixed", ("caller",)), (None, ("caller",)),
                                             ("stereo", ("caller", "agent"))])
def test_mix_type_decides_the_tracks(mix_type, tracks):
    msg = _metadata(mixType=mix_type) if mix_type else {k: v for k, v in _metadata().items() if k != "mixType"}
    [event] = L16MediaStream().feed(json.dumps(msg))
    assert event.tracks == tracks


def test_stereo_frames_are_split_caller_channel_0_agent_channel_1_with_stream_time():
    stream = L16MediaStream()
    stream.feed(json.dumps(_metadata(sampleRate=16000)))
    first = stream.feed(_stereo(1000, -2000, 320))
    second = stream.feed(_stereo(3, 4, 320))
    assert [(e.track, e.t) for e in first + second] == [("caller", 0.0), ("agent", 0.0),
                                                        ("caller", 0.02), ("agent", 0.02)]
    caller, agent = first
    assert isinstance(caller, Audio) and caller.sample_rate == 16000
    assert caller.pcm16 == _mono(1000, 320) and agent.pcm16 == _mono(-2000, 320)


def test_mono_frames_are_the_caller_track():
    stream = L16MediaStream()
    stream.feed(json.dumps(_metadata(mixType="mono")))
    [audio] = stream.feed(_mono(7))
    assert audio.track == "caller" and audio.pcm16 == _mono(7) and audio.t == 0.0


def test_audio_before_the_metadata_frame_is_held_and_released():
    stream = L16MediaStream()
    assert stream.feed(_stereo(1, 2)) == []
    assert stream.feed(_stereo(3, 4)) == []
    events = stream.feed(json.dumps(_metadata()))
    assert isinstance(events[0], CallStarted)
    assert [(e.track, e.t) for e in events[1:]] == [("caller", 0.0), ("agent", 0.0), ("caller", 0.02), ("agent", 0.02)]


@pytest.mark.parametrize("message", ["{not json", "[1, 2]", b"", b"\x00\x01\x02"])
def test_malformed_messages_raise_malformed(message):
    stream = L16MediaStream()
    stream.feed(json.dumps(_metadata()))
    with pytest.raises(MalformedMessage):
        stream.feed(message)


def test_stereo_frame_that_is_not_whole_sample_pairs_is_malformed_and_the_stream_goes_on():
    stream = L16MediaStream()
    stream.feed(json.dumps(_metadata()))
    with pytest.raises(MalformedMessage, match="2-channel"):
        stream.feed(b"\x00" * 642)
    assert [e.t for e in stream.feed(_stereo(1, 2))] == [0.0, 0.0]  # the bad frame took no time


@pytest.mark.parametrize("rate,hz", [(8000, 8000), ("16000", 16000), ("16k", 16000), ("44.1k", 44100), (None, 8000)])
def test_sample_rates_are_read_liberally(rate, hz):
    assert parse_sample_rate(rate) == hz


@pytest.mark.parametrize("msg", [_metadata(sampleRate=11025), _metadata(sampleRate="fast"),
                                 _metadata(mixType="surround")])
def test_unsupported_rate_or_mix_type_is_refused(msg):
    with pytest.raises(UnsupportedStream):
        L16MediaStream().feed(json.dumps(msg))


def test_dtmf_and_later_text_frames_produce_no_events():
    stream = L16MediaStream()
    stream.feed(json.dumps(_metadata()))
    assert stream.feed(json.dumps({"event": "dtmf", "dtmf": "5", "duration": 1280})) == []
    assert stream.feed(json.dumps(_metadata())) == []  # a second metadata frame is ignored
    assert stream.feed(json.dumps({"type": "playDone"})) == []


def test_a_closing_handshake_completes_the_call_and_a_drop_does_not():
    stream = L16MediaStream()
    assert stream.on_close(1000) is None  # no call yet
    stream.feed(json.dumps(_metadata()))
    assert stream.on_close(1000) == CallEnded("completed")
    assert stream.on_close(1005) is None  # what uvicorn reports for a dropped connection
    assert stream.on_close(1006) is None


def test_token_matching():
    assert token_matches("s3cret", None, "Bearer s3cret")
    assert token_matches("s3cret", None, basic_auth("s3cret")["Authorization"])
    assert token_matches("s3cret", "s3cret", None)
    assert not token_matches("s3cret", None, basic_auth("wrong")["Authorization"])
    assert not token_matches("s3cret", None, "Basic " + base64.b64encode(b"s3cret").decode())  # no password
    assert not token_matches("s3cret", None, "Basic !!!")
    assert not token_matches("s3cret", None, None)


def test_subprotocol_choice():
    assert offered_subprotocol(["audio.drachtio.org"]) == "audio.drachtio.org"
    assert offered_subprotocol(["x", "audio.jambonz.org"]) == "audio.jambonz.org"
    assert offered_subprotocol(["custom.name"]) == "custom.name"
    assert offered_subprotocol([]) is None


def test_simulator_sends_interleaved_caller_left_agent_right():
    call = SimulatedCall(caller=b"\x00" * 800, agent=b"\x80" * 800, parameters=PARAMS)  # μ-law: loud vs loud-negative
    audio, channels = l16_audio(call, rate=8000)
    samples = np.frombuffer(audio, dtype="<i2").reshape(-1, 2)
    assert channels == 2 and (samples[:, 0] < -30000).all() and (samples[:, 1] > 30000).all()
    assert metadata_message(call)["utm_source"] == "google"


# -- over a real socket ------------------------------------------------------------------


async def _connect(server, headers=None, subprotocols=("audio.jambonz.org",), query=""):
    headers = {"Authorization": f"Bearer {STREAM_TOKEN}"} if headers is None else headers
    return await websockets.connect(server.media_url("stream") + query, additional_headers=headers,
                                    subprotocols=list(subprotocols))


def _sid(name: str) -> str:
    return f"stream-test-{name}-{np.random.randint(1 << 30)}"


@pytest.mark.parametrize("headers", [None, basic_auth(STREAM_TOKEN), {}], ids=["bearer", "basic", "query"])
def test_valid_token_streams_a_stereo_call_that_ends_completed_on_a_normal_close(live_server, headers):
    sid = _sid("auth")

    async def scenario():
        query = f"?token={STREAM_TOKEN}" if headers == {} else ""
        ws = await _connect(live_server, headers=headers, query=query)
        assert ws.subprotocol == "audio.jambonz.org"
        await ws.send(json.dumps(_metadata(callSid=sid)))
        for _ in range(50):
            await ws.send(_stereo(1000, -1000))
        await ws.send(json.dumps({"event": "dtmf", "dtmf": "1", "duration": 800}))
        await ws.close(1000)
        return await wait_for_call_end(live_server, carrier_call_id=sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert stored["carrier"] == "stream" and stored["stream_id"] == sid
    assert stored["metadata"]["utm_source"] == "google" and stored["metadata"]["from"] == "+81312345678"
    channels, rate, samples = fetch_recording(live_server, stored["id"])
    assert channels == 2 and rate == 8000 and len(samples) == 2 * 50 * 160


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, basic_auth("wrong")])
def test_missing_or_wrong_token_is_closed_with_1008(live_server, headers):
    async def scenario():
        ws = await _connect(live_server, headers=headers)
        try:
            await ws.send(json.dumps(_metadata(callSid=_sid("noauth"))))
        except websockets.ConnectionClosed:
            pass
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1008


def test_drachtio_subprotocol_is_accepted(live_server):
    async def scenario():
        ws = await _connect(live_server, subprotocols=("audio.drachtio.org",))
        protocol = ws.subprotocol
        await ws.close(1000)
        return protocol

    assert asyncio.run(scenario()) == "audio.drachtio.org"


def test_caller_is_channel_0_and_agent_channel_1_in_the_recording(live_server):
    sid = _sid("channels")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(_metadata(callSid=sid, sampleRate=16000)))
        for _ in range(25):
            await ws.send(_stereo(1234, -4321, 320))
        await ws.close(1000)
        return await wait_for_call_end(live_server, carrier_call_id=sid)

    stored = asyncio.run(scenario())
    _, rate, caller = fetch_recording(live_server, stored["id"], "caller")
    _, _, agent = fetch_recording(live_server, stored["id"], "agent")
    assert rate == 16000 and len(caller) == len(agent) == 25 * 320
    assert (caller == 1234).all() and (agent == -4321).all()


def test_garbage_is_survived_and_every_valid_frame_is_recorded(live_server):
    sid = _sid("garbage")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(_stereo(5, 6))  # audio before the metadata frame: held
        await ws.send(json.dumps(_metadata(callSid=sid)))
        await ws.send("{this is not json")
        await ws.send(b"\x01\x02\x03")  # odd length
        await ws.send(b"\x01\x02\x03\x04\x05\x06")  # whole samples but not whole sample pairs
        await ws.send(json.dumps({"event": "teleport"}))
        for _ in range(49):
            await ws.send(_stereo(5, 6))
        await ws.close(1000)
        return await wait_for_call_end(live_server, carrier_call_id=sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 3
    _, _, caller = fetch_recording(live_server, stored["id"], "caller")
    assert len(caller) == 50 * 160 and (caller == 5).all()


def test_too_many_malformed_messages_close_with_1007_and_keep_the_recording(live_server):
    sid = _sid("flood")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(_metadata(callSid=sid, mixType="mono")))
        for _ in range(10):
            await ws.send(_mono(9))
        for _ in range(101):
            await ws.send(b"\x00")
        code = await close_code(ws)
        return code, await wait_for_call_end(live_server, carrier_call_id=sid)

    code, stored = asyncio.run(scenario())
    assert code == 1007
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    channels, _, samples = fetch_recording(live_server, stored["id"])
    assert channels == 1 and len(samples) == 10 * 160


def test_unsupported_sample_rate_is_closed_with_1003(live_server):
    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(_metadata(callSid=_sid("rate"), sampleRate=11025)))
        return await close_code(ws), ws.close_reason

    code, reason = asyncio.run(scenario())
    assert code == 1003 and "11025" in reason


def test_oversized_frame_is_refused_with_1009_and_the_call_kept(live_server):
    sid = _sid("big")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(_metadata(callSid=sid)))
        await ws.send(_stereo(1, 1))
        for _ in range(40):  # uvicorn drops frames still queued when it fails the connection
            if find_call(live_server, carrier_call_id=sid):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
        await ws.send(b"\x00" * 200_000)
        return await close_code(ws), await wait_for_call_end(live_server, carrier_call_id=sid)

    code, stored = asyncio.run(scenario())
    # uvicorn (ws_max_size) may refuse it before the adapter sees it: either way, not completed.
    assert code == 1009 and stored["status"] == "interrupted"
    assert len(fetch_recording(live_server, stored["id"], "caller").samples) == 160


def test_a_dropped_connection_keeps_the_recording_and_marks_the_call_interrupted(live_server):
    sid = _sid("drop")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(_metadata(callSid=sid)))
        for _ in range(20):
            await ws.send(_stereo(2, 3))
        await asyncio.sleep(0.5)
        ws.transport.abort()  # no closing handshake
        return await wait_for_call_end(live_server, carrier_call_id=sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "interrupted" and stored["end_reason"] == "disconnected"
    assert len(fetch_recording(live_server, stored["id"], "caller").samples) == 20 * 160


# -- end to end ---------------------------------------------------------------------------


def test_abusive_call_over_jambonz_listen_raises_a_text_alert_with_the_call_metadata(live_server):
    runs = asyncio.run(run_calls(live_server, {"stream_abusive": simulate_args("en_abusive")},
                                 protocol="stream", auth_token=STREAM_TOKEN))
    run, call = runs["stream_abusive"], load_call("en_abusive")
    started = run.of_type("call.started")[0]
    assert started["carrier"] == "stream" and started["tracks"] == ["caller", "agent"]
    assert run.ended["status"] == "ended" and run.ended["reason"] == "completed"
    assert_text_alerts(run, call.metadata)
