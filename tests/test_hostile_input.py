"""Hostile input, generated: every wire-format parser takes anything a peer can send.

Each parser is fed a real message sequence (from the simulators) in which hypothesis has
mutated messages: a value swapped for any JSON value (400-digit numbers, Infinity, NaN, lists,
lone surrogates, NUL), a key deleted, or the frame replaced by raw text or bytes. The contract
a carrier socket relies on: a parser either returns events or raises its own MalformedMessage /
UnsupportedStream (which the endpoint answers per protocol) — never anything else, which would
cost the call — and what it returns is safe to store, publish and play.

STREAM_SERVER_FUZZ_EXAMPLES sets the examples per parser (default 150; use thousands for a
deep run).
"""

from __future__ import annotations

import json
import math
import os
import struct
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_server.media import (
    audiohook,
    audiosocket,
    l16_stream,
    telnyx,
    twilio,
    vonage,
    webrtc,
)
from stream_server.media.codecs import pcm16_to_ulaw
from stream_server.media.errors import MalformedMessage, UnsupportedStream
from stream_server.media.events import Audio, CallStarted
from stream_server.simulator import SimulatedCall
from stream_server.simulator import audiohook as audiohook_sim
from stream_server.simulator import stream as stream_sim
from stream_server.simulator import telnyx as telnyx_sim
from stream_server.simulator import twilio as twilio_sim
from stream_server.simulator import vonage as vonage_sim

