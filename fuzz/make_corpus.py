"""Write the committed seed inputs (fuzz/corpus/<parser>/) from the simulators' real messages.

`python fuzz/make_corpus.py` rewrites every seed; each is a short, valid session of its protocol
(plus a few protocol corner cases the tests name), so the fuzzer starts from what carriers send.
Ids are fixed, so the seeds only change when a simulator's messages do.
"""

from __future__ import annotations

import datetime
import json
import shutil
import struct
import uuid

from base64 import b64decode

import numpy as np
from harness import CORPUS, encode
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from stream_server.media import audiohook, audiosocket
from stream_server.media.codecs import pcm16_to_ulaw
from stream_server.simulator import SimulatedCall
from stream_server.simulator import audiohook as audiohook_sim
from stream_server.simulator import stream as stream_sim
from stream_server.simulator import telnyx as telnyx_sim
from stream_server.simulator import twilio as twilio_sim
from stream_server.simulator import vonage as vonage_sim

L16_20MS = np.full(160, 5000, "<i2").tobytes()
ULAW_20MS = pcm16_to_ulaw(L16_20MS)
PARAMETERS = {"from": "+81312345678", "utm_source": "google", "tracking_number": "+81120555003"}
SESSION_ID = "e160e428-53e2-487c-977d-96989bf5c99d"
ORGANIZATION_ID = "d7934305-0972-4844-938e-9060eef73d05"
CONVERSATION_ID = "090eaa2f-72fa-480a-83e0-8667ff89c0ec"
CORRELATION_ID = "4a2b8e71-6f0d-4c39-9d0b-1e5c7a3f2b10"
PARTICIPANT_ID = "2412e300-607a-45d5-a81e-ede5629f258f"  # the simulator draws a random one
AUDIOHOOK_AUTH = "test-audiohook-api-key:dGVzdC1hdWRpb2hvb2stY2xpZW50LXNlY3JldA=="  # fuzz_audiohook's
WEBRTC_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
)


# What tests/test_hostile_input.py names as breaking naive parsers, as text frames: a JSON int over
# 4300 digits (json raises plain ValueError), Infinity, lone surrogates and NUL, deep nesting.
HOSTILE_FRAMES = [
    '{"event":"media","media":{"timestamp":' + "9" * 4400 + "}}",
    '{"event":"start","start":{"media_format":{"sample_rate":Infinity},"mediaFormat":{"sampleRate":NaN}}}',
    '{"event":"start","start":{"customParameters":{"\\udc80":"a\\u0000b"},"callSid":"\\ud800"}}',
    "[" * 2000,
]


def _call(agent: bool = True) -> SimulatedCall:
    return SimulatedCall(caller=ULAW_20MS * 2, agent=ULAW_20MS * 2 if agent else None, parameters=dict(PARAMETERS),
                         call_sid="CA" + "1" * 32, stream_sid="MZ" + "2" * 32)


def twilio_seeds() -> dict[str, bytes]:
    call = _call()
    connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = twilio_sim.start_message(call)
    inbound, outbound = (twilio_sim.media_message(call, 2, "inbound", 1, ULAW_20MS),
                         twilio_sim.media_message(call, 3, "outbound", 1, ULAW_20MS))
    opus = json.loads(json.dumps(start))
    opus["start"]["mediaFormat"]["encoding"] = "audio/opus"
    return {
        "call": encode([connected, start, inbound, outbound, {"event": "mark", "mark": {"name": "m"}},
                        {"event": "dtmf", "dtmf": {"digit": "5"}}, twilio_sim.stop_message(call, 4)]),
        "media_before_start": encode([connected, inbound, outbound, start, twilio_sim.stop_message(call, 4)]),
        "unsupported_encoding": encode([connected, opus]),
        "hostile": encode([connected, *HOSTILE_FRAMES, start, inbound]),
    }


def telnyx_seeds() -> dict[str, bytes]:
    call = _call()
    media = telnyx_sim.media_message(call, 2, "inbound", 1, ULAW_20MS)
    no_timestamp = json.loads(json.dumps(media))
    del no_timestamp["media"]["timestamp"]
    l16 = telnyx_sim.start_message(call, "L16", 16000)
    return {
        "call": encode([telnyx_sim.connected_message("stream-auth-token"), telnyx_sim.start_message(call), media,
                        telnyx_sim.media_message(call, 3, "outbound", 1, ULAW_20MS), no_timestamp,
                        {"event": "error", "error": {"title": "t", "code": 1, "detail": "d"}},
                        telnyx_sim.stop_message(call, 4)]),
        "l16": encode([telnyx_sim.connected_message(), l16,
                       telnyx_sim.media_message(call, 2, "inbound", 1, L16_20MS),
                       telnyx_sim.stop_message(call, 3)]),
        "hostile": encode([telnyx_sim.connected_message(), *HOSTILE_FRAMES, telnyx_sim.start_message(call), media]),
    }


def vonage_seeds() -> dict[str, bytes]:
    call = _call(agent=False)
    return {
        "call": encode([vonage_sim.connected_message(call, 16000), L16_20MS * 2, L16_20MS * 2,
                        {"event": "websocket:dtmf", "digit": "5", "duration": 100}]) + b"\x03\xe8",
        "audio_before_connected": encode([L16_20MS, vonage_sim.connected_message(call, 8000), L16_20MS]),
        "hostile": encode([*HOSTILE_FRAMES, vonage_sim.connected_message(call, 16000), L16_20MS[:-1]]),
    }


