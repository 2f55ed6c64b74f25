"""WebRTC softphones: offer parsing and frame conversion, then POST /v1/webrtc/offer against the
live server with aiortc as the browser, the simulator end to end, and real headless Chromium."""

import asyncio
import fractions
import itertools
import json
import time
import wave

import av
import httpx
import numpy as np
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection
from fixture_calls import load_call, simulate_args
from live_server import (
    CHROMIUM,
    WEBRTC_TOKEN,
    assert_text_alerts,
    fetch_recording,
    needs_chromium,
    run_calls,
    start_server,
    stop_server,
    wait_for_call_end,
)

from stream_server.media.codecs import StreamResampler, pcm16_to_ulaw
from stream_server.media.metadata import MAX_PARAMETER_CHARS
from stream_server.media.webrtc import (
    MAX_CALL_ID_CHARS,
    FrameConverter,
    OfferError,
    parse_offer,
)
from stream_server.simulator import SimulatedCall
from stream_server.simulator.webrtc import CallerTrack, negotiate
from stream_server.simulator.webrtc import stream_call as webrtc_stream_call

AUDIO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
)


def _body(sdp=AUDIO_OFFER, **extra) -> bytes:
    return json.dumps({"type": "offer", "sdp": sdp, **extra}).encode()


# -- offer parsing -----------------------------------------------------------------------------


def test_offer_carries_track_metadata_and_call_id():
    offer = parse_offer(_body(track="agent", metadata={"utm_source": "google", "from": "+81312345678"},
                              call_id="softphone-42"))
    assert offer.track == "agent"
    assert offer.metadata == {"utm_source": "google", "from": "+81312345678"}
    assert offer.carrier_call_id == "softphone-42"
    default = parse_offer(_body())
    assert default.track == "caller" and default.metadata == {} and default.carrier_call_id.startswith("webrtc-")


def test_caller_controlled_strings_are_bounded():
    offer = parse_offer(_body(metadata={"note": "x" * 100_000, "k" * 1000: "v"}, call_id="c" * 10_000))
    assert len(offer.metadata["note"]) == MAX_PARAMETER_CHARS
    assert all(len(k) <= 128 for k in offer.metadata)
    assert len(offer.carrier_call_id) == MAX_CALL_ID_CHARS


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_body()[:-1] + b', "type": "answer"}', '"type" must be "offer"'),
        (json.dumps({"type": "offer"}).encode(), '"sdp" must be'),
        (_body(track="supervisor"), '"track" must be'),
        (_body(metadata=["utm_source"]), '"metadata" must be'),
        (_body(sdp="hello world"), "exactly one audio m-line"),
        (_body(sdp=AUDIO_OFFER.replace("m=audio", "m=video")), "exactly one audio m-line"),
        (_body(sdp=AUDIO_OFFER + AUDIO_OFFER.split("\r\n", 4)[4]), "exactly one audio m-line"),
        (_body(sdp=AUDIO_OFFER.replace("a=sendonly", "a=recvonly")), "nothing would be sent"),
        (_body(sdp="v=0\r\nm=audio x\r\n"), "invalid SDP"),
    ],
)
def test_bad_offers_are_refused_with_a_reason(body, message):
    with pytest.raises(OfferError, match=message):
        parse_offer(body)


# -- decoded frames → pipeline audio -----------------------------------------------------------


def _opus_like_frame(pts: int, value: int = 1000, samples: int = 960) -> av.AudioFrame:
    """What aiortc's Opus decoder hands out: 20 ms of 48 kHz interleaved stereo s16."""
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    frame.planes[0].update(np.full(samples * 2, value, dtype="<i2").tobytes())
    frame.sample_rate = 48000
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 48000)
    return frame


def test_frames_become_16k_mono_with_gap_free_stream_time():
    converter = FrameConverter("caller")
    first_pts = 3_000_000_000  # RTP timestamps start anywhere
    out = [converter.convert(_opus_like_frame(first_pts + i * 960)) for i in range(50)]
    audio = [a for a in out if a is not None]
    assert all(a.track == "caller" and a.sample_rate == 16000 for a in audio)
    assert audio[0].t == 0.0
    for before, after in itertools.pairwise(audio):
        assert after.t == pytest.approx(before.t + len(before.pcm16) / 2 / 16000)
    total = sum(len(a.pcm16) for a in audio) // 2
    assert 16000 - 320 <= total <= 16000  # one second in, minus the resampler's delay
    samples = np.frombuffer(audio[-1].pcm16, dtype="<i2")
    assert np.all(np.abs(samples - 1000) <= 2)  # stereo mixed down, level kept


