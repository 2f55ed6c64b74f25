"""Genesys Cloud AudioHook (protocol "2"): message by message, then over a real socket.

Message shapes and the signature example follow purecloudlabs/audiohook-reference-implementation
(app/audiohook/src/protocol, app/audiohook/test/httpsignature).
"""

import asyncio
import json
import time
import uuid

import numpy as np
import pytest
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    AUDIOHOOK_API_KEY,
    AUDIOHOOK_AUTH_TOKEN,
    AUDIOHOOK_CLIENT_SECRET,
    assert_text_alerts,
    close_code,
    fetch_recording,
    find_call,
    run_calls,
    wait_for_call_end,
)
from starlette.datastructures import Headers

from stream_server.media.audiohook import (
    MAX_TEXT_CHARS,
    NULL_UUID,
    AudioHookSession,
    UpgradeRequest,
    check_upgrade,
    choose_media,
    http_url,
    metadata_from_open,
)
from stream_server.media.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from stream_server.media.events import CallEnded, CallStarted, Reply
from stream_server.media.metadata import MAX_PARAMETER_CHARS
from stream_server.simulator import SimulatedCall
from stream_server.simulator.audiohook import (
    ClientSession,
    interleave,
    open_parameters,
    upgrade_headers,
)

ORG = "d7934305-0972-4844-938e-9060eef73d05"
CALLER_ULAW = pcm16_to_ulaw(np.full(1600, 6000, "<i2").tobytes())  # 200 ms per channel
AGENT_ULAW = pcm16_to_ulaw(np.full(1600, -3000, "<i2").tobytes())
PARAMS = {"from": "+81312345678", "to": "+81120555003", "utm_source": "google", "tracking_number": "+81120555003"}


def _stereo(first: bytes = CALLER_ULAW, second: bytes = AGENT_ULAW) -> bytes:
    out = bytearray(len(first) * 2)
    out[0::2], out[1::2] = first, second
    return bytes(out)


def _call(parameters=None) -> SimulatedCall:
    return SimulatedCall(caller=b"", agent=b"", parameters=dict(PARAMS if parameters is None else parameters))


def _replies(events) -> list[dict]:
    return [json.loads(e.data) for e in events if isinstance(e, Reply)]


def _opened(adapter: AudioHookSession, client: ClientSession, call=None, **overrides) -> list:
    parameters = open_parameters(call or _call(), ORG, str(uuid.uuid4()))
    parameters.update(overrides)
    return adapter.feed(client.message("open", parameters))


def _session() -> tuple[AudioHookSession, ClientSession]:
    client = ClientSession(str(uuid.uuid4()))
    return AudioHookSession(client.session_id), client


def _disconnect(events) -> dict:
    [reply] = _replies(events)
    assert reply["type"] == "disconnect"
    return reply


# --- the adapter, message by message ------------------------------------------------------------

def test_open_is_answered_with_opened_choosing_stereo_pcmu_and_starts_the_call():
    adapter, client = _session()
    call = _call({**PARAMS, "language": "en-US"})
    conversation = str(uuid.uuid4())
    events = adapter.feed(client.message("open", open_parameters(call, ORG, conversation)))
    [opened] = _replies(events)
    assert opened == {
        "version": "2", "type": "opened", "id": client.session_id, "seq": 1, "clientseq": 1,
        "parameters": {"media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"],
                                  "rate": 8000}], "startPaused": False},
    }
    [started] = [e for e in events if isinstance(e, CallStarted)]
    assert started.carrier == "audiohook" and started.tracks == ("caller", "agent")
    assert started.carrier_call_id == conversation and started.stream_id == client.session_id
    assert started.sample_rate == 8000
    assert started.metadata["from"] == "+81312345678" and started.metadata["to"] == "+81120555003"
    assert started.metadata["utm_source"] == "google" and started.metadata["tracking_number"] == "+81120555003"
    assert started.metadata["language"] == "en-US"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([("L16", ["external", "internal"]), ("PCMU", ["external"]), ("PCMU", ["external", "internal"])],
         ("PCMU", ["external", "internal"])),
        ([("L16", ["external", "internal"]), ("PCMU", ["internal"]), ("PCMU", ["external"])], ("PCMU", ["external"])),
        ([("L16", ["external"]), ("L16", ["internal", "external"])], ("L16", ["internal", "external"])),
        ([("PCMU", ["internal", "external"])], ("PCMU", ["internal", "external"])),
        ([("opus", ["external"]), ("PCMU", ["external", "external"]), ("PCMU", ["left"])], None),
    ],
)
def test_media_choice_prefers_pcmu_then_stereo_then_the_caller(offered, chosen):
    media = [{"type": "audio", "format": f, "channels": c, "rate": 8000} for f, c in offered]
    picked = choose_media(media)
    assert (None if picked is None else (picked["format"], picked["channels"])) == chosen


