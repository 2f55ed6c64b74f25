"""Telnyx Media Streaming: the wire format message by message, then /v1/media/telnyx over a real
socket against the live server (auth, documented sequence, garbage, an abusive call end to end)."""

import asyncio
import json

import numpy as np
import pytest
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    MALFORMED_FRAMES,
    TELNYX_STREAM_TOKEN,
    assert_media_held_until_start,
    assert_text_alerts,
    close_code,
    fetch_recording,
    find_call,
    run_calls,
    wait_for_call_end,
)

from stream_server.media.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from stream_server.media.errors import MalformedMessage, UnsupportedStream
from stream_server.media.events import Audio, CallEnded, CallStarted
from stream_server.media.telnyx import (
    MAX_PARAMETER_CHARS,
    TOKEN_HEADER,
    TelnyxMediaStream,
    connected_token,
    token_matches,
)
from stream_server.simulator import SimulatedCall
from stream_server.simulator.telnyx import (
    auth_headers,
    connected_message,
    media_message,
    start_message,
    stop_message,
)

ULAW_FRAME = pcm16_to_ulaw(b"\x10\x27" * 160)  # 20 ms of a constant 10000
SILENCE = b"\xff" * 160  # 20 ms of μ-law silence


def _call(**parameters) -> SimulatedCall:
    params = {"utm_source": "google", "tracking_number": "+81120000001", "from": "+81312345678"}
    return SimulatedCall(caller=b"", agent=b"", parameters={**params, **parameters})


def _started(call=None, **fmt) -> tuple[TelnyxMediaStream, SimulatedCall, list]:
    stream, call = TelnyxMediaStream(), call or _call()
    return stream, call, stream.feed(json.dumps(start_message(call, **fmt)))


# -- the wire format ----------------------------------------------------------------------


def test_connected_is_accepted_silently_and_its_token_can_be_read():
    assert TelnyxMediaStream().feed(json.dumps(connected_message("tok"))) == []
    assert connected_token(json.dumps(connected_message("tok"))) == "tok"
    assert connected_token(json.dumps({"event": "connected", TOKEN_HEADER: "top"})) == "top"
    assert connected_token(json.dumps(connected_message())) is None
    assert connected_token(json.dumps({"event": "start", "connected": {TOKEN_HEADER: "x"}})) is None
    assert connected_token("{not json") is None


def test_start_becomes_call_started_with_custom_parameters_numbers_and_call_control_id():
    _, call, [event] = _started()
    assert isinstance(event, CallStarted)
    assert event.carrier == "telnyx"
    assert event.tracks == ("caller",)  # Telnyx does not announce the tracks; agent opens on its first frame
    assert event.metadata == {"utm_source": "google", "tracking_number": "+81120000001", "from": "+81312345678"}
    assert event.carrier_call_id == "v3:" + call.call_sid
    assert event.stream_id == call.stream_sid
    assert event.sample_rate == 8000


def test_documented_start_example_metadata():
    start = {
        "event": "start", "sequence_number": "1", "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        "start": {
            "user_id": "3E6F995F", "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
            "call_session_id": "ff55a038", "from": "+13122010094", "to": "+13122123456", "tags": ["TAG1", "TAG2"],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d", "custom_parameters": {"customer_id": "customer_123",
                                                                              "from": "spoofed"},
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        },
    }
    [event] = TelnyxMediaStream().feed(json.dumps(start))
    assert event.metadata == {"customer_id": "customer_123", "from": "+13122010094", "to": "+13122123456",
                              "tags": "TAG1,TAG2", "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d"}
    assert event.carrier_call_id.startswith("v2:T02ll") and event.stream_id.startswith("32DE0DEA")


def test_pcmu_media_is_decoded_with_stream_time_and_track_role():
    stream, call, _ = _started()
    [inbound] = stream.feed(json.dumps(media_message(call, 2, "inbound", 51, ULAW_FRAME)))
    [outbound] = stream.feed(json.dumps(media_message(call, 3, "outbound", 51, ULAW_FRAME)))
    assert isinstance(inbound, Audio) and isinstance(outbound, Audio)
    assert (inbound.track, outbound.track) == ("caller", "agent")
    assert inbound.t == pytest.approx(1.0)  # chunk 51 → timestamp 1000 ms
    assert inbound.pcm16 == ulaw_to_pcm16(ULAW_FRAME) and inbound.sample_rate == 8000