def test_lost_packets_leave_a_gap_and_duplicates_are_dropped():
    converter = FrameConverter("agent")
    base = 2**32 - 960 * 5  # the RTP clock wraps during this call
    for i in range(10):
        converter.convert(_opus_like_frame((base + i * 960) % 2**32))
    assert converter.convert(_opus_like_frame((base + 9 * 960) % 2**32)) is None  # duplicate
    after_gap = converter.convert(_opus_like_frame((base + 60 * 960) % 2**32))  # 1 s lost
    assert after_gap is not None and after_gap.track == "agent"
    assert after_gap.t == pytest.approx(60 * 0.02, abs=0.01)


# -- over a real peer connection ---------------------------------------------------------------


def _headers(token=WEBRTC_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tone_call(seconds: float, **parameters) -> SimulatedCall:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    return SimulatedCall(caller=pcm16_to_ulaw(pcm), parameters=parameters)


def _call(server, call_id: str) -> dict:
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}")
        assert response.status_code == 200, response.text
        return response.json()


def test_offer_answer_audio_recorded_and_hangup_completes_the_call(live_server):
    call = _tone_call(3.0, utm_source="webrtc-conformance", tracking_number="+81120000001")
    call.parameters["from"] = "+819011112222"

    async def scenario():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = CallerTrack(call, 150, 1.0)
        pc.addTransceiver(track, direction="sendonly")
        answer = await negotiate(live_server.media_url("webrtc"), pc,
                                 {"metadata": call.parameters, "call_id": "conformance-1"}, WEBRTC_TOKEN)
        live = _call(live_server, answer["call_id"])
        await track.done.wait()
        await asyncio.sleep(0.5)
        await pc.close()
        return answer, live, await wait_for_call_end(live_server, id=answer["call_id"])

    answer, live, ended = asyncio.run(scenario())
    assert answer["type"] == "answer" and "a=recvonly" in answer["sdp"]
    assert live["status"] == "active"
    assert ended["carrier"] == "webrtc" and ended["tracks"] == ["caller"]
    assert ended["carrier_call_id"] == "conformance-1"
    assert ended["metadata"] == call.parameters
    assert ended["ad_source"] == "webrtc-conformance" and ended["caller_number"] == "+819011112222"
    assert ended["status"] == "ended" and ended["end_reason"] == "completed"
    assert 2.5 <= ended["duration"] <= 3.2
    _, rate, samples = fetch_recording(live_server, answer["call_id"], "caller")
    assert rate == 16000 and 2.5 * rate <= samples.size <= 3.2 * rate
    spectrum = np.abs(np.fft.rfft(samples[rate : 2 * rate].astype(np.float32)))
    assert abs(np.argmax(spectrum) - 440) <= 5  # the tone survived Opus, 48 kHz and back to 16 kHz


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_offer_without_the_right_token_is_401_and_starts_no_call(live_server, token):
    with live_server.client() as http:
        before = len(http.get("/v1/calls", params={"limit": 500}).json())
    response = httpx.post(f"{live_server.http}/v1/webrtc/offer", content=_body(), headers=_headers(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    with live_server.client() as http:
        assert len(http.get("/v1/calls", params={"limit": 500}).json()) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe garbage", "not valid JSON"),
        (_body(sdp="this is not SDP"), "exactly one audio m-line"),
        (_body(sdp="v=0\r\nm=audio x\r\n"), "invalid SDP"),
        # Parses, but has no ICE credentials or DTLS fingerprint: aiortc refuses it.
        (_body(), "offer rejected"),
    ],
)
def test_bad_offer_is_400_with_the_reason(live_server, body, message):
    response = httpx.post(f"{live_server.http}/v1/webrtc/offer", content=body, headers=_headers())
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_oversized_offer_is_413(live_server):
    body = _body(metadata={"pad": "x" * 70_000})
    response = httpx.post(f"{live_server.http}/v1/webrtc/offer", content=body, headers=_headers())
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]

    def chunked():  # no Content-Length: the cap holds while reading
        yield body

    response = httpx.post(f"{live_server.http}/v1/webrtc/offer", content=chunked(), headers=_headers())
    assert response.status_code == 413


def test_refused_offers_do_not_use_up_call_slots(tmp_path):
    server = start_server(tmp_path, {"STREAM_SERVER_WEBRTC_MAX_CALLS": "1", "STREAM_SERVER_ASR_MODEL": "tiny.en"})
    try:
        for _ in range(3):  # each reaches aiortc and fails there
            response = httpx.post(f"{server.http}/v1/webrtc/offer", content=_body(), headers=_headers())
            assert response.status_code == 400

        async def scenario():
            first = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            first_track = CallerTrack(_tone_call(2.0), 100, 1.0)
            first.addTransceiver(first_track, direction="sendonly")
            answer = await negotiate(server.media_url("webrtc"), first, {}, WEBRTC_TOKEN)
            second = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            second.addTransceiver("audio", direction="sendonly")
            try:
                with pytest.raises(httpx.HTTPStatusError) as refused:
                    await negotiate(server.media_url("webrtc"), second, {}, WEBRTC_TOKEN)
            finally:
                await second.close()
            await first_track.done.wait()
            await first.close()
            return refused.value.response, await wait_for_call_end(server, id=answer["call_id"])

        refused, ended = asyncio.run(scenario())
        assert refused.status_code == 503 and "limit is 1" in refused.json()["detail"]
        assert ended["end_reason"] == "completed"
        # The slot is free again once the first call ended.
        again = asyncio.run(webrtc_stream_call(server.media_url("webrtc"), _tone_call(0.5), auth_token=WEBRTC_TOKEN))
        assert again.completed
    finally:
        stop_server(server)