def test_16khz_media_is_not_chosen():
    assert choose_media([{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 16000}]) is None


def test_nothing_usable_offered_is_a_disconnect_without_a_call():
    adapter, client = _session()
    events = _opened(adapter, client, media=[{"type": "audio", "format": "opus", "channels": ["external"],
                                              "rate": 48000}])
    assert _disconnect(events)["parameters"]["reason"] == "error"
    assert events[-1] == CallEnded("unsupported_stream")
    assert not any(isinstance(e, CallStarted) for e in events)


def test_stereo_audio_is_split_by_negotiated_channel_order_with_sample_time():
    adapter, client = _session()
    _opened(adapter, client)
    caller, agent = adapter.feed(_stereo())
    assert (caller.track, agent.track) == ("caller", "agent")
    assert caller.pcm16 == ulaw_to_pcm16(CALLER_ULAW) and agent.pcm16 == ulaw_to_pcm16(AGENT_ULAW)
    assert caller.t == agent.t == 0.0 and caller.sample_rate == 8000
    later = adapter.feed(_stereo())
    assert [e.t for e in later] == pytest.approx([0.2, 0.2])


def test_reversed_channel_order_puts_internal_first():
    adapter, client = _session()
    media = [{"type": "audio", "format": "PCMU", "channels": ["internal", "external"], "rate": 8000}]
    [_, started] = _opened(adapter, client, media=media)
    assert started.tracks == ("agent", "caller")
    agent, caller = adapter.feed(_stereo(AGENT_ULAW, CALLER_ULAW))
    assert agent.track == "agent" and agent.pcm16 == ulaw_to_pcm16(AGENT_ULAW)
    assert caller.track == "caller" and caller.pcm16 == ulaw_to_pcm16(CALLER_ULAW)


def test_mono_external_and_l16_little_endian():
    adapter, client = _session()
    media = [{"type": "audio", "format": "L16", "channels": ["external"], "rate": 8000}]
    [_, started] = _opened(adapter, client, media=media)
    assert started.tracks == ("caller",)
    pcm = np.arange(-800, 800, dtype="<i2").tobytes()
    [audio] = adapter.feed(pcm)
    assert audio.track == "caller" and audio.pcm16 == pcm


def test_l16_stereo_is_deinterleaved():
    adapter, client = _session()
    _opened(adapter, client, media=[{"type": "audio", "format": "L16", "channels": ["external", "internal"],
                                     "rate": 8000}])
    left, right = np.arange(0, 160, dtype="<i2"), np.arange(1000, 1160, dtype="<i2")
    frame = np.empty(320, dtype="<i2")
    frame[0::2], frame[1::2] = left, right
    caller, agent = adapter.feed(frame.tobytes())
    assert caller.pcm16 == left.tobytes() and agent.pcm16 == right.tobytes()


def test_ping_is_answered_with_pong_echoing_its_seq():
    adapter, client = _session()
    _opened(adapter, client)
    adapter.feed(_stereo())
    client.serverseq = 1
    [pong] = _replies(adapter.feed(client.message("ping", {"rtt": "PT0.025S"})))
    assert pong["type"] == "pong" and pong["seq"] == 2 and pong["clientseq"] == 2 and pong["id"] == client.session_id


def test_update_is_answered_with_updated():
    adapter, client = _session()
    _opened(adapter, client)
    [updated] = _replies(adapter.feed(client.message("update", {"language": "ja-JP"})))
    assert updated["type"] == "updated" and updated["clientseq"] == 2