def test_pcma_media_is_decoded_as_a_law():
    import audioop

    alaw = audioop.lin2alaw(b"\x10\x27" * 160, 2)
    stream, call, _ = _started(encoding="PCMA")
    [audio] = stream.feed(json.dumps(media_message(call, 2, "inbound", 1, alaw)))
    assert audio.pcm16 == audioop.alaw2lin(alaw, 2)
    assert abs(int.from_bytes(audio.pcm16[:2], "little", signed=True) - 10000) < 400


def test_l16_is_big_endian_and_keeps_its_sample_rate():
    samples = (np.sin(np.arange(320) / 5) * 12000).astype(np.int16)
    stream, call, [started] = _started(encoding="L16", sample_rate=16000)
    assert started.sample_rate == 16000
    msg = media_message(call, 2, "inbound", 1, samples.astype(">i2").tobytes())
    [audio] = stream.feed(json.dumps(msg))
    assert audio.sample_rate == 16000
    assert audio.pcm16 == samples.astype("<i2").tobytes()
    odd = media_message(call, 3, "inbound", 2, b"\x00\x01\x02")
    with pytest.raises(MalformedMessage, match="odd"):
        stream.feed(json.dumps(odd))


def test_older_twilio_style_encoding_name_is_accepted():
    _, _, [event] = _started(encoding="audio/x-mulaw")
    assert isinstance(event, CallStarted)


@pytest.mark.parametrize("fmt", [{"encoding": "OPUS"}, {"encoding": "G722"}, {"encoding": "L16", "sample_rate": 96000}])
def test_unsupported_media_format_is_refused(fmt):
    with pytest.raises(UnsupportedStream):
        _started(**fmt)


def test_stereo_is_refused():
    start = start_message(_call())
    start["start"]["media_format"]["channels"] = 2
    with pytest.raises(UnsupportedStream, match="channel"):
        TelnyxMediaStream().feed(json.dumps(start))


def test_stop_ends_the_call_and_later_messages_are_ignored():
    stream, call, _ = _started()
    [event] = stream.feed(json.dumps(stop_message(call, 9)))
    assert event == CallEnded("completed") and not event.abnormal
    assert stream.feed(json.dumps(media_message(call, 10, "inbound", 9, ULAW_FRAME))) == []


@pytest.mark.parametrize(
    "message",
    [
        {"event": "error", "error": {"title": "invalid_media", "code": 100004, "detail": "bad"}},
        {"event": "error", "payload": {"title": "x", "code": 1, "detail": "y"}},
        {"event": "dtmf", "dtmf": {"digit": "1"}, "stream_id": "s"},
        {"event": "mark", "mark": {"name": "greeting"}},
        {"event": "quantum", "x": 1},
        {"no_event": True},
    ],
)
def test_error_dtmf_mark_and_unknown_events_produce_nothing_and_do_not_end_the_call(message):
    stream, call, _ = _started()
    assert stream.feed(json.dumps(message)) == []
    [audio] = stream.feed(json.dumps(media_message(call, 5, "inbound", 1, ULAW_FRAME)))
    assert isinstance(audio, Audio)


def test_media_before_start_is_held_and_released_after_start():
    call = _call()
    media = [media_message(call, 2, "inbound", 1, ULAW_FRAME), media_message(call, 3, "inbound", 2, ULAW_FRAME)]
    assert_media_held_until_start(TelnyxMediaStream(), media, start_message(call), times=[0.0, 0.02])


def test_time_comes_from_timestamp_else_chunk_else_back_to_back():
    stream, call, _ = _started()
    no_ts = media_message(call, 2, "inbound", 11, ULAW_FRAME)
    del no_ts["media"]["timestamp"]
    [audio] = stream.feed(json.dumps(no_ts))
    assert audio.t == pytest.approx(0.2)  # chunk 11 of 20 ms frames
    times = []
    for chunk in (1, 2, 3):
        msg = media_message(call, chunk, "outbound", chunk, ULAW_FRAME)
        del msg["media"]["timestamp"], msg["media"]["chunk"]
        times += [e.t for e in stream.feed(json.dumps(msg))]
    assert times == pytest.approx([0.0, 0.02, 0.04])


