"""Nothing received is lost, with real processes and real files: a server killed with SIGKILL
mid-call, and a disk that fills up mid-call and frees up again.

Each test streams the en_abusive fixture call over Twilio Media Streams from its own client,
so it knows exactly which audio the server received, and compares the stored recording with it
sample for sample.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import httpx
import pytest
import websockets
from fixture_calls import load_call
from live_server import (API_TOKEN, CHROMIUM, TWILIO_AUTH_TOKEN, LiveServer, needs_chromium, start_server,
                         stop_server, wait_for_call_end)

from stream_server.media.codecs import ulaw_to_pcm16
from stream_server.simulator import SimulatedCall
from stream_server.simulator.twilio import media_message, signature_headers, start_message, stop_message
from stream_server.simulator.call import FRAME_BYTES, FRAME_S
from stream_server.store.recordings import HEADER_BYTES

CALL = load_call("en_abusive")
FRAMES_PER_SECOND = round(1 / FRAME_S)


class Line:
    """One Twilio Media Stream carrying CALL, frame by frame at real-time pace."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.call = SimulatedCall(caller=CALL.ulaw("caller"), agent=CALL.ulaw("agent"), parameters=CALL.metadata)
        self.sent = 0  # frames sent per track
        self.sequence = 1
        self.ws: websockets.ClientConnection | None = None

    async def open(self) -> None:
        url = self.server.twilio_url
        self.ws = await websockets.connect(url, additional_headers=signature_headers(url, TWILIO_AUTH_TOKEN))
        await self.ws.send(json.dumps(start_message(self.call)))

    async def play_until(self, seconds: float) -> None:
        start = time.monotonic() - self.sent * FRAME_S
        while self.sent < min(round(seconds * FRAMES_PER_SECOND), self.call.duration_frames):
            chunk = self.sent + 1
            for track, name in (("inbound", "caller"), ("outbound", "agent")):
                self.sequence += 1
                message = media_message(self.call, self.sequence, track, chunk, self.call.frame(name, self.sent))
                await self.ws.send(json.dumps(message))
            self.sent += 1
            delay = start + self.sent * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps(stop_message(self.call, self.sequence + 1)))
        await self.ws.close()

    def sent_pcm(self, track: str) -> bytes:
        """What the server received on `track`, decoded as it decodes it."""
        return ulaw_to_pcm16(b"".join(self.call.frame(track, i) for i in range(self.sent)))


async def received_audio_seconds(server: LiveServer, timeout: float = 30) -> float:
    """The audio time of the server's one live call, as its supervisor `hello` reports it."""
    async with websockets.connect(server.supervisor_url) as feed:
        hello = json.loads(await asyncio.wait_for(feed.recv(), timeout))
    return max((call["audio_time"] for call in hello["active_calls"]), default=0.0)


async def wait_until_received(server: LiveServer, seconds: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while await received_audio_seconds(server) < seconds - 1e-6:
        assert time.monotonic() < deadline, "the server did not take in the audio sent"
        await asyncio.sleep(0.1)


def stored_call(server: LiveServer, call_id: str) -> dict:
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}")
    assert response.status_code == 200, response.text
    return response.json()


def recording(server: LiveServer, call_id: str, track: str) -> bytes:
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}/recording.wav", params={"track": track})
    assert response.status_code == 200, response.text
    return response.content[HEADER_BYTES:]