def test_pause_and_discard_gaps_move_audio_time_forward():
    adapter, client = _session()
    _opened(adapter, client)
    adapter.feed(_stereo())  # 0.0-0.2
    client.position_s = 0.2
    assert adapter.feed(client.message("paused")) == []
    client.position_s = 1.2
    assert adapter.feed(client.message("resumed", {"start": "PT0.2S", "discarded": "PT1.0S"})) == []
    assert [e.t for e in adapter.feed(_stereo())] == pytest.approx([1.2, 1.2])
    assert adapter.feed(client.message("discarded", {"start": "PT1.4S", "discarded": "PT0.6S"})) == []
    assert [e.t for e in adapter.feed(_stereo())] == pytest.approx([2.0, 2.0])
    client.position_s = 3.0  # the client says it is further on than audio and gaps add up to
    adapter.feed(client.message("ping"))
    assert [e.t for e in adapter.feed(_stereo())] == pytest.approx([3.0, 3.0])


def test_a_position_behind_audio_never_moves_time_back():
    adapter, client = _session()
    _opened(adapter, client)
    adapter.feed(_stereo())
    client.position_s = 0.0
    adapter.feed(client.message("ping"))
    assert adapter.feed(_stereo())[0].t == pytest.approx(0.2)


@pytest.mark.parametrize(("reason", "ended"), [("end", "completed"), ("disconnect", "completed"),
                                                ("error", "carrier_error")])
def test_close_is_answered_with_closed_and_ends_the_call(reason, ended):
    adapter, client = _session()
    _opened(adapter, client)
    events = adapter.feed(client.message("close", {"reason": reason}))
    [closed] = _replies(events)
    assert closed["type"] == "closed" and closed["clientseq"] == 2 and closed["seq"] == 2
    assert events[-1] == CallEnded(ended)
    assert adapter.feed(_stereo()) == []  # nothing after close


def test_client_error_message_is_logged_and_the_session_goes_on():
    adapter, client = _session()
    _opened(adapter, client)
    assert adapter.feed(client.message("error", {"code": 500, "message": "oops"})) == []
    assert len(adapter.feed(_stereo())) == 2


@pytest.mark.parametrize("seq_change", [+1, -1, 0])
def test_a_sequence_gap_or_repeat_is_a_disconnect_error(seq_change):
    adapter, client = _session()
    _opened(adapter, client)
    client.seq += seq_change  # next message: seq + 2 (gap), seq (repeat) or seq + 1 (fine)
    events = adapter.feed(client.message("ping"))
    if seq_change == 0:
        assert _replies(events)[0]["type"] == "pong"
        return
    reply = _disconnect(events)
    assert reply["parameters"]["reason"] == "error" and "seq" in reply["parameters"]["info"]
    assert reply["clientseq"] == 1  # the bad message is not acknowledged
    assert events[-1] == CallEnded("protocol_error")
    assert adapter.feed(_stereo()) == [] and adapter.feed(client.message("ping")) == []


def _envelope(client: ClientSession, **changes) -> str:
    msg = json.loads(client.message("ping"))
    msg.update(changes)
    return json.dumps({k: v for k, v in msg.items() if v is not ...})


@pytest.mark.parametrize(
    "make",
    [
        lambda c: "{not json",
        lambda c: "[1, 2]",
        lambda c: _envelope(c, version="1"),
        lambda c: _envelope(c, position=...),
        lambda c: _envelope(c, position="1.5"),
        lambda c: _envelope(c, serverseq=...),
        lambda c: _envelope(c, serverseq=99),
        lambda c: _envelope(c, parameters=[]),
        lambda c: _envelope(c, seq="2"),
        lambda c: _envelope(c, id=str(uuid.uuid4())),
        lambda c: _envelope(c, type="teleport"),
        lambda c: _envelope(c, type="resumed"),  # parameters missing start/discarded
        lambda c: "x" * (MAX_TEXT_CHARS + 1),
    ],
    ids=["bad-json", "not-object", "version", "no-position", "bad-position", "no-serverseq", "serverseq-ahead",
         "parameters", "seq-string", "other-id", "unknown-type", "bad-parameters", "oversize"],
)
def test_malformed_client_messages_are_a_disconnect_error(make):
    adapter, client = _session()
    _opened(adapter, client)
    events = adapter.feed(make(client))
    assert _disconnect(events)["parameters"]["reason"] == "error"
    assert events[-1] == CallEnded("protocol_error")


