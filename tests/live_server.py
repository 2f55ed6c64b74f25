"""A real stream_server process on a loopback port, and clients that talk to it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
import websockets

from stream_server.media.events import CallStarted
from stream_server.simulator import default_url

API_TOKEN = "test-api-token"
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"
STREAM_TOKEN = "test-stream-token"  # jambonz listen / mod_audio_fork (/v1/media/stream)
AUDIOHOOK_API_KEY = "test-audiohook-api-key"
AUDIOHOOK_CLIENT_SECRET = "dGVzdC1hdWRpb2hvb2stY2xpZW50LXNlY3JldA=="  # base64, as Genesys shows it
AUDIOHOOK_AUTH_TOKEN = f"{AUDIOHOOK_API_KEY}:{AUDIOHOOK_CLIENT_SECRET}"  # simulate --auth-token
TELNYX_STREAM_TOKEN = "test-telnyx-stream-token"
VONAGE_TOKEN = "test-vonage-token"
WEBRTC_TOKEN = "test-webrtc-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    port: int
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    audiosocket_port: int = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def twilio_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/media/twilio"

    def media_url(self, protocol: str) -> str:
        """Where this server takes `protocol`'s media (see stream_server.simulator.PROTOCOLS)."""
        return default_url(protocol, port=self.port, audiosocket_port=self.audiosocket_port)

    @property
    def supervisor_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/supervisor/ws?token={API_TOKEN}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.http, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 180,
                 log_name: str = "server.log") -> LiveServer:
    """`log_name`: servers sharing one data directory (scale-out roles) each need their own."""
    port, audiosocket_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "STREAM_SERVER_AUDIOSOCKET_PORT": str(audiosocket_port),
            "STREAM_SERVER_API_TOKEN": API_TOKEN,
            "STREAM_SERVER_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
            "STREAM_SERVER_STREAM_TOKEN": STREAM_TOKEN,
            "STREAM_SERVER_AUDIOHOOK_API_KEY": AUDIOHOOK_API_KEY,
            "STREAM_SERVER_AUDIOHOOK_CLIENT_SECRET": AUDIOHOOK_CLIENT_SECRET,
            "STREAM_SERVER_TELNYX_STREAM_TOKEN": TELNYX_STREAM_TOKEN,
            "STREAM_SERVER_VONAGE_TOKEN": VONAGE_TOKEN,
            "STREAM_SERVER_WEBRTC_TOKEN": WEBRTC_TOKEN,
            "STREAM_SERVER_LOG_LEVEL": "info",
        }
    )
    env.update(extra_env or {})
    log_path = data_dir / log_name
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_server.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = LiveServer(port, data_dir, process, log_path, audiosocket_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.http}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"server did not become healthy in {timeout}s:\n{server.log()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()


# -- a browser ---------------------------------------------------------------------------------

# Debian's Chromium, driven by Playwright (console, board) or directly (WebRTC); .ci/run installs it.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="chromium is not installed (apt-get install chromium)")


# -- what a test asks of a running server --------------------------------------------------


async def close_code(ws: websockets.ClientConnection, timeout: float = 30) -> int | None:
    """Drain whatever the server still sends on `ws` until it closes; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


def find_call(server: LiveServer, **match: object) -> dict | None:
    """The stored call (from `/v1/calls`) whose fields equal `match`, e.g. `stream_id=sid`; else None."""
    with server.client() as http:
        for call in http.get("/v1/calls", params={"limit": 500}).json():
            if all(call.get(key) == value for key, value in match.items()):
                return call
    return None


async def wait_for_call_end(server: LiveServer, timeout: float = 60, **match: object) -> dict:
    """Poll `find_call(server, **match)` until that call is stored and no longer active."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = find_call(server, **match)
        if call and call["status"] != "active":
            return call
        await asyncio.sleep(0.25)
    raise AssertionError(f"call {match} did not end in {timeout}s")


class Recording(NamedTuple):
    """A call's recording WAV, decoded: 16-bit samples, interleaved when there are two channels."""

    channels: int
    rate: int
    samples: np.ndarray

    @property
    def frames(self) -> bytes:
        """The raw little-endian PCM16 frames, as the WAV holds them."""
        return self.samples.tobytes()


