"""/v1/media/twilio over a real socket: auth, garbage, and nothing received is lost."""

import asyncio
import io
import json
import wave

import httpx
import pytest
import websockets
from live_server import API_TOKEN, TWILIO_AUTH_TOKEN, close_code, wait_for_call_end

from stream_server.simulator import (
    SimulatedCall,
    media_message,
    signature_headers,
    start_message,
)

FRAME = b"\xff" * 160  # 20 ms of μ-law silence


async def _connect(server, token=TWILIO_AUTH_TOKEN, url=None):
    url = url or server.twilio_url
    return await websockets.connect(url, additional_headers=signature_headers(url, token))


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_unsigned_or_wrongly_signed_stream_is_closed_with_1008(live_server, token):
    async def scenario():
        ws = await _connect(live_server, token)
        try:  # the server may already have closed: that is the point
            await ws.send(json.dumps(start_message(SimulatedCall(caller=b""))))
        except websockets.ConnectionClosed:
            pass
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1008


def test_signature_is_checked_against_the_public_url_behind_a_proxy(live_server):
    async def scenario():
        # Signed for the URL the carrier dialled, delivered through a TLS-terminating proxy.
        public = "wss://calls.example.com/v1/media/twilio"
        headers = signature_headers(public, TWILIO_AUTH_TOKEN)
        headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calls.example.com"})
        ws = await websockets.connect(live_server.twilio_url, additional_headers=headers)
        call = SimulatedCall(caller=b"")
        await ws.send(json.dumps(start_message(call)))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1000


def test_garbage_is_survived_and_every_valid_frame_is_recorded(live_server):
    call = SimulatedCall(caller=b"", parameters={"utm_source": "garbage-test"})

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps(media_message(call, 1, "inbound", 1, FRAME)))  # media before start
        await ws.send(json.dumps(start_message(call)))
        await ws.send("{this is not json")
        await ws.send(json.dumps({"event": "teleport", "where": "mars"}))
        bad = media_message(call, 3, "inbound", 2, FRAME)
        bad["media"]["payload"] = "!!!not-base64!!!"
        await ws.send(json.dumps(bad))
        await ws.send(b"\x00\x01\x02")
        for chunk in range(2, 51):
            await ws.send(json.dumps(media_message(call, chunk + 3, "inbound", chunk, FRAME)))
        await ws.send(json.dumps({"event": "dtmf", "streamSid": call.stream_sid, "dtmf": {"digit": "5"}}))
        await ws.send(json.dumps({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": "m"}}))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        code = await close_code(ws)
        return code, await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, stored = asyncio.run(scenario())
    assert code == 1000
    # Bad JSON, bad base64 and the binary frame were dropped; the unknown event is ignored.
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 3
    assert stored["metadata"]["utm_source"] == "garbage-test"
    with live_server.client() as http:
        audio = http.get(f"/v1/calls/{stored['id']}/recording.wav").content
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() == 50 * 160  # the held pre-start frame + chunks 2..50


def test_a_carrier_that_hangs_up_right_after_its_stop_is_recorded_without_an_error(live_server):
    """The server's own close then meets a socket already gone: that is a normal end, not a crash."""
    call = SimulatedCall(caller=b"")
    errors_before = live_server.log().count("Exception in ASGI application")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(call)))
        for chunk in range(1, 11):
            await ws.send(json.dumps(media_message(call, chunk + 1, "inbound", chunk, FRAME)))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        await ws.close()  # its own close frame follows the stop at once
        return await wait_for_call_end(live_server, stream_id=call.stream_sid)

    stored = asyncio.run(scenario())
    assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert live_server.log().count("Exception in ASGI application") == errors_before


def test_hostile_ids_metadata_and_numbers_cost_single_messages_not_the_call(live_server):
    """Ids over the column sizes, NUL and lone surrogates in metadata, numbers no float holds:
    the call is still stored (bounded, cleaned) and every valid frame recorded."""
    call = SimulatedCall(caller=b"", parameters={"from": "+81" + "1" * 200, "utm_source": "\udc80google\x00"})
    call.stream_sid = "MZ" + "z" * 400
    call.call_sid = "CA" + "9" * 300

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(call)))  # \udc80 travels as a JSON escape
        await ws.send('{"event":"media","media":{"track":"inbound","timestamp":' + "9" * 5000 + ',"payload":"/w=="}}')
        infinite = media_message(call, 2, "inbound", 1, FRAME)
        infinite["media"]["timestamp"] = float("inf")
        await ws.send(json.dumps(infinite))  # Python's json writes Infinity, and reads it back
        for chunk in range(1, 21):
            await ws.send(json.dumps(media_message(call, chunk + 2, "inbound", chunk, FRAME)))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        code = await close_code(ws)
        return code, await wait_for_call_end(live_server, stream_id=call.stream_sid[:128])

    code, stored = asyncio.run(scenario())
    assert code == 1000
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 2
    assert stored["carrier_call_id"] == call.call_sid[:128]
    assert stored["metadata"]["utm_source"] == "?google"
    assert stored["caller_number"] == ("+81" + "1" * 200)[:64]
    with live_server.client() as http:
        audio = http.get(f"/v1/calls/{stored['id']}/recording.wav").content
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() == 20 * 160