def test_audio_before_open_is_a_disconnect_error_and_no_call():
    adapter, _ = _session()
    events = adapter.feed(_stereo())
    assert _disconnect(events)["parameters"]["info"].startswith("Client Error: Received audio")
    assert events[-1] == CallEnded("protocol_error")


def test_a_frame_that_is_not_whole_stereo_samples_is_a_disconnect_error():
    adapter, client = _session()
    _opened(adapter, client)
    events = adapter.feed(_stereo()[:-1])
    assert "not a whole number" in _disconnect(events)["parameters"]["info"]


def test_connection_probe_is_opened_and_closed_without_a_call():
    adapter, client = _session()
    events = _opened(adapter, client, conversationId=NULL_UUID)
    assert [r["type"] for r in _replies(events)] == ["opened"]
    assert not any(isinstance(e, CallStarted) for e in events)
    assert adapter.feed(_stereo()) == []
    events = adapter.feed(client.message("close", {"reason": "end"}))
    assert [r["type"] for r in _replies(events)] == ["closed"] and events[-1] == CallEnded("completed")


def test_a_session_id_header_that_is_not_a_uuid_is_not_adopted():
    client = ClientSession(str(uuid.uuid4()))
    adapter = AudioHookSession('x"' * 100)
    [opened, _] = _opened(adapter, client)
    assert json.loads(opened.data)["id"] == client.session_id


def test_refused_session_is_answered_unauthorized_in_its_own_id():
    client = ClientSession(str(uuid.uuid4()))
    adapter = AudioHookSession(None, ORG, refusal="wrong API key")
    events = adapter.feed(client.message("open", open_parameters(_call(), ORG, str(uuid.uuid4()))))
    reply = _disconnect(events)
    assert reply["parameters"]["reason"] == "unauthorized"
    assert reply["id"] == client.session_id and reply["clientseq"] == 1 and reply["seq"] == 1
    assert events[-1] == CallEnded("unauthorized")
    assert not any(isinstance(e, CallStarted) for e in events)


def test_open_for_another_organization_than_signed_is_unauthorized():
    client = ClientSession(str(uuid.uuid4()))
    adapter = AudioHookSession(client.session_id, organization_id=str(uuid.uuid4()))
    events = _opened(adapter, client)
    assert _disconnect(events)["parameters"]["reason"] == "unauthorized"
    assert not any(isinstance(e, CallStarted) for e in events)


def test_metadata_input_variables_win_over_custom_config_but_not_over_the_ani():
    parameters = {
        "participant": {"id": str(uuid.uuid4()), "ani": "tel:+815011112222", "aniName": "", "dnis": ""},
        "customConfig": {"utm_source": "config", "campaign_id": 7, "nested": {"a": [1]}},
        "inputVariables": {"utm_source": "architect", "from": "+810000000000", "to": "+81120000000", "vip": True},
    }
    metadata = metadata_from_open(parameters)
    assert metadata["from"] == "+815011112222"  # the carrier's caller number
    assert metadata["to"] == "+81120000000"  # no dnis: the tag fills it
    assert metadata["utm_source"] == "architect"
    assert metadata["campaign_id"] == "7" and metadata["vip"] == "true" and metadata["nested"] == '{"a": [1]}'
    assert "caller_name" not in metadata


def test_hostile_metadata_is_bounded_and_keeps_the_caller_number():
    parameters = {
        "participant": {"id": str(uuid.uuid4()), "ani": "+815011112222", "aniName": "x" * 5000, "dnis": "1"},
        "inputVariables": {f"k{i}": "v" * 5000 for i in range(500)},
    }
    metadata = metadata_from_open(parameters)
    assert len(metadata) == 64 and metadata["from"] == "+815011112222"
    assert all(isinstance(v, str) and len(v) <= MAX_PARAMETER_CHARS for v in metadata.values())


def test_simulated_interleave_matches_the_channel_order():
    call = SimulatedCall(caller=b"\x01" * 160, agent=b"\x02" * 160)
    assert interleave(call, 0, 1, ["external", "internal"])[:4] == b"\x01\x02\x01\x02"
    assert interleave(call, 0, 1, ["internal", "external"])[:4] == b"\x02\x01\x02\x01"
    assert interleave(call, 0, 1, ["external"]) == b"\x01" * 160


# --- the upgrade signature ----------------------------------------------------------------------