EXAMPLES = int(os.environ.get("STREAM_SERVER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPECTED = (MalformedMessage, UnsupportedStream)

ULAW_20MS = pcm16_to_ulaw(np.full(160, 5000, "<i2").tobytes())
L16_20MS = np.full(160, 5000, "<i2").tobytes()
SLIN_8K = 0x10  # AudioSocket's signed-linear 8 kHz frame type
PARAMETERS = {"from": "+81312345678", "utm_source": "google", "tracking_number": "+81120555003"}

# Any JSON a peer can send, with what breaks naive parsers over-represented.
HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=10**300, max_value=10**400), st.just(-(10**400)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.just("\udc80"), st.just("a\x00b"), st.just("x" * 5000), st.just("1" * 400),
    st.just("PT1.0S\n"), st.just("\u0663"),  # an Arabic-Indic digit: `\d` matches it
)
JSON_VALUES = st.recursive(
    HOSTILE_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
RAW_FRAMES = st.one_of(
    st.text(max_size=200), st.binary(max_size=400),
    # A JSON int over 4300 digits: json.loads raises plain ValueError, not JSONDecodeError.
    st.integers(4301, 6000).map(lambda n: '{"event":"media","media":{"timestamp":' + "9" * n + "}}"),
    st.just('{"event":"start","start":{"media_format":{"sample_rate":Infinity}}}'),
    st.just("[" * 100_000),
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON tree a mutation can hit (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


def _mutate(message: dict, data: st.DataObject) -> str | bytes:
    """One message, changed the way a broken or hostile peer would change it."""
    kind = data.draw(st.sampled_from(["replace", "replace", "delete", "raw"]), label="mutation")
    if kind == "raw":
        return data.draw(RAW_FRAMES, label="raw frame")
    message = json.loads(json.dumps(message))
    path = data.draw(st.sampled_from(_paths(message)), label="path")
    if not path:
        return json.dumps(data.draw(JSON_VALUES, label="root"))
    parent = message
    for step in path[:-1]:
        parent = parent[step]
    if kind == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES, label="value")
    return json.dumps(message)


def _feed_all(feed: Callable[[Any], list], frames: list[str | bytes]) -> list:
    """Feed every frame as the endpoint would, keeping going after the errors it tolerates."""
    events: list = []
    for frame in frames:
        try:
            events += feed(frame)
        except EXPECTED:
            continue
    return events


def _assert_safe(events: list) -> None:
    """What a parser hands the pipeline can be stored, published and played."""
    for event in events:
        if isinstance(event, CallStarted):
            strings = [event.carrier_call_id, event.stream_id, *event.metadata, *event.metadata.values()]
            for text in strings:
                assert isinstance(text, str) and "\x00" not in text
                text.encode("utf-8")  # no lone surrogates
            assert len(event.carrier_call_id) <= 128 and len(event.stream_id) <= 128
            json.dumps(event.metadata)
            assert 8000 <= event.sample_rate <= 48000
        elif isinstance(event, Audio):
            assert event.track in ("caller", "agent")
            assert len(event.pcm16) % 2 == 0 and event.pcm16
            assert math.isfinite(event.t) and 0.0 <= event.t < 86_400.0
            assert 8000 <= event.sample_rate <= 48000


def _fuzz(sequence: list[dict | bytes], data: st.DataObject) -> list[str | bytes]:
    """The real sequence with one to three of its messages mutated or raw frames inserted."""
    frames: list[str | bytes] = [m if isinstance(m, bytes) else json.dumps(m) for m in sequence]
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        i = data.draw(st.integers(0, len(sequence) - 1), label="index")
        original = sequence[i]
        changed = data.draw(st.binary(max_size=700), label="bytes") if isinstance(original, bytes) \
            else _mutate(original, data)
        if data.draw(st.booleans(), label="insert"):
            frames.insert(i, changed)
        else:
            frames[i] = changed
    return frames


def _call() -> SimulatedCall:
    return SimulatedCall(caller=ULAW_20MS * 2, agent=ULAW_20MS * 2, parameters=dict(PARAMETERS))


@FUZZ
@given(st.data())
def test_twilio_parser_takes_anything(data):
    call = _call()
    sequence = [{"event": "connected", "protocol": "Call", "version": "1.0.0"}, twilio_sim.start_message(call),
                twilio_sim.media_message(call, 2, "inbound", 1, ULAW_20MS),
                twilio_sim.media_message(call, 3, "outbound", 1, ULAW_20MS), twilio_sim.stop_message(call, 4)]
    _assert_safe(_feed_all(twilio.TwilioMediaStream().feed, _fuzz(sequence, data)))


@FUZZ
@given(st.data())
def test_telnyx_parser_takes_anything(data):
    call = _call()
    sequence = [telnyx_sim.connected_message("token"), telnyx_sim.start_message(call),
                telnyx_sim.media_message(call, 2, "inbound", 1, ULAW_20MS),
                telnyx_sim.media_message(call, 3, "outbound", 1, ULAW_20MS), telnyx_sim.stop_message(call, 4)]
    frames = _fuzz(sequence, data)
    for frame in frames:
        token = telnyx.connected_token(frame)
        assert token is None or isinstance(token, str)
        telnyx.token_matches("token", token)
    _assert_safe(_feed_all(telnyx.TelnyxMediaStream().feed, frames))


@FUZZ
@given(st.data())
def test_vonage_parser_takes_anything(data):
    call = _call()
    sequence = [vonage_sim.connected_message(call, 16000), L16_20MS * 2, L16_20MS * 2,
                {"event": "websocket:dtmf", "digit": "5", "duration": 100}]
    adapter = vonage.VonageMediaStream()
    _assert_safe(_feed_all(adapter.feed, _fuzz(sequence, data)))
    adapter.on_close(data.draw(st.one_of(st.none(), st.integers()), label="close code"))


@FUZZ
@given(st.data())
def test_jambonz_stream_parser_takes_anything(data):
    call = _call()
    sequence = [stream_sim.metadata_message(call, 8000), L16_20MS * 2, L16_20MS * 2, {"type": "dtmf", "digit": "1"}]
    _assert_safe(_feed_all(l16_stream.L16MediaStream().feed, _fuzz(sequence, data)))


@FUZZ
@given(st.data())
def test_audiohook_parser_takes_anything(data):
    client = audiohook_sim.ClientSession(str(uuid.uuid4()))
    call = _call()

    def envelope(type_: str, parameters: dict) -> dict:
        return json.loads(client.message(type_, parameters))

    sequence: list[dict | bytes] = [
        envelope("open", audiohook_sim.open_parameters(call, str(uuid.uuid4()), str(uuid.uuid4()))),
        audiohook_sim.interleave(call, 0, 2, ["external", "internal"]),
        envelope("ping", {}), envelope("paused", {}), envelope("resumed", {}),
        envelope("update", {"language": "ja-JP"}), envelope("close", {"reason": "end"}),
    ]
    adapter = audiohook.AudioHookSession(client.session_id)
    frames = _fuzz(sequence, data)
    # AudioHook answers every problem in-protocol (error / disconnect), so it raises nothing at all.
    events = [event for frame in frames for event in adapter.feed(frame)]
    _assert_safe(events)


@FUZZ
@given(st.data())
def test_audiosocket_parser_takes_any_bytes(data):
    call_id = uuid.uuid4().bytes
    frames = [audiosocket.frame(audiosocket.KIND_UUID, call_id), audiosocket.frame(SLIN_8K, L16_20MS),
              audiosocket.frame(audiosocket.KIND_DTMF, b"5"), audiosocket.frame(SLIN_8K, L16_20MS)]
    stream = bytearray(b"".join(frames))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        at = data.draw(st.integers(0, len(stream)), label="offset")
        junk = data.draw(st.one_of(st.binary(max_size=64), st.builds(
            lambda kind, length, body: struct.pack(">BH", kind, length) + body,
            st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=64))), label="junk")
        stream[at:at + data.draw(st.integers(0, 8), label="overwrite")] = junk
    chunks = data.draw(st.lists(st.integers(1, 97), min_size=1, max_size=8), label="chunking")
    parser = audiosocket.AudioSocketStream()
    events, at, i = [], 0, 0
    while at < len(stream):
        size = chunks[i % len(chunks)]
        try:
            events += parser.feed(bytes(stream[at:at + size]))
        except audiosocket.ProtocolError:
            break  # the server answers with a hangup and closes: the parser need not go on
        at, i = at + size, i + 1
    _assert_safe(events)


WEBRTC_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
)


@FUZZ
@given(st.data())
def test_webrtc_offer_parser_takes_anything(data):
    offer = {"type": "offer", "sdp": WEBRTC_SDP, "track": "agent", "call_id": "softphone-7",
             "metadata": dict(PARAMETERS)}
    body = _mutate(offer, data)
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")  # a request body is bytes, whatever a client sends
    try:
        parsed = webrtc.parse_offer(body)
    except webrtc.OfferError as exc:  # POST /v1/webrtc/offer answers 400 with this message
        str(exc).encode("utf-8")
        return
    assert parsed.track in ("caller", "agent")
    for text in (parsed.carrier_call_id, *parsed.metadata, *parsed.metadata.values()):
        assert isinstance(text, str) and "\x00" not in text
        text.encode("utf-8")
    assert 0 < len(parsed.carrier_call_id) <= webrtc.MAX_CALL_ID_CHARS and len(parsed.metadata) <= 64


@pytest.mark.parametrize("header", ["Bearer \udc80", "Basic \udc80", "\udc80", "Basic " + "A" * 10_001, "Bearer"])
def test_credential_checks_take_any_header(header):
    assert not vonage.token_matches("s3cret", "\udc80", header)
    assert not l16_stream.token_matches("s3cret", None, header)
    assert not telnyx.token_matches("s3cret", header)


@pytest.mark.parametrize("duration", ["PT1.0S\n", "PT\u0663S", "PT1S ", "pt1s", "PT-1S", "PT1e3S"])
def test_audiohook_durations_are_the_protocols_form_only(duration):
    assert audiohook.parse_duration(duration) is None
    assert audiohook.parse_duration("PT1.25S") == 1.25