def l16_stream_seeds() -> dict[str, bytes]:
    stereo, mono = _call(), _call(agent=False)
    mono_first = stream_sim.metadata_message(mono, 8000)
    mono_first["sampleRate"] = "8k"
    mono_first["metadata"] = {"utm_campaign": "spring"}
    return {
        "stereo": encode([stream_sim.metadata_message(stereo, 16000), L16_20MS * 2, L16_20MS * 2,
                          {"event": "dtmf", "dtmf": "1", "duration": 40}]) + b"\x03\xe8",
        "mono": encode([L16_20MS, mono_first, L16_20MS]),
        "hostile": encode([*HOSTILE_FRAMES, stream_sim.metadata_message(stereo, 16000), L16_20MS[:-2]]),
    }


def signed_upgrade_headers() -> dict[str, str]:
    """The headers of a Genesys upgrade, signed as the simulator signs them but valid until 2100, so
    the seed's session gets past the signature check (fuzz_audiohook ignores only the age limit)."""
    api_key, _, secret = AUDIOHOOK_AUTH.partition(":")
    headers = {"Audiohook-Organization-Id": ORGANIZATION_ID, "Audiohook-Session-Id": SESSION_ID,
               "Audiohook-Correlation-Id": CORRELATION_ID, "X-API-KEY": api_key}
    request = audiohook_sim._Request(audiohook.http_url("wss://calls.example.com/v1/media/audiohook"), headers)
    signer = HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256,
                               key_resolver=MappingKeyResolver(public_keys={}, private_keys={api_key: b64decode(secret)}))
    created = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    signer.sign(request, key_id=api_key, created=created, expires=datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC),
                nonce="ZnV6ei1jb3JwdXMtbm9uY2U=", label="sig1", covered_component_ids=audiohook.SIGNED_COMPONENTS)
    return request.headers


def open_parameters(call: SimulatedCall, conversation_id: str) -> dict:
    """The simulator's `open.parameters` with a fixed participant id, so the seeds are reproducible."""
    parameters = audiohook_sim.open_parameters(call, ORGANIZATION_ID, conversation_id)
    parameters["participant"]["id"] = PARTICIPANT_ID
    return parameters


def audiohook_seeds() -> dict[str, bytes]:
    call = _call()
    headers = signed_upgrade_headers()
    block = "\n".join(f"{name}: {value}" for name, value in headers.items())
    client = audiohook_sim.ClientSession(SESSION_ID)
    parameters = open_parameters(call, CONVERSATION_ID)
    session = [block, client.message("open", parameters), audiohook_sim.interleave(call, 0, 2, ["external", "internal"])]
    client.serverseq = 1
    session += [client.message("ping", {}), client.message("paused", {}),
                client.message("resumed", {"start": "PT0.04S", "discarded": "PT1.5S"}),
                client.message("discarded", {"start": "PT2S", "discarded": "PT0.2S"}),
                client.message("update", {"language": "ja-JP"}), client.message("close", {"reason": "end"})]
    probe = audiohook_sim.ClientSession(SESSION_ID)
    probe_open = open_parameters(call, audiohook.NULL_UUID)
    unsigned = "\n".join(f"{k}: {v}" for k, v in headers.items() if not k.lower().startswith("signature"))
    return {
        "session": encode(session),
        "probe": encode([block, probe.message("open", probe_open), probe.message("close", {"reason": "end"})]),
        "refused": encode([unsigned, audiohook_sim.ClientSession(SESSION_ID).message("open", parameters)]),
    }


def audiosocket_seeds() -> dict[str, bytes]:
    call_id = uuid.UUID("7f4e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b").bytes
    slin = audiosocket.frame(audiosocket.KIND_SLIN, L16_20MS)
    return {
        "call": bytes([63]) + audiosocket.frame(audiosocket.KIND_UUID, call_id) + slin
        + audiosocket.frame(audiosocket.KIND_DTMF, b"5") + slin + audiosocket.frame(audiosocket.KIND_HANGUP),
        "wideband": bytes([255]) + audiosocket.frame(audiosocket.KIND_UUID, call_id)
        + audiosocket.frame(0x12, L16_20MS * 2) + audiosocket.frame(audiosocket.KIND_ERROR, b"\x01"),
        "bad_frames": bytes([7]) + audiosocket.frame(audiosocket.KIND_UUID, call_id) + audiosocket.frame(0x10, b"\x01")
        + struct.pack("!BH", 0x42, 2) + b"zz" + slin,
    }


def webrtc_seeds() -> dict[str, bytes]:
    return {
        "offer": json.dumps({"type": "offer", "sdp": WEBRTC_OFFER}).encode(),
        "agent_offer": json.dumps({"type": "offer", "sdp": WEBRTC_OFFER, "track": "agent",
                                   "call_id": "softphone-7", "metadata": PARAMETERS}).encode(),
        "huge_number": b'{"type": "offer", "sdp": "v=0", "call_id": ' + b"9" * 4400 + b"}",
    }


def frames_seeds() -> dict[str, bytes]:
    call = _call()
    return {
        "twilio_media": encode([twilio_sim.start_message(call),
                                twilio_sim.media_message(call, 2, "inbound", 1, ULAW_20MS)]),
        "not_objects": encode(["[1, 2, 3]", "{not json", b"\x00\x01binary", '{"payload": "not base64!"}']),
        "hostile": encode(HOSTILE_FRAMES),
    }


SEEDS = {
    "twilio": twilio_seeds, "telnyx": telnyx_seeds, "vonage": vonage_seeds, "l16_stream": l16_stream_seeds,
    "audiohook": audiohook_seeds, "audiosocket": audiosocket_seeds, "webrtc": webrtc_seeds, "frames": frames_seeds,
}


def main() -> None:
    for parser, build in SEEDS.items():
        folder = CORPUS / parser
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in build().items():
            (folder / f"{name}.seed").write_bytes(data)
        print(f"{parser}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