DOC_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
DOC_SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
DOC_HEADERS = {  # the AudioHook documentation example, as the reference verifier's tests use it
    "host": "audiohook.example.com",
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": DOC_KEY,
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
    '"audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
    'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430',
}
DOC_PATH = "/api/v1/voicebiometrics/ws"


def _doc_request(**header_changes) -> UpgradeRequest:
    headers = {**DOC_HEADERS, **header_changes}
    return UpgradeRequest("https://audiohook.example.com" + DOC_PATH, DOC_PATH, Headers(headers))


def test_the_documented_signature_example_verifies():
    assert check_upgrade(_doc_request(), DOC_KEY, DOC_SECRET, max_age=None) is None


@pytest.mark.parametrize(
    ("changes", "key", "secret"),
    [
        ({}, DOC_KEY, "b3RoZXItc2VjcmV0"),  # another secret
        ({"audiohook-session-id": str(uuid.uuid4())}, DOC_KEY, DOC_SECRET),  # a covered header changed
        ({"x-api-key": "another-key"}, DOC_KEY, DOC_SECRET),
        ({}, "another-key", DOC_SECRET),
        ({"signature": "sig1=:AAAA:"}, DOC_KEY, DOC_SECRET),
        ({"signature": ""}, DOC_KEY, DOC_SECRET),
    ],
)
def test_a_wrong_signature_key_or_header_fails(changes, key, secret):
    request = _doc_request(**changes)
    assert check_upgrade(request, key, secret, max_age=None) is not None


def test_the_documented_example_is_stale_now():
    assert "age" in check_upgrade(_doc_request(), DOC_KEY, DOC_SECRET)


def test_simulator_signatures_verify_for_the_same_url_only():
    url = "wss://calls.example.com/v1/media/audiohook"
    session = str(uuid.uuid4())
    headers = upgrade_headers(url, AUDIOHOOK_AUTH_TOKEN, ORG, session)
    assert 'sig1=("@request-target" "@authority"' in headers["Signature-Input"]

    def request(target_url):
        raw = Headers({**{k.lower(): v for k, v in headers.items()}, "host": "calls.example.com"})
        return UpgradeRequest(http_url(target_url), target_url.split("example.com")[1], raw)

    assert check_upgrade(request(url), AUDIOHOOK_API_KEY, AUDIOHOOK_CLIENT_SECRET) is None
    assert check_upgrade(request("wss://evil.example.com/v1/media/audiohook"), AUDIOHOOK_API_KEY,
                         AUDIOHOOK_CLIENT_SECRET) is not None
    assert check_upgrade(request("wss://calls.example.com/v1/media/other"), AUDIOHOOK_API_KEY,
                         AUDIOHOOK_CLIENT_SECRET) is not None
    stale = upgrade_headers(url, AUDIOHOOK_AUTH_TOKEN, ORG, session, created=int(time.time()) - 30)
    raw = Headers({**{k.lower(): v for k, v in stale.items()}})
    assert "age" in check_upgrade(UpgradeRequest(http_url(url), "/v1/media/audiohook", raw), AUDIOHOOK_API_KEY,
                                  AUDIOHOOK_CLIENT_SECRET)


def test_api_key_alone_when_no_secret_is_configured():
    headers = Headers({k.lower(): v for k, v in upgrade_headers("ws://h/p", AUDIOHOOK_API_KEY, ORG, "s").items()})
    assert "signature" not in headers
    request = UpgradeRequest("http://h/p", "/p", headers)
    assert check_upgrade(request, AUDIOHOOK_API_KEY, None) is None
    assert check_upgrade(request, "other-key", None) == "wrong API key"
    assert check_upgrade(request, AUDIOHOOK_API_KEY, AUDIOHOOK_CLIENT_SECRET) is not None  # unsigned


# --- over a real socket -------------------------------------------------------------------------