@pytest.mark.parametrize(
    "message",
    [
        *MALFORMED_FRAMES,
        json.dumps({"event": "start", "start": {"media_format": "PCMU"}}),
        json.dumps({"event": "start", "start": {"media_format": {"encoding": "PCMU", "sample_rate": "fast"}}}),
    ],
)
def test_malformed_messages_raise_malformed(message):
    with pytest.raises(MalformedMessage):
        TelnyxMediaStream().feed(message)


def test_bad_payload_track_and_timestamp_are_malformed_and_the_stream_goes_on():
    stream, call, _ = _started()
    bad = media_message(call, 2, "inbound", 1, ULAW_FRAME)
    bad["media"]["payload"] = "***not base64***"
    with pytest.raises(MalformedMessage, match="base64"):
        stream.feed(json.dumps(bad))
    with pytest.raises(MalformedMessage, match="track"):
        stream.feed(json.dumps(media_message(call, 3, "sideways", 1, ULAW_FRAME)))
    late = media_message(call, 4, "inbound", 1, ULAW_FRAME)
    late["media"]["timestamp"] = "-5"
    with pytest.raises(MalformedMessage, match="timestamp"):
        stream.feed(json.dumps(late))
    empty = media_message(call, 5, "inbound", 1, b"")
    with pytest.raises(MalformedMessage, match="empty"):
        stream.feed(json.dumps(empty))
    [good] = stream.feed(json.dumps(media_message(call, 6, "inbound", 2, ULAW_FRAME)))
    assert isinstance(good, Audio)


def test_duplicate_start_is_ignored():
    stream, call, _ = _started()
    assert stream.feed(json.dumps(start_message(call))) == []


def test_hostile_custom_parameters_are_bounded_strings():
    call = _call()
    call.parameters = {f"k{i}": "x" * 5000 for i in range(500)} | {"from": "y" * 5000}
    start = start_message(call)
    start["start"]["custom_parameters"]["nested"] = {"a": 1}
    [event] = TelnyxMediaStream().feed(json.dumps(start))
    assert len(event.metadata) <= 65
    assert all(isinstance(v, str) and len(v) <= MAX_PARAMETER_CHARS for v in event.metadata.values())


def test_token_comparison():
    assert token_matches("secret", "secret")
    assert not token_matches("secret", "Secret") and not token_matches("secret", None)
    assert not token_matches("secret", "")


# -- over a real socket -------------------------------------------------------------------


def _url(server) -> str:
    return server.media_url("telnyx")


async def _started_stream(server, call: SimulatedCall, frames: int) -> websockets.ClientConnection:
    """An authenticated stream that has started `call` and sent `frames` inbound 20 ms silences."""
    ws = await websockets.connect(_url(server), additional_headers=auth_headers(TELNYX_STREAM_TOKEN))
    await ws.send(json.dumps(start_message(call)))
    for chunk in range(1, frames + 1):
        await ws.send(json.dumps(media_message(call, chunk + 1, "inbound", chunk, SILENCE)))
    return ws


@pytest.mark.parametrize(
    "header, in_connected",
    [(None, None), ("wrong-token", None), (None, "wrong-token"), ("wrong-token", TELNYX_STREAM_TOKEN)],
    ids=["none", "wrong-header", "wrong-in-connected", "wrong-header-right-connected"],
)
def test_stream_without_the_right_token_is_closed_with_1008(live_server, header, in_connected):
    call = _call()

    async def scenario():
        ws = await websockets.connect(_url(live_server), additional_headers=auth_headers(header))
        try:  # the server may already have closed: that is the point
            await ws.send(json.dumps(connected_message(in_connected)))
            await ws.send(json.dumps(start_message(call)))
            await ws.send(json.dumps(media_message(call, 2, "inbound", 1, SILENCE)))
        except websockets.ConnectionClosed:
            pass
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1008
    assert find_call(live_server, stream_id=call.stream_sid) is None  # nothing was recorded for it


