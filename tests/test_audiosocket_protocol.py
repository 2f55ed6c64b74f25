"""Asterisk AudioSocket (raw TCP): the frame parser, then the documented sequences over a real
socket against the live server's AudioSocket port, then one abusive fixture call end to end."""

import asyncio
import json
import socket
import struct
import sys
import time
import uuid

import numpy as np
import pytest
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    CallRun,
    assert_text_alerts,
    fetch_recording,
    find_call,
    free_port,
    wait_for_call_end,
)

from stream_server.api.audiosocket_server import (
    AudioSocketServer,
    parse_allow_list,
    peer_allowed,
)
from stream_server.media.audiosocket import (
    ERROR_NOT_ALLOWED,
    ERROR_PROTOCOL,
    MAX_PAYLOAD_BYTES,
    AudioSocketStream,
)
from stream_server.media.events import Audio, CallEnded, CallStarted
from stream_server.simulator.audiosocket import call_uuid, parse_url


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("!BH", kind, len(payload)) + payload


def slin(value: int, samples: int = 160, kind: int = 0x10) -> bytes:
    return frame(kind, np.full(samples, value, dtype="<i2").tobytes())


def uuid_frame(call_id: uuid.UUID) -> bytes:
    return frame(0x01, call_id.bytes)


# -- the parser ---------------------------------------------------------------------------


def test_uuid_then_audio_starts_a_caller_only_call_with_the_uuid_as_carrier_call_id():
    call_id, stream = uuid.uuid4(), AudioSocketStream()
    assert stream.feed(uuid_frame(call_id)) == []  # the first audio frame fixes the rate
    started, audio = stream.feed(slin(100))
    assert isinstance(started, CallStarted) and isinstance(audio, Audio)
    assert started.carrier == "audiosocket" and started.tracks == ("caller",) and started.metadata == {}
    assert started.carrier_call_id == str(call_id) and started.sample_rate == 8000
    assert audio.track == "caller" and audio.t == 0.0 and audio.pcm16 == np.full(160, 100, "<i2").tobytes()
    [second] = stream.feed(slin(100))
    assert second.t == pytest.approx(0.02)


def test_frames_split_anywhere_across_tcp_reads_parse_the_same():
    data = uuid_frame(uuid.uuid4()) + slin(1) + frame(0x03, b"5") + slin(2) + frame(0x00)
    whole = AudioSocketStream().feed(data)
    stream, pieces = AudioSocketStream(), []
    for i in range(len(data)):
        pieces += stream.feed(data[i : i + 1])
    assert pieces == whole
    assert [type(e) for e in whole] == [CallStarted, Audio, Audio, CallEnded]