class Peer:
    """A hand-driven Genesys client: the envelope from the simulator, every message checked."""

    def __init__(self, server, auth_token=AUDIOHOOK_AUTH_TOKEN, created=None, headers=None):
        self.url = server.media_url("audiohook")
        self.client = ClientSession(str(uuid.uuid4()))
        self.conversation_id = str(uuid.uuid4())
        self.headers = headers if headers is not None else upgrade_headers(
            self.url, auth_token, ORG, self.client.session_id, created=created)
        self.ws = None

    async def __aenter__(self):
        self.ws = await websockets.connect(self.url, additional_headers=self.headers)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def send(self, type_, parameters=None):
        await self.ws.send(self.client.message(type_, parameters))

    async def recv(self) -> dict:
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        self.client.serverseq = msg["seq"]
        return msg

    async def open(self, parameters=None):
        params = open_parameters(_call(), ORG, self.conversation_id)
        params.update(parameters or {})
        await self.send("open", params)
        return await self.recv()

    async def closed_code(self) -> int:
        return await close_code(self.ws)


def test_full_signed_session_over_a_socket_is_recorded_with_its_gap(live_server):
    async def scenario():
        async with Peer(live_server) as peer:
            opened = await peer.open()
            assert opened["type"] == "opened" and opened["clientseq"] == 1 and opened["seq"] == 1
            assert opened["parameters"]["media"][0]["channels"] == ["external", "internal"]
            for _ in range(5):  # 1.0 s
                await peer.ws.send(_stereo())
            peer.client.position_s = 1.0
            await peer.send("ping")
            pong = await peer.recv()
            assert pong["type"] == "pong" and pong["clientseq"] == peer.client.seq and pong["seq"] == 2
            await peer.send("paused")
            peer.client.position_s = 1.5
            await peer.send("resumed", {"start": "PT1.0S", "discarded": "PT0.5S"})
            await peer.send("update", {"language": "en-US"})
            assert (await peer.recv())["type"] == "updated"
            for _ in range(5):  # 1.5-2.5 s
                await peer.ws.send(_stereo())
            peer.client.position_s = 2.5
            await peer.send("close", {"reason": "end"})
            closed = await peer.recv()
            assert closed["type"] == "closed" and closed["clientseq"] == peer.client.seq
            code = await peer.closed_code()
        return code, await wait_for_call_end(live_server, stream_id=peer.client.session_id), peer

    code, stored, peer = asyncio.run(scenario())
    assert code == 1000
    assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert stored["carrier"] == "audiohook" and stored["carrier_call_id"] == peer.conversation_id
    assert stored["metadata"]["from"] == PARAMS["from"] and stored["metadata"]["utm_source"] == "google"
    assert sorted(stored["tracks"]) == ["agent", "caller"]
    silence = b"\x00\x00" * 4000  # the 0.5 s on hold
    caller = ulaw_to_pcm16(CALLER_ULAW)
    assert fetch_recording(live_server, stored["id"], "caller").frames == caller * 5 + silence + caller * 5
    agent = ulaw_to_pcm16(AGENT_ULAW)
    assert fetch_recording(live_server, stored["id"], "agent").frames == agent * 5 + silence + agent * 5


@pytest.mark.parametrize(
    "credentials",
    [
        {"auth_token": f"{AUDIOHOOK_API_KEY}:b3RoZXItY2xpZW50LXNlY3JldA=="},  # signed with another secret
        {"auth_token": AUDIOHOOK_AUTH_TOKEN, "created": int(time.time()) - 60},  # stale (replayed)
        {"auth_token": f"wrong-key:{AUDIOHOOK_CLIENT_SECRET}"},
        {"auth_token": AUDIOHOOK_API_KEY},  # unsigned
        {"auth_token": None},
    ],
    ids=["wrong-secret", "stale", "wrong-key", "unsigned", "no-credentials"],
)
def test_unauthenticated_session_is_disconnected_unauthorized_and_no_call_is_made(live_server, credentials):
    async def scenario():
        async with Peer(live_server, **credentials) as peer:
            reply = await peer.open()
            return reply, await peer.closed_code(), peer.client.session_id

    reply, code, session_id = asyncio.run(scenario())
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "unauthorized"
    assert reply["id"] == session_id and reply["clientseq"] == 1
    assert code == 1000
    assert find_call(live_server, stream_id=session_id) is None


def test_a_refused_client_that_sends_nothing_is_still_answered_and_closed(live_server):
    async def scenario():
        async with Peer(live_server, auth_token=None) as peer:
            started = time.monotonic()
            return await peer.recv(), await peer.closed_code(), time.monotonic() - started, peer

    reply, code, waited, peer = asyncio.run(scenario())
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "unauthorized"
    assert reply["id"] == peer.client.session_id and code == 1000 and waited < 15