def test_too_many_malformed_messages_close_with_1007_and_keep_the_call(live_server):
    call = SimulatedCall(caller=b"")

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(call)))
        for chunk in range(1, 11):
            await ws.send(json.dumps(media_message(call, chunk + 1, "inbound", chunk, FRAME)))
        for _ in range(101):
            await ws.send("not json")
        code = await close_code(ws)
        return code, ws.close_reason, await wait_for_call_end(live_server, stream_id=call.stream_sid)

    code, reason, stored = asyncio.run(scenario())
    assert code == 1007 and "malformed" in reason
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    with live_server.client() as http:
        audio = http.get(f"/v1/calls/{stored['id']}/recording.wav").content
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() == 10 * 160


def test_unsupported_encoding_is_closed_with_1003(live_server):
    async def scenario():
        ws = await _connect(live_server)
        start = start_message(SimulatedCall(caller=b""))
        start["start"]["mediaFormat"]["encoding"] = "audio/opus"
        await ws.send(json.dumps(start))
        return await close_code(ws), ws.close_reason

    code, reason = asyncio.run(scenario())
    assert code == 1003 and "opus" in reason


def test_oversized_message_is_refused_with_1009(live_server):
    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(SimulatedCall(caller=b""))))
        await ws.send("x" * 200_000)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1009


def test_supervisor_feed_and_api_require_the_token(live_server):
    async def scenario():
        url = live_server.supervisor_url.replace(API_TOKEN, "wrong")
        ws = await websockets.connect(url)
        return await close_code(ws)

    assert asyncio.run(scenario()) == 1008
    assert httpx.get(f"{live_server.http}/v1/calls").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{live_server.http}/v1/alerts", headers=wrong).status_code == 401
    assert httpx.post(f"{live_server.http}/v1/alerts/x/ack", headers=wrong).status_code == 401
    assert httpx.get(f"{live_server.http}/healthz").json()["status"] == "ok"
    spec = httpx.get(f"{live_server.http}/openapi.json").json()
    for path in ("/v1/calls", "/v1/calls/{call_id}", "/v1/calls/{call_id}/recording.wav", "/v1/alerts",
                 "/v1/alerts/{alert_id}/ack", "/healthz"):
        assert path in spec["paths"], path


def test_supervisor_token_in_header_works(live_server):
    async def scenario():
        url = live_server.supervisor_url.split("?")[0]
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {API_TOKEN}"}) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(scenario())["type"] == "hello"


def test_unknown_call_is_404(live_server):
    with live_server.client() as http:
        response = http.get("/v1/calls/does-not-exist")
    assert response.status_code == 404 and "does-not-exist" in response.json()["detail"]


def test_reordered_and_duplicated_frames_are_recorded_once_in_order(live_server):
    from stream_server.media.codecs import pcm16_to_ulaw, ulaw_to_pcm16

    call = SimulatedCall(caller=b"")
    frames = [pcm16_to_ulaw(int(100 * i).to_bytes(2, "little", signed=True) * 160) for i in range(40)]
    order = list(range(40))
    order[5], order[6] = order[6], order[5]  # swapped in transit
    order[20:23] = [22, 20, 21]
    order.insert(30, 29)  # retransmitted
    order.insert(12, 3)  # very late duplicate

    async def scenario():
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(call)))
        for seq, i in enumerate(order):
            await ws.send(json.dumps(media_message(call, seq + 2, "inbound", i + 1, frames[i])))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        await close_code(ws)
        return await wait_for_call_end(live_server, stream_id=call.stream_sid)

    stored = asyncio.run(scenario())
    assert stored["stats"]["caller"]["stale_frames"] == 2
    with live_server.client() as http:
        audio = http.get(f"/v1/calls/{stored['id']}/recording.wav", params={"track": "caller"}).content
    with wave.open(io.BytesIO(audio)) as wav:
        recorded = wav.readframes(wav.getnframes())
    assert recorded == b"".join(ulaw_to_pcm16(f) for f in frames)


def test_the_third_call_from_one_number_in_a_day_raises_a_repeat_caller_alert(live_server):
    number = "+81000000777"

    async def one_call():
        call = SimulatedCall(caller=b"", parameters={"from": number, "utm_source": "repeat-test"})
        ws = await _connect(live_server)
        await ws.send(json.dumps(start_message(call)))
        await ws.send(json.dumps({"event": "stop", "streamSid": call.stream_sid, "stop": {}}))
        await close_code(ws)
        return await wait_for_call_end(live_server, stream_id=call.stream_sid)

    calls = [asyncio.run(one_call()) for _ in range(3)]
    with live_server.client() as http:
        alerts = [http.get("/v1/alerts", params={"call_id": c["id"]}).json() for c in calls]
    assert alerts[0] == [] and alerts[1] == []
    [alert] = alerts[2]
    assert alert["category"] == "repeat_caller" and alert["rule"] == "repeat_caller"
    assert alert["metadata"]["from"] == number and "3 calls" in alert["text"]