def test_token_in_the_connected_frame_alone_is_accepted(live_server):
    call = _call()

    async def scenario():
        ws = await websockets.connect(_url(live_server))  # a proxy stripped the header
        await ws.send(json.dumps(connected_message(TELNYX_STREAM_TOKEN)))
        await ws.send(json.dumps(start_message(call)))
        for chunk in range(1, 11):
            await ws.send(json.dumps(media_message(call, chunk + 1, "inbound", chunk, SILENCE)))
        await ws.send(json.dumps(stop_message(call, 20)))
        return await close_code(ws), await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1000 and stored["status"] == "ended"


def test_documented_sequence_with_both_tracks_out_of_order_is_recorded_in_order(live_server):
    call = _call(utm_campaign="spring")
    caller = [pcm16_to_ulaw(int(100 * i).to_bytes(2, "little", signed=True) * 160) for i in range(40)]
    agent = [pcm16_to_ulaw(int(-150 * i).to_bytes(2, "little", signed=True) * 160) for i in range(40)]
    order = list(range(40))
    order[5], order[6] = order[6], order[5]  # Telnyx does not promise order
    order[20:23] = [22, 20, 21]
    order.insert(30, 29)  # and a duplicate

    async def scenario():
        ws = await websockets.connect(_url(live_server), additional_headers=auth_headers(TELNYX_STREAM_TOKEN))
        await ws.send(json.dumps(connected_message(TELNYX_STREAM_TOKEN)))
        await ws.send(json.dumps(start_message(call)))
        seq = 1
        for i in order:
            for track, frames in (("inbound", caller), ("outbound", agent)):
                seq += 1
                await ws.send(json.dumps(media_message(call, seq, track, i + 1, frames[i])))
        await ws.send(json.dumps({"event": "dtmf", "stream_id": call.stream_sid, "dtmf": {"digit": "5"}}))
        await ws.send(json.dumps(stop_message(call, seq + 2)))
        return await close_code(ws), await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1000
    assert stored["carrier"] == "telnyx" and stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert stored["carrier_call_id"] == "v3:" + call.call_sid
    assert stored["metadata"]["utm_source"] == "google" and stored["metadata"]["utm_campaign"] == "spring"
    assert stored["metadata"]["from"] == "+81312345678" and stored["caller_number"] == "+81312345678"
    assert stored["metadata"]["tracking_number"] == "+81120000001"
    assert stored["stats"]["caller"]["stale_frames"] == 1 and stored["stats"]["agent"]["stale_frames"] == 1
    assert stored["tracks"] == ["caller", "agent"]  # the start announced none; the call had both
    recorded = fetch_recording(live_server, stored["id"], "caller").frames
    assert recorded == b"".join(ulaw_to_pcm16(f) for f in caller)
    recorded = fetch_recording(live_server, stored["id"], "agent").frames
    assert recorded == b"".join(ulaw_to_pcm16(f) for f in agent)


def test_l16_at_16khz_is_recorded_at_16khz(live_server):
    call = _call()
    samples = (np.sin(np.arange(3200) / 7) * 8000).astype(np.int16)  # 200 ms

    async def scenario():
        ws = await websockets.connect(_url(live_server), additional_headers=auth_headers(TELNYX_STREAM_TOKEN))
        await ws.send(json.dumps(start_message(call, encoding="L16", sample_rate=16000)))
        for i in range(10):
            frame = samples[i * 320 : (i + 1) * 320].astype(">i2").tobytes()
            await ws.send(json.dumps(media_message(call, i + 2, "inbound", i + 1, frame)))
        await ws.send(json.dumps(stop_message(call, 20)))
        return await close_code(ws), await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1000
    recording = fetch_recording(live_server, stored["id"], "caller")
    assert recording.rate == 16000 and recording.frames == samples.astype("<i2").tobytes()