def test_a_tampered_signed_header_is_unauthorized(live_server):
    peer = Peer(live_server)
    peer.headers["Audiohook-Correlation-Id"] = str(uuid.uuid4())

    async def scenario():
        async with peer:
            return await peer.open()

    assert asyncio.run(scenario())["parameters"]["reason"] == "unauthorized"


@pytest.mark.parametrize(
    ("breakage", "info"),
    [
        ("gap", "seq"),
        ("bad-json", "not valid JSON"),
        ("unknown-type", "not a supported client message"),
        ("half-sample", "not a valid audio frame"),
    ],
)
def test_protocol_errors_mid_call_disconnect_and_keep_the_recording(live_server, breakage, info):
    async def scenario():
        async with Peer(live_server) as peer:
            await peer.open()
            for _ in range(3):
                await peer.ws.send(_stereo())
            if breakage == "gap":
                peer.client.seq += 1
                await peer.send("ping")
            elif breakage == "bad-json":
                await peer.ws.send('{"version": "2", "type": "ping", ')
            elif breakage == "unknown-type":
                await peer.send("teleport")
            else:
                await peer.ws.send(_stereo()[:-1])
            reply = await peer.recv()
            code = await peer.closed_code()
        return reply, code, await wait_for_call_end(live_server, stream_id=peer.client.session_id)

    reply, code, stored = asyncio.run(scenario())
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    assert info in reply["parameters"]["info"]
    assert code == 1000
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    assert fetch_recording(live_server, stored["id"], "caller").frames == ulaw_to_pcm16(CALLER_ULAW) * 3


def test_oversize_text_frame_is_refused_and_the_call_kept(live_server):
    async def scenario():
        async with Peer(live_server) as peer:
            await peer.open()
            await peer.ws.send(_stereo())
            await peer.send("ping")
            assert (await peer.recv())["type"] == "pong"  # the frame was taken before the big one
            await peer.ws.send(json.dumps({"pad": "x" * 70_000}))
            code = await peer.closed_code()
        return code, await wait_for_call_end(live_server, stream_id=peer.client.session_id)

    code, stored = asyncio.run(scenario())
    assert code == 1009
    assert stored["status"] == "interrupted"
    assert fetch_recording(live_server, stored["id"], "agent").frames == ulaw_to_pcm16(AGENT_ULAW)


def test_audio_before_open_over_a_socket_is_a_disconnect_error_and_no_call(live_server):
    async def scenario():
        async with Peer(live_server) as peer:
            await peer.ws.send(_stereo())
            return await peer.recv(), await peer.closed_code(), peer.client.session_id

    reply, code, session_id = asyncio.run(scenario())
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    assert "before 'opened'" in reply["parameters"]["info"] and code == 1000
    assert find_call(live_server, stream_id=session_id) is None


def test_connection_probe_over_a_socket_is_opened_and_closed_without_a_call(live_server):
    async def scenario():
        async with Peer(live_server) as peer:
            opened = await peer.open({"conversationId": NULL_UUID})
            await peer.send("close", {"reason": "end"})
            return opened, await peer.recv(), await peer.closed_code(), peer.client.session_id

    opened, closed, code, session_id = asyncio.run(scenario())
    assert opened["type"] == "opened" and closed["type"] == "closed" and code == 1000
    assert find_call(live_server, stream_id=session_id) is None


def test_abusive_call_over_audiohook_alerts_with_its_metadata(live_server):
    call = load_call("en_abusive")
    runs = asyncio.run(run_calls(live_server, {"audiohook_abusive": simulate_args("en_abusive")},
                                 protocol="audiohook", auth_token=AUDIOHOOK_AUTH_TOKEN))
    run = runs["audiohook_abusive"]
    assert run.ended["status"] == "ended", run.simulate_output
    result = json.loads(run.simulate_output.strip().splitlines()[-1])
    assert result["completed"] is True and result["close_code"] == 1000
    assert_text_alerts(run, call.metadata)
    [started] = run.of_type("call.started")
    assert started["metadata"]["from"] == call.metadata["from"]
    with live_server.client() as http:
        stored = http.get(f"/v1/calls/{run.call_id}").json()
    assert stored["carrier"] == "audiohook" and stored["carrier_call_id"] == result["call_sid"]