def fetch_recording(server: LiveServer, call_id: str, track: str | None = None) -> Recording:
    """GET `/v1/calls/{call_id}/recording.wav` (one `track`, or all tracks) and decode it."""
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}/recording.wav", params={"track": track} if track else {})
    assert response.status_code == 200, response.text
    with wave.open(io.BytesIO(response.content)) as wav:
        pcm = wav.readframes(wav.getnframes())
        return Recording(wav.getnchannels(), wav.getframerate(), np.frombuffer(pcm, dtype="<i2"))


# Frames no JSON carrier parser may accept: not JSON, not an object, binary, a start without its body.
MALFORMED_FRAMES: tuple[str | bytes, ...] = ("{not json", "[1, 2, 3]", b"\x00\x01binary", json.dumps({"event": "start"}))


def assert_media_held_until_start(stream: Any, media: list[dict], start: dict, times: list[float]) -> None:
    """A carrier parser (`stream.feed`) holds `media` sent before `start`: nothing comes out
    until the start, which yields CallStarted and then the held audio at `times`."""
    for message in media:
        assert stream.feed(json.dumps(message)) == []
    events = stream.feed(json.dumps(start))
    assert isinstance(events[0], CallStarted)
    assert [e.t for e in events[1:]] == times


ALERT_METADATA_KEYS = ("utm_source", "tracking_number", "from")


def assert_text_alerts(run: CallRun, metadata: Mapping[str, str] | None = None,
                       track: str = "caller") -> list[dict]:
    """The run's text-rule alerts: at least one, each for this call and `track`, an insult or
    threat, and carrying the call's `metadata` (its ALERT_METADATA_KEYS) when given."""
    text_alerts = [a for a in run.of_type("alert") if a["rule"] == "text"]
    assert text_alerts, f"no alert; transcript: {[e['text'] for e in run.of_type('transcript.final')]}"
    for alert in text_alerts:
        assert alert["call_id"] == run.call_id
        assert alert["track"] == track
        assert alert["category"] in ("insult", "threat")
        for key in ALERT_METADATA_KEYS if metadata is not None else ():
            assert alert["metadata"][key] == metadata[key], key
    return text_alerts


@dataclass
class CallRun:
    """One simulated call and every supervisor event that belonged to it."""

    name: str
    call_id: str | None = None
    events: list[dict] = field(default_factory=list)
    simulate_output: str = ""
    arrival: dict[str, float] = field(default_factory=dict)  # event id → wall clock

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def ended(self) -> dict | None:
        ended = self.of_type("call.ended")
        return ended[0] if ended else None


async def run_calls(server: LiveServer, calls: dict[str, list[str]], timeout: float = 420,
                    protocol: str = "twilio", auth_token: str | None = None,
                    supervisor: LiveServer | None = None) -> dict[str, CallRun]:
    """Stream each call with `stream-server simulate --protocol` while a supervisor listens.

    `calls` maps a name to the simulate arguments (files and options); each call gets a
    `test_id` parameter so its events can be told apart on the shared feed. `auth_token`
    defaults to the Twilio token the server is started with. `supervisor`: listen on that
    server's feed instead (another node sharing the Redis bus).
    """
    if auth_token is None and protocol == "twilio":
        auth_token = TWILIO_AUTH_TOKEN
    credentials = ["--auth-token", auth_token] if auth_token else []
    runs = {name: CallRun(name) for name in calls}
    by_call_id: dict[str, CallRun] = {}
    async with websockets.connect((supervisor or server).supervisor_url, max_size=2**22) as feed:
        hello = json.loads(await feed.recv())
        assert hello["type"] == "hello"
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "stream_server.cli", "simulate", *args,
                "--protocol", protocol, "--url", server.media_url(protocol), *credentials,
                "--param", f"test_id={name}",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            for name, args in calls.items()
        ]
        deadline = time.monotonic() + timeout
        while any(run.ended is None for run in runs.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"calls not ended: {[n for n, r in runs.items() if r.ended is None]}")
            event = json.loads(await asyncio.wait_for(feed.recv(), remaining))
            if event["type"] == "call.started":
                run = runs.get(event["metadata"].get("test_id"))
                if run is not None:
                    run.call_id = event["call_id"]
                    by_call_id[event["call_id"]] = run
            run = by_call_id.get(event.get("call_id"))
            if run is not None:
                run.events.append(event)
                if "id" in event:
                    run.arrival[event["id"]] = time.time()
        for (name, _), process in zip(calls.items(), processes):
            out, _ = await process.communicate()
            runs[name].simulate_output = out.decode(errors="replace")
    return runs