def test_a_dead_line_ends_the_call_as_disconnected_and_keeps_the_recording(live_server):
    call = _tone_call(10.0, test_id="webrtc-dropped")

    async def scenario():
        result = await webrtc_stream_call(live_server.media_url("webrtc"), call, drop_after=2.0,
                                          auth_token=WEBRTC_TOKEN)
        with live_server.client() as http:
            stored = [c for c in http.get("/v1/calls", params={"limit": 500}).json()
                      if c["carrier_call_id"] == call.call_sid]
        assert len(stored) == 1
        return result, await wait_for_call_end(live_server, id=stored[0]["id"], timeout=90)

    result, ended = asyncio.run(scenario())
    assert not result.completed
    assert ended["status"] == "interrupted" and ended["end_reason"] == "disconnected"
    _, rate, samples = fetch_recording(live_server, ended["id"], "caller")
    assert 1.5 * rate <= samples.size <= 2.2 * rate


# -- end to end --------------------------------------------------------------------------------


def test_abusive_softphone_call_raises_a_text_alert_with_its_metadata(live_server):
    runs = asyncio.run(run_calls(live_server, {"webrtc_abusive": simulate_args("en_abusive")},
                                 protocol="webrtc", auth_token=WEBRTC_TOKEN))
    run, call = runs["webrtc_abusive"], load_call("en_abusive")
    started = run.of_type("call.started")[0]
    assert started["carrier"] == "webrtc" and started["tracks"] == ["caller"]
    assert_text_alerts(run, call.metadata)
    assert run.ended["status"] == "ended" and run.ended["reason"] == "completed"


# -- a real browser ----------------------------------------------------------------------------


def test_softphone_page_is_served_with_a_csp(live_server):
    page = httpx.get(f"{live_server.http}/v1/webrtc/softphone")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/v1/webrtc/softphone.js"' in page.text
    script = httpx.get(f"{live_server.http}/v1/webrtc/softphone.js")
    assert script.status_code == 200 and "/v1/webrtc/offer" in script.text
    assert "innerHTML" not in script.text


def _write_fake_microphone(path, seconds: float) -> None:
    """The fixture's caller as the 48 kHz 16-bit WAV Chromium's fake capture device plays."""
    pcm8k = load_call("en_abusive").pcm16("caller")[: int(seconds * 8000) * 2]
    pcm48k = StreamResampler(8000, 48000).process(pcm8k, last=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(pcm48k)


@needs_chromium
def test_headless_chromium_softphone_is_transcribed(live_server, tmp_path):
    microphone = tmp_path / "caller.wav"
    _write_fake_microphone(microphone, 9.0)  # "Hello, I have a question about my monthly bill."
    fragment = httpx.QueryParams({"token": WEBRTC_TOKEN, "autostart": "1", "hangup_after": "12",
                                  "test_id": "chromium", "from": "+819012345678", "utm_source": "browser"})
    url = f"{live_server.http}/v1/webrtc/softphone#{fragment}"

    async def scenario():
        events: list[dict] = []
        async with websockets.connect(live_server.supervisor_url, max_size=2**22) as feed:
            assert json.loads(await feed.recv())["type"] == "hello"
            browser = await asyncio.create_subprocess_exec(
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}%noloop",
                "--allow-loopback-in-peer-connection", "--remote-debugging-port=0", url,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                call_id = None
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    event = json.loads(await asyncio.wait_for(feed.recv(), deadline - time.monotonic()))
                    if event["type"] == "call.started" and event["metadata"].get("test_id") == "chromium":
                        call_id = event["call_id"]
                    if call_id and event.get("call_id") == call_id:
                        events.append(event)
                        if event["type"] == "call.ended":
                            return events
                raise AssertionError(f"no ended browser call; events {events}")
            finally:
                browser.terminate()
                await asyncio.wait_for(browser.wait(), 30)

    events = asyncio.run(scenario())
    started, ended = events[0], events[-1]
    assert started["type"] == "call.started" and started["carrier"] == "webrtc"
    assert started["metadata"]["from"] == "+819012345678" and started["metadata"]["utm_source"] == "browser"
    finals = " ".join(e["text"] for e in events if e["type"] == "transcript.final").lower()
    assert "bill" in finals or "question" in finals, finals
    assert ended["reason"] == "completed"
