"""Twilio Media Streams wire format → media events, message by message."""

import base64
import json

import pytest
from live_server import MALFORMED_FRAMES, assert_media_held_until_start

from stream_server.media.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from stream_server.media.errors import MalformedMessage, UnsupportedStream
from stream_server.media.events import Audio, CallEnded, CallStarted
from stream_server.media.metadata import MAX_PARAMETER_CHARS
from stream_server.media.twilio import TwilioMediaStream, verify_signature
from stream_server.simulator import (
    SimulatedCall,
    media_message,
    signature_headers,
    start_message,
)

ULAW_FRAME = pcm16_to_ulaw(b"\x10\x27" * 160)  # 20 ms of a constant 10000


def _call() -> SimulatedCall:
    return SimulatedCall(caller=b"", agent=b"", parameters={"utm_source": "google", "from": "+81312345678"})


def _start(stream: TwilioMediaStream, call: SimulatedCall) -> list:
    return stream.feed(json.dumps(start_message(call)))


def test_connected_is_accepted_silently():
    stream = TwilioMediaStream()
    assert stream.feed(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})) == []


def test_start_becomes_call_started_with_metadata_and_both_tracks():
    call = _call()
    [event] = _start(TwilioMediaStream(), call)
    assert isinstance(event, CallStarted)
    assert event.carrier == "twilio"
    assert event.tracks == ("caller", "agent")
    assert event.metadata == {"utm_source": "google", "from": "+81312345678"}
    assert event.carrier_call_id == call.call_sid
    assert event.stream_id == call.stream_sid
    assert event.sample_rate == 8000


def test_media_is_decoded_to_pcm16_with_stream_time_and_track_role():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    [inbound] = stream.feed(json.dumps(media_message(call, 2, "inbound", 51, ULAW_FRAME)))
    [outbound] = stream.feed(json.dumps(media_message(call, 3, "outbound", 51, ULAW_FRAME)))
    assert isinstance(inbound, Audio)
    assert inbound.track == "caller" and outbound.track == "agent"
    assert inbound.t == pytest.approx(1.0)  # chunk 51 → timestamp 1000 ms
    assert inbound.sample_rate == 8000
    assert inbound.pcm16 == ulaw_to_pcm16(ULAW_FRAME)
    assert len(inbound.pcm16) == 320


def test_dtmf_and_mark_produce_no_events():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    dtmf = {"event": "dtmf", "streamSid": call.stream_sid, "sequenceNumber": "5",
            "dtmf": {"track": "inbound_track", "digit": "1"}}
    mark = {"event": "mark", "streamSid": call.stream_sid, "sequenceNumber": "6", "mark": {"name": "greeting"}}
    assert stream.feed(json.dumps(dtmf)) == []
    assert stream.feed(json.dumps(mark)) == []


def test_stop_ends_the_call_and_later_messages_are_ignored():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    [event] = stream.feed(json.dumps({"event": "stop", "sequenceNumber": "9", "streamSid": call.stream_sid,
                                      "stop": {"accountSid": "AC1", "callSid": call.call_sid}}))
    assert event == CallEnded("completed") and not event.abnormal
    assert stream.feed(json.dumps(media_message(call, 10, "inbound", 9, ULAW_FRAME))) == []


def test_media_before_start_is_held_and_released_after_start():
    call = _call()
    media = [media_message(call, 2, "inbound", 1, ULAW_FRAME), media_message(call, 3, "inbound", 2, ULAW_FRAME)]
    assert_media_held_until_start(TwilioMediaStream(), media, start_message(call), times=[0.0, 0.02])


@pytest.mark.parametrize(
    "message",
    [
        *MALFORMED_FRAMES,
        json.dumps({"event": "start", "start": {"tracks": "inbound"}}),
    ],
)
def test_malformed_messages_raise_malformed(message):
    with pytest.raises(MalformedMessage):
        TwilioMediaStream().feed(message)


def test_bad_base64_is_malformed_and_the_stream_goes_on():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    bad = media_message(call, 2, "inbound", 1, ULAW_FRAME)
    bad["media"]["payload"] = "***not base64***"
    with pytest.raises(MalformedMessage, match="base64"):
        stream.feed(json.dumps(bad))
    [good] = stream.feed(json.dumps(media_message(call, 3, "inbound", 2, ULAW_FRAME)))
    assert isinstance(good, Audio)


def test_unknown_event_is_ignored():
    stream = TwilioMediaStream()
    assert stream.feed(json.dumps({"event": "quantum", "x": 1})) == []
    assert stream.feed(json.dumps({"no_event": True})) == []


def test_unknown_track_and_timestamp_out_of_range_are_malformed():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    msg = media_message(call, 2, "sideways", 1, ULAW_FRAME)
    with pytest.raises(MalformedMessage, match="track"):
        stream.feed(json.dumps(msg))
    msg = media_message(call, 2, "inbound", 1, ULAW_FRAME)
    msg["media"]["timestamp"] = "-5"
    with pytest.raises(MalformedMessage, match="timestamp"):
        stream.feed(json.dumps(msg))


def test_missing_timestamp_falls_back_to_back_to_back_chunks():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    times = []
    for chunk in (1, 2, 3):
        msg = media_message(call, chunk + 1, "inbound", chunk, ULAW_FRAME)
        del msg["media"]["timestamp"]
        times += [e.t for e in stream.feed(json.dumps(msg))]
    assert times == pytest.approx([0.0, 0.02, 0.04])


def test_unsupported_encoding_is_refused():
    call = _call()
    start = start_message(call)
    start["start"]["mediaFormat"]["encoding"] = "audio/x-l16"
    with pytest.raises(UnsupportedStream):
        TwilioMediaStream().feed(json.dumps(start))


def test_duplicate_start_is_ignored():
    stream, call = TwilioMediaStream(), _call()
    _start(stream, call)
    assert _start(stream, call) == []


def test_hostile_custom_parameters_are_bounded_strings():
    call = _call()
    call.parameters = {f"k{i}": "x" * 5000 for i in range(500)}
    start = start_message(call)
    start["start"]["customParameters"]["nested"] = {"a": 1}
    [event] = TwilioMediaStream().feed(json.dumps(start))
    assert len(event.metadata) == 64
    assert all(isinstance(v, str) and len(v) <= MAX_PARAMETER_CHARS for v in event.metadata.values())


def test_signature_validation_uses_the_wss_url():
    url = "wss://calls.example.com/v1/media/twilio"
    good = signature_headers(url, "secret")["X-Twilio-Signature"]
    assert verify_signature("secret", url, good)
    assert not verify_signature("other-secret", url, good)
    assert not verify_signature("secret", "wss://evil.example.com/v1/media/twilio", good)
    assert not verify_signature("secret", url, None)
    assert base64.b64decode(good)  # it is the base64 HMAC Twilio sends