@pytest.mark.parametrize("kind,rate", [(0x10, 8000), (0x11, 12000), (0x12, 16000), (0x13, 24000), (0x16, 48000)])
def test_audio_type_sets_the_sample_rate(kind, rate):
    stream = AudioSocketStream()
    started, audio = stream.feed(uuid_frame(uuid.uuid4()) + slin(0, rate // 50, kind))
    assert started.sample_rate == rate and audio.sample_rate == rate


def test_hangup_completes_the_call_and_nothing_after_it_counts():
    stream = AudioSocketStream()
    events = stream.feed(uuid_frame(uuid.uuid4()) + slin(1) + frame(0x00) + slin(2))
    assert events[-1] == CallEnded("completed") and len(events) == 3


def test_uuid_then_hangup_still_starts_the_call():
    events = AudioSocketStream().feed(uuid_frame(uuid.uuid4()) + frame(0x00))
    assert [type(e) for e in events] == [CallStarted, CallEnded]


@pytest.mark.parametrize("data,why", [
    (slin(1), "before the UUID"),
    (frame(0x01, b"\x01" * 15), "16 expected"),
    (frame(0x01, b"\x01" * 36), "16 expected"),
    (frame(0x03, b"1"), "before the UUID"),
])
def test_protocol_errors_stop_the_parser(data, why):
    stream = AudioSocketStream()
    assert stream.feed(data) == []
    assert why in stream.error


def test_frame_over_the_cap_is_a_protocol_error_after_the_audio_before_it():
    stream = AudioSocketStream()
    events = stream.feed(uuid_frame(uuid.uuid4()) + slin(1) + struct.pack("!BH", 0x10, MAX_PAYLOAD_BYTES + 1))
    assert [type(e) for e in events] == [CallStarted, Audio]
    assert "over" in stream.error


def test_unknown_types_dtmf_and_error_frames_are_ignored_bad_audio_is_counted():
    stream = AudioSocketStream()
    stream.feed(uuid_frame(uuid.uuid4()) + slin(1))
    assert stream.feed(frame(0x42, b"??") + frame(0x03, b"#") + frame(0xFF, b"\x02") + frame(0xFF)) == []
    assert stream.feed(frame(0x10, b"\x01\x02\x03")) == [] and stream.bad_frames == 1
    assert stream.feed(slin(1, kind=0x12)) == [] and stream.bad_frames == 2  # a rate change mid-call
    [audio] = stream.feed(slin(3))
    assert audio.t == pytest.approx(0.02) and stream.error is None


def test_too_many_bad_frames_is_a_protocol_error():
    stream = AudioSocketStream(max_bad_frames=3)
    stream.feed(uuid_frame(uuid.uuid4()))
    stream.feed(frame(0x10, b"\x01") * 4)
    assert "too many" in stream.error


def test_eof_between_frames_completes_inside_a_frame_disconnects():
    stream = AudioSocketStream()
    stream.feed(uuid_frame(uuid.uuid4()) + slin(1))
    assert stream.finish() == CallEnded("completed")
    stream.feed(slin(1)[:100])
    assert stream.finish() == CallEnded("disconnected")


def test_allow_list():
    loopback = parse_allow_list("127.0.0.0/8, ::1")
    assert peer_allowed("127.0.0.1", loopback) and peer_allowed("::1", loopback)
    assert peer_allowed("::ffff:127.0.0.1", loopback)  # IPv4 peer on a dual-stack socket
    assert not peer_allowed("10.0.0.5", loopback) and not peer_allowed("garbage", loopback)
    assert peer_allowed("203.0.113.9", parse_allow_list("*"))
    assert not peer_allowed("127.0.0.1", parse_allow_list(""))
    assert peer_allowed("10.1.2.3", parse_allow_list("10.1.2.3"))
    with pytest.raises(ValueError):
        parse_allow_list("not-an-address")


def test_simulator_url_and_uuid():
    assert parse_url("tcp://127.0.0.1:9092") == ("127.0.0.1", 9092)
    with pytest.raises(ValueError):
        parse_url("ws://127.0.0.1:9092")

    class Call:
        call_sid = "CA123"

    assert call_uuid(Call()) == call_uuid(Call())  # stable per call


def test_a_peer_not_on_the_allow_list_gets_an_error_frame_and_is_closed():
    async def scenario():
        port = free_port()
        server = AudioSocketServer(state=None, host="127.0.0.1", port=port, allow="10.0.0.0/8", max_bad_frames=10)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(uuid_frame(uuid.uuid4()) + slin(1))
            reply = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return reply
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == frame(0xFF, bytes([ERROR_NOT_ALLOWED]))


# -- over a real socket ---------------------------------------------------------------------


async def _open(server):
    return await asyncio.open_connection("127.0.0.1", server.audiosocket_port)


async def _read_to_eof(reader, timeout=15) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def _send_and_hang_up(server, call_id: uuid.UUID, data: bytes, settle: float = 0) -> dict:
    """Write `data` on a fresh connection, close it `settle` seconds later (what app_audiosocket
    does when the channel hangs up), and wait for the stored call to end."""
    _, writer = await _open(server)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(settle)
    writer.close()
    return await wait_for_call_end(server, carrier_call_id=str(call_id))


def test_a_call_closed_by_asterisk_between_frames_is_completed_and_recorded(live_server):
    call_id = uuid.uuid4()
    data = uuid_frame(call_id) + slin(1000) * 50 + frame(0x03, b"7")  # the last frame whole, then a DTMF
    stored = asyncio.run(_send_and_hang_up(live_server, call_id, data))
    assert stored["status"] == "ended" and stored["end_reason"] == "completed"
    assert stored["carrier"] == "audiosocket" and stored["tracks"] == ["caller"]
    channels, rate, samples = fetch_recording(live_server, stored["id"])
    assert channels == 1 and rate == 8000 and len(samples) == 50 * 160 and (samples == 1000).all()


def test_hangup_frame_completes_the_call_and_the_server_closes(live_server):
    call_id = uuid.uuid4()

    async def scenario():
        reader, writer = await _open(live_server)
        writer.write(uuid_frame(call_id) + slin(5, 320, kind=0x12) * 10 + frame(0x00))
        rest = await _read_to_eof(reader)
        writer.close()
        return rest, await wait_for_call_end(live_server, carrier_call_id=str(call_id))

    rest, stored = asyncio.run(scenario())
    assert rest == b"" and stored["end_reason"] == "completed"
    _, rate, samples = fetch_recording(live_server, stored["id"])
    assert rate == 16000 and len(samples) == 10 * 320


def test_garbage_is_survived_and_every_valid_frame_is_recorded(live_server):
    call_id = uuid.uuid4()

    async def scenario():
        _, writer = await _open(live_server)
        data = uuid_frame(call_id) + slin(3) + frame(0x42, b"unknown") + frame(0xFF, b"\x02") + frame(0x10, b"odd")
        data += frame(0x03, b"1") + slin(3) * 48 + frame(0x01, call_id.bytes)  # a second UUID is ignored
        for i in range(0, len(data), 37):  # arbitrary TCP segmentation
            writer.write(data[i : i + 37])
            await writer.drain()
        writer.close()
        return await wait_for_call_end(live_server, carrier_call_id=str(call_id))

    stored = asyncio.run(scenario())
    assert stored["status"] == "ended" and stored["stats"]["bad_messages"] == 1
    assert len(fetch_recording(live_server, stored["id"]).samples) == 49 * 160


@pytest.mark.parametrize("data", [slin(1), frame(0x01, b"\x01" * 15)], ids=["audio-before-uuid", "short-uuid"])
def test_a_stream_without_a_valid_uuid_gets_an_error_frame_and_is_closed(live_server, data):
    async def scenario():
        reader, writer = await _open(live_server)
        writer.write(data)
        reply = await _read_to_eof(reader)
        writer.close()
        return reply

    assert asyncio.run(scenario()) == frame(0xFF, bytes([ERROR_PROTOCOL]))


def test_oversized_frame_closes_with_an_error_frame_and_keeps_the_recording(live_server):
    call_id = uuid.uuid4()

    async def scenario():
        reader, writer = await _open(live_server)
        writer.write(uuid_frame(call_id) + slin(4) * 10 + struct.pack("!BH", 0x10, 20000) + b"\x00" * 20000)
        reply = await _read_to_eof(reader)
        writer.close()
        return reply, await wait_for_call_end(live_server, carrier_call_id=str(call_id))

    reply, stored = asyncio.run(scenario())
    assert reply == frame(0xFF, bytes([ERROR_PROTOCOL]))
    assert stored["status"] == "interrupted" and stored["end_reason"] == "protocol_error"
    assert len(fetch_recording(live_server, stored["id"]).samples) == 10 * 160


def test_truncated_frame_at_eof_marks_the_call_disconnected_and_keeps_the_recording(live_server):
    call_id = uuid.uuid4()
    data = uuid_frame(call_id) + slin(6) * 10 + slin(6)[:100]  # EOF inside the eleventh frame
    stored = asyncio.run(_send_and_hang_up(live_server, call_id, data))
    assert stored["status"] == "interrupted" and stored["end_reason"] == "disconnected"
    assert len(fetch_recording(live_server, stored["id"]).samples) == 10 * 160


def test_a_reset_connection_marks_the_call_disconnected_and_keeps_the_recording(live_server):
    call_id = uuid.uuid4()

    async def scenario():
        _, writer = await _open(live_server)
        writer.write(uuid_frame(call_id) + slin(7) * 20)
        await writer.drain()
        for _ in range(40):  # let the server read it all before the reset
            if find_call(live_server, carrier_call_id=str(call_id)):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST
        return await wait_for_call_end(live_server, carrier_call_id=str(call_id))

    stored = asyncio.run(scenario())
    assert stored["status"] == "interrupted" and stored["end_reason"] == "disconnected"
    assert len(fetch_recording(live_server, stored["id"]).samples) == 20 * 160


def test_uuid_without_audio_still_records_the_call(live_server):
    call_id = uuid.uuid4()
    stored = asyncio.run(_send_and_hang_up(live_server, call_id, uuid_frame(call_id), settle=0.3))
    assert stored["end_reason"] == "completed" and stored["duration"] == 0


# -- end to end -------------------------------------------------------------------------------


async def _run_simulated_call(server, args, timeout=420):
    """`stream-server simulate --protocol audiosocket` while a supervisor listens; AudioSocket
    carries no metadata, so the call is matched by its UUID (carrier_call_id) afterwards."""
    events: list[dict] = []
    async with websockets.connect(server.supervisor_url, max_size=2**22) as feed:
        assert json.loads(await feed.recv())["type"] == "hello"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stream_server.cli", "simulate", *args, "--protocol", "audiosocket",
            "--url", server.media_url("audiosocket"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output = asyncio.create_task(process.communicate())
        deadline = time.monotonic() + timeout
        call_id = None
        while time.monotonic() < deadline:
            try:
                events.append(json.loads(await asyncio.wait_for(feed.recv(), 1.0)))
            except TimeoutError:
                pass
            if not output.done():
                continue
            out = output.result()[0].decode(errors="replace")
            uuid_text = json.loads(out.strip().splitlines()[-1]).get("call_sid")
            assert uuid_text, out
            started = [e for e in events if e["type"] == "call.started" and e["carrier_call_id"] == uuid_text]
            if started:
                call_id = started[0]["call_id"]
                if any(e["type"] == "call.ended" and e["call_id"] == call_id for e in events):
                    return uuid_text, call_id, [e for e in events if e.get("call_id") == call_id]
        raise TimeoutError(f"call {call_id} not ended")


def test_abusive_call_over_audiosocket_raises_a_text_alert_on_the_caller_track(live_server):
    uuid_text, call_id, events = asyncio.run(_run_simulated_call(live_server, simulate_args("en_abusive")))
    started = next(e for e in events if e["type"] == "call.started")
    assert started["carrier"] == "audiosocket" and started["tracks"] == ["caller"]
    ended = next(e for e in events if e["type"] == "call.ended")
    assert ended["status"] == "ended" and ended["reason"] == "completed"
    assert ended["duration"] == pytest.approx(load_call("en_abusive").truth["duration"], abs=0.1)
    assert_text_alerts(CallRun("audiosocket_abusive", call_id, events))
    with live_server.client() as http:
        assert http.get(f"/v1/calls/{call_id}").json()["carrier_call_id"] == uuid_text