def test_garbage_and_error_frames_are_survived_and_every_valid_frame_is_recorded(live_server):
    call = _call(utm_source="garbage-test")

    async def scenario():
        ws = await websockets.connect(_url(live_server), additional_headers=auth_headers(TELNYX_STREAM_TOKEN))
        await ws.send(json.dumps(connected_message(TELNYX_STREAM_TOKEN)))
        await ws.send(json.dumps(media_message(call, 1, "inbound", 1, SILENCE)))  # media before start
        await ws.send(json.dumps(start_message(call)))
        await ws.send("{this is not json")
        await ws.send(json.dumps({"event": "teleport", "where": "mars"}))
        await ws.send(json.dumps({"event": "error", "stream_id": call.stream_sid,
                                  "error": {"title": "malformed_frame", "code": 100003, "detail": "x"}}))
        bad = media_message(call, 3, "inbound", 2, SILENCE)
        bad["media"]["payload"] = "!!!not-base64!!!"
        await ws.send(json.dumps(bad))
        await ws.send(json.dumps(media_message(call, 3, "inbound", 2, SILENCE))[:-7])  # truncated frame
        await ws.send(b"\x00\x01\x02")
        for chunk in range(2, 51):
            await ws.send(json.dumps(media_message(call, chunk + 3, "inbound", chunk, SILENCE)))
        await ws.send(json.dumps(stop_message(call, 60)))
        return await close_code(ws), await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1000
    # Bad JSON, bad base64, the truncated frame and the binary frame were dropped; the unknown
    # event and Telnyx's own error frame are not the stream's fault and are not counted.
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 4
    assert stored["metadata"]["utm_source"] == "garbage-test"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 50 * 160 * 2  # the held pre-start frame + chunks 2..50


def test_too_many_malformed_messages_close_with_1007_and_keep_the_call(live_server):
    call = _call()

    async def scenario():
        ws = await _started_stream(live_server, call, frames=10)
        for _ in range(101):
            await ws.send("not json")
        code = await close_code(ws)
        return code, ws.close_reason, await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, reason, stored = asyncio.run(scenario())
    assert code == 1007 and "malformed" in reason
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 10 * 160 * 2


def test_unsupported_encoding_is_closed_with_1003(live_server):
    async def scenario():
        ws = await websockets.connect(_url(live_server), additional_headers=auth_headers(TELNYX_STREAM_TOKEN))
        await ws.send(json.dumps(start_message(_call(), encoding="OPUS", sample_rate=16000)))
        return await close_code(ws), ws.close_reason

    code, reason = asyncio.run(scenario())
    assert code == 1003 and "OPUS" in reason


def test_oversized_message_is_refused_with_1009_and_the_call_kept(live_server):
    call = _call()

    async def scenario():
        ws = await _started_stream(live_server, call, frames=1)
        await asyncio.sleep(0.5)  # uvicorn drops frames still queued when it fails the connection
        await ws.send(json.dumps(media_message(call, 3, "inbound", 2, b"\xff" * 100_000)))
        return await close_code(ws), await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1009
    # uvicorn (ws_max_size) or the adapter loop refuses it: either way an abnormal end.
    assert stored["status"] == "interrupted" and stored["end_reason"] in ("message_too_big", "disconnected")
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 160 * 2


def test_dropped_connection_is_an_interrupted_call_with_its_recording(live_server):
    call = _call()

    async def scenario():
        ws = await _started_stream(live_server, call, frames=20)
        await asyncio.sleep(0.5)
        ws.transport.abort()  # no stop, no closing handshake
        return await wait_for_call_end(live_server, stream_id=call.stream_sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "interrupted" and stored["end_reason"] == "disconnected"
    recorded = fetch_recording(live_server, stored["id"]).frames
    assert len(recorded) == 20 * 160 * 2


# -- end to end ---------------------------------------------------------------------------


def test_abusive_call_over_telnyx_raises_a_text_alert_with_the_call_metadata(live_server):
    runs = asyncio.run(run_calls(live_server, {"telnyx_abusive": simulate_args("en_abusive")},
                                 protocol="telnyx", auth_token=TELNYX_STREAM_TOKEN))
    run, truth = runs["telnyx_abusive"], load_call("en_abusive")
    started = run.of_type("call.started")[0]
    assert started["carrier"] == "telnyx" and "caller" in started["tracks"]
    assert started["carrier_call_id"].startswith("v3:")
    assert run.ended["status"] == "ended"
    assert_text_alerts(run, truth.metadata)
    with live_server.client() as http:  # the outbound leg arrived as the agent track
        assert http.get(f"/v1/calls/{run.call_id}/recording.wav", params={"track": "agent"}).status_code == 200