def verify_evidence(server: LiveServer, call_id: str, tmp_path: Path) -> str:
    """Export the call's evidence ZIP and check it with `stream-server verify`, as a user would."""
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}/evidence.zip")
    assert response.status_code == 200, response.text
    path = tmp_path / f"{call_id}.zip"
    path.write_bytes(response.content)
    done = subprocess.run([sys.executable, "-m", "stream_server.cli", "verify", str(path),
                           "--key-file", str(server.data_dir / "evidence.key")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# -- kill -9 ---------------------------------------------------------------------------------


def test_a_server_killed_mid_call_leaves_a_playable_recording_that_a_restart_recovers_and_seals(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    line = Line(server)

    async def until_killed() -> str:
        await line.open()
        await line.play_until(15.0)  # past the first insult (11.5-13.0 s)
        call_id = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the insult transcribed and stored before the kill
            with server.client() as http:
                found = [c for c in http.get("/v1/calls").json() if c["stream_id"] == line.call.stream_sid]
            call_id = found[0]["id"] if found else None
            if call_id and any(s["track"] == "caller" for s in stored_call(server, call_id)["segments"]):
                break
            await line.play_until(line.sent * FRAME_S + 0.5)
        assert call_id, "the call was never stored"
        await wait_until_received(server, line.sent * FRAME_S)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        return call_id

    try:
        call_id = asyncio.run(until_killed())
        before = stored_call_rows(data_dir, call_id)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert before["status"] == "active"  # the dead process never ended it
    sent_bytes = line.sent * FRAME_BYTES * 2

    # As the dead process left them: every received sample is in the file, and the file plays
    # as it is, its header at most a second behind.
    for track in ("caller", "agent"):
        path = data_dir / "recordings" / call_id / f"{track}.wav"
        assert path.stat().st_size == HEADER_BYTES + sent_bytes
        with wave.open(str(path)) as wav:
            assert line.sent * FRAME_BYTES - 8000 <= wav.getnframes() <= line.sent * FRAME_BYTES
            assert wav.readframes(wav.getnframes()) == line.sent_pcm(track)[: wav.getnframes() * 2]

    restarted = start_server(data_dir, log_name="restarted.log")
    try:
        call = stored_call(restarted, call_id)
        assert call["status"] == "interrupted" and call["end_reason"] == "server_restart"
        assert call["duration"] == pytest.approx(line.sent * FRAME_S, abs=0.001)
        assert call["evidence"]["sealed_at"] and set(call["evidence"]["files"]) == {"caller.wav", "agent.wav"}
        assert sorted(s["text"] for s in call["segments"]) == sorted(before["segments"])  # stored as they came
        assert {a["id"] for a in call["alerts"]} == set(before["alerts"]) and before["alerts"]
        for track in ("caller", "agent"):  # repaired: the whole of what was received, sample for sample
            assert recording(restarted, call_id, track) == line.sent_pcm(track)
        assert "OK" in verify_evidence(restarted, call_id, tmp_path)
        assert "recovered call" in restarted.log()
    finally:
        stop_server(restarted)


def stored_call_rows(data_dir: Path, call_id: str) -> dict:
    """The call's row, segment texts and alert ids, read from the SQLite file directly (the server
    that wrote them is dead)."""
    import sqlite3

    with sqlite3.connect(data_dir / "stream_server.db") as db:
        status = db.execute("SELECT status FROM calls WHERE id = ?", (call_id,)).fetchone()[0]
        segments = [r[0] for r in db.execute("SELECT text FROM segments WHERE call_id = ? ORDER BY start", (call_id,))]
        alerts = [r[0] for r in db.execute("SELECT id FROM alerts WHERE call_id = ? ORDER BY created_at", (call_id,))]
    return {"status": status, "segments": segments, "alerts": alerts}


# -- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB filesystem of the test's own (tmpfs), to fill up for real; needs root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem to fill (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a ballast file until the filesystem says ENOSPC."""
    ballast = disk / "ballast"
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb", buffering=0) as file:
        try:
            while True:
                file.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        try:
            while True:  # the last partial megabyte too, down to the page
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


def test_a_full_disk_mid_call_keeps_alerts_flowing_and_loses_nothing_once_space_returns(small_disk, tmp_path):
    server = start_server(small_disk, log_name="../server.log")  # the log outside the disk we fill
    line = Line(server)
    feed_events: list[tuple[float, dict]] = []
    marks: dict[str, float] = {}

    async def scenario() -> str:
        async with websockets.connect(server.supervisor_url, max_size=2**22) as feed:
            hello = json.loads(await feed.recv())
            assert hello["storage"]["recordings"]["state"] == "ok"

            async def listen() -> None:
                async for message in feed:
                    feed_events.append((time.monotonic(), json.loads(message)))

            listener = asyncio.create_task(listen())
            await line.open()
            await line.play_until(8.0)  # the greeting and the caller's first, calm line
            ballast = fill(small_disk)
            marks["full"] = time.monotonic()
            await line.play_until(27.0)  # all three insults are spoken onto the full disk
            await asyncio.sleep(3)  # ... and their last transcripts arrive while it is still full
            marks["health"] = time.monotonic()
            async with httpx.AsyncClient() as http:
                marks["health_during"] = (await http.get(f"{server.http}/healthz")).json()
            ballast.unlink()
            marks["freed"] = time.monotonic()
            await line.play_until(CALL.truth["duration"])
            await line.hang_up()
            stored = await wait_for_call_end(server, stream_id=line.call.stream_sid)
            await asyncio.sleep(3)  # StorageRetry writes what is still held, once a second
            listener.cancel()
            return stored["id"]

    try:
        call_id = asyncio.run(scenario())
        events = [e for _, e in feed_events]

        # While the disk was full: the supervisors were told, health said so, and the alerts came.
        storage = [(t, e) for t, e in feed_events if e["type"] == "storage"]
        failing = [(t, e) for t, e in storage if e["state"] == "failing"]
        recordings_failing = [e for _, e in failing if e["kind"] == "recordings"]
        assert recordings_failing and recordings_failing[0]["error"] == "No space left on device", storage
        health = marks["health_during"]
        assert health["status"] == "degraded" and health["storage"]["recordings"]["state"] == "failing"
        alerts_while_full = [e for t, e in feed_events
                             if e["type"] == "alert" and marks["full"] < t < marks["freed"] and e["call_id"] == call_id]
        assert alerts_while_full, [e["type"] for e in events]

        # When space returned: recovered, announced, and everything is stored.
        assert all(any(t > marks["freed"] and e["kind"] == kind and e["state"] == "ok" for t, e in storage)
                   for kind in {e["kind"] for _, e in failing}), storage
        call = stored_call(server, call_id)
        assert call["status"] == "ended" and call["end_reason"] == "completed"
        finals = [e for e in events if e["type"] == "transcript.final" and e["call_id"] == call_id]
        assert sorted(s["text"] for s in call["segments"]) == sorted(e["text"] for e in finals)
        assert {a["id"] for a in call["alerts"]} == {e["id"] for e in events if e["type"] == "alert"
                                                      and e["call_id"] == call_id}
        for track in ("caller", "agent"):  # every sample, in its place
            assert recording(server, call_id, track) == line.sent_pcm(track)
        assert call["evidence"]["sealed_at"]
        assert "OK" in verify_evidence(server, call_id, tmp_path)
        with server.client() as http:
            metrics = http.get("/metrics").text
            assert http.get("/healthz").json()["status"] == "ok"
        errors = [line for line in metrics.splitlines()
                  if line.startswith('stream_server_storage_write_errors_total{kind="recordings"}')]
        assert errors and float(errors[0].split()[-1]) > 0, errors
        assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
    finally:
        stop_server(server)


@needs_chromium
def test_the_live_board_shows_a_full_disk_while_it_lasts(small_disk):
    """What a supervisor sees: a banner on the board (also on a board opened while the disk is
    full, from the feed's hello), gone once space returns."""
    from playwright.async_api import async_playwright

    server = start_server(small_disk, {"STREAM_SERVER_UI_LANGUAGE": "en"}, log_name="../server.log")
    line = Line(server)

    async def signed_in_board(browser):
        page = await browser.new_page(base_url=server.http)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto("/")
        await page.fill("#signin-token", API_TOKEN)
        await page.fill("#signin-name", "supervisor-sato")
        await page.click("#signin-submit")
        await page.wait_for_selector("#signin", state="hidden")
        return page, errors

    async def scenario() -> None:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            board, errors = await signed_in_board(browser)
            banner = board.locator("#storage-banner")
            await line.open()
            await line.play_until(3.0)
            assert not await banner.is_visible()

            ballast = fill(small_disk)
            await line.play_until(8.0)
            await banner.wait_for(state="visible", timeout=15_000)
            text = await banner.text_content()
            assert "Recordings cannot be written to disk" in text and "No space left on device" in text, text

            late, late_errors = await signed_in_board(browser)  # opened while the disk is full
            await late.locator("#storage-banner").wait_for(state="visible", timeout=15_000)

            ballast.unlink()
            await line.play_until(12.0)
            for page in (board, late):
                await page.locator("#storage-banner").wait_for(state="hidden", timeout=15_000)
                assert await page.evaluate("document.body.dataset.storage") == "ok"
            await line.hang_up()
            await browser.close()
            assert not errors and not late_errors, errors + late_errors

    try:
        asyncio.run(scenario())
    finally:
        stop_server(server)
