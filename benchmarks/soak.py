"""Soak: a bounded load test on loopback (issue 8, point 7).

A real `stream-server serve` (benchmarks/capacity.py's `Server`, SQLite, in-process bus, an API
token set) takes ``--lines`` concurrent telephone lines for ``--minutes``. Each line plays the
fixture calls (tests/fixtures/calls) back to back at real-time pace through the carrier
simulators (stream_server/simulator: Twilio, Telnyx, jambonz `stream`; a seeded mix), and a
seeded share of the calls is hostile:

- dropped: the socket is cut mid-call without the carrier's goodbye (``drop_after``);
- malformed: messages injected between the media frames (``SimulatedCall.injections``): invalid
  JSON, JSON that is not an object, binary junk, wrong types and bad base64 in `media`, unknown
  tracks, an infinite timestamp, audio frames that are not whole samples, ~60 KB messages under
  the 64 KiB limit (one nested too deep, one valid); and harmless oddities the server must not
  count (unknown events, a duplicate `start`, a 60 KB `mark`). Each must cost only itself.

First a warm-up round (one call per line, every carrier) and an idle settle; the server's
resident memory, file descriptors and TCP sockets then are the baseline. After the soak the
calls drain, the server settles idle again and the same figures are taken, then every call is
read back over the REST API and checked:

- every call dialled was played, stored once, and none is left ``active``;
- a call that completed is ``ended``; its recording per track is sample for sample the audio
  sent (the stored PCM is the decoded μ-law, or the L16 as sent); it has caller segments, and a
  fixture with abusive caller lines has an alert of each of their categories;
- a dropped call is ``interrupted`` and its recording is exactly what was sent before the drop;
- ``stats.bad_messages`` of every call equals the malformed messages injected into it (and the
  server's ``/metrics`` total equals their sum);
- idle RSS after the soak is within ``--rss-tolerance-mb`` of the baseline; no recording file
  is left open, no more TCP connections than at the baseline, file descriptors within
  ``--fd-tolerance`` of it; the supervisor feed stayed connected; the server is still running
  and never logged a traceback.

Figures (RSS over time, alert latency, CPU, per-check verdicts) are printed and written to the
`soak` section of benchmarks/RESULTS.md. Exits 1 when a check fails.

    .venv/bin/python benchmarks/soak.py                                # 30 min, 6 lines
    .venv/bin/python benchmarks/soak.py --minutes 2 --lines 3 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
import wave
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.capacity import CALLS_DIR, FixtureCall, Server, fmt, load_corpus
from benchmarks.report import cpu_model, percentile, update_section
from stream_server.media.codecs import ulaw_to_pcm16
from stream_server.simulator import FRAME_BYTES, FRAME_S, SimulatedCall, SimulationResult, stream_call
from stream_server.simulator import stream as jambonz
from stream_server.simulator import telnyx, twilio
from stream_server.simulator.call import frames_to_send

CARRIERS = {"twilio": 2.0, "telnyx": 1.0, "stream": 1.0}  # default mix (weights)
TRACKS = ("caller", "agent")
OVERSIZE = 60_000  # bytes: under the server's 64 KiB max_message_bytes, so allowed
LOG_FAILURES = ("Traceback", "Exception in ASGI application")
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING"}


# --- what is played ----------------------------------------------------------------------------


@dataclass
class Injection:
    kind: str
    message: str | bytes
    counted: bool  # the server must count it in stats.bad_messages (True) or ignore it (False)


def json_carrier_junk(call: SimulatedCall, carrier: str) -> list[Injection]:
    """Hostile messages for the Twilio-shaped JSON carriers (Twilio, Telnyx)."""
    module = twilio if carrier == "twilio" else telnyx

    def media(**changes: object) -> str:
        msg = module.media_message(call, 999, "inbound", 1, b"\xff" * FRAME_BYTES)
        msg["media"].update(changes)
        return json.dumps(msg)

    not_media = module.media_message(call, 999, "inbound", 1, b"\xff" * FRAME_BYTES)
    not_media["media"] = "oops"
    return [
        Injection("invalid_json", '{"event": "media", "media": {not json', True),
        Injection("not_an_object", "[1, 2, 3]", True),
        Injection("binary_junk", b"\x00\x01binary\xff\xfe", True),
        Injection("nested_60k", "[" * OVERSIZE, True),  # oversize but allowed; too deep to parse
        Injection("media_not_object", json.dumps(not_media), True),
        Injection("payload_not_base64", media(payload="!!!not-base64!!!"), True),
        Injection("payload_wrong_type", media(payload=12345), True),
        Injection("payload_empty", media(payload=""), True),
        Injection("unknown_track", media(track="sideways"), True),
        Injection("timestamp_infinite", media(timestamp="1e999"), True),
        Injection("unknown_event", json.dumps({"event": "teleport", "where": "mars"}), False),
        Injection("duplicate_start", json.dumps({"event": "start"}), False),
        Injection("mark_60k", json.dumps({"event": "mark", "mark": {"name": "x" * OVERSIZE}}), False),
    ]


def stream_junk(call: SimulatedCall, carrier: str) -> list[Injection]:
    """Hostile messages for jambonz `listen` (JSON text frames + binary stereo L16)."""
    return [
        Injection("invalid_json", "{not json", True),
        Injection("not_an_object", "[1, 2, 3]", True),
        Injection("nested_60k", "[" * OVERSIZE, True),
        Injection("odd_length_audio", b"\x01\x02\x03", True),
        Injection("partial_sample_pair", b"\x01\x02\x03\x04\x05\x06", True),
        Injection("empty_audio", b"", True),
        Injection("unknown_event", json.dumps({"event": "teleport"}), False),
        Injection("dtmf", json.dumps({"event": "dtmf", "dtmf": "5", "duration": 100}), False),
        Injection("metadata_again_60k", json.dumps({"pad": "x" * OVERSIZE}), False),
    ]


JUNK = {"twilio": json_carrier_junk, "telnyx": json_carrier_junk, "stream": stream_junk}


@dataclass
class Planned:
    """One call a line dials: what is played, and what came of it."""

    tag: str
    line: int
    phase: str  # warmup or soak
    fixture: FixtureCall
    carrier: str
    drop_after: float | None
    injections: dict[int, list[Injection]]
    call: SimulatedCall
    frames: int  # 20 ms frames that will be sent
    result: SimulationResult | None = None
    error: str | None = None

    @property
    def dropped(self) -> bool:
        return self.drop_after is not None

    @property
    def completed(self) -> bool:
        return self.result is not None and self.result.completed

    def injected(self, counted: bool | None = None) -> list[Injection]:
        """Injections actually sent (before the drop), all or the counted / harmless ones."""
        return [j for i, js in self.injections.items() if i < self.frames for j in js
                if counted is None or j.counted == counted]


def plan_call(tag: str, line: int, phase: str, fixture: FixtureCall, carrier: str, rng: random.Random,
              drop_share: float, malformed_share: float, ulaw: dict[str, dict[str, bytes]]) -> Planned:
    call = SimulatedCall(caller=ulaw[fixture.name]["caller"], agent=ulaw[fixture.name]["agent"],
                         parameters={**fixture.truth["metadata"], "soak_call": tag})
    total = call.duration_frames
    drop_after = None
    if rng.random() < drop_share:
        drop_after = round(rng.uniform(3.0, total * FRAME_S - 3.0), 2)
    injections: dict[int, list[Injection]] = defaultdict(list)
    if rng.random() < malformed_share:
        catalogue = JUNK[carrier](call, carrier)
        for _ in range(rng.randint(2, 8)):
            injections[rng.randrange(total)].append(rng.choice(catalogue))
    call.injections = {i: [j.message for j in js] for i, js in injections.items()}
    return Planned(tag, line, phase, fixture, carrier, drop_after, dict(injections), call,
                   frames_to_send(call, drop_after))


# --- the server process, seen from /proc -------------------------------------------------------


def tcp_states(pid: int) -> dict[str, str]:
    """socket inode → TCP state, for the server's network namespace."""
    states = {}
    for name in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9:
                states[cols[9]] = TCP_STATES.get(cols[3], cols[3])
    return states


def snapshot(pid: int, data_dir: Path) -> dict:
    """RSS, CPU, threads and open file descriptors of `pid` by kind (TCP sockets by state,
    recordings, other files under the data directory, pipes, ...)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    states = tcp_states(pid)
    kinds: Counter = Counter()
    tcp: Counter = Counter()
    data = str(data_dir)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            state = states.get(target[8:-1])
            if state:
                tcp[state] += 1
                kinds["tcp"] += 1
            else:
                kinds["other socket"] += 1
        elif target.startswith(data) and target.endswith(".wav"):
            kinds["recording"] += 1
        elif target.startswith(data):
            kinds["data file"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target[11:].strip("[]")] += 1
        else:
            kinds["other file"] += 1
    return {"t": time.time(), "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
            "cpu_s": (int(stat[11]) + int(stat[12])) / ticks, "fds": sum(kinds.values()), "kinds": dict(kinds),
            "tcp": dict(tcp)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- load --------------------------------------------------------------------------------------


@dataclass
class Feed:
    """What the supervisor socket saw."""

    alerts: dict[str, list[tuple[float, dict]]] = field(default_factory=lambda: defaultdict(list))  # call id →
    started: int = 0
    ended: int = 0
    connects: int = 0
    drops: list[str] = field(default_factory=list)


async def supervise(url: str, feed: Feed, ready: asyncio.Event) -> None:
    """The supervisor feed for the whole run; reconnects (and notes it) if it is ever dropped."""
    while True:
        try:
            async with websockets.connect(url, max_size=2**22) as ws:
                hello = json.loads(await ws.recv())
                if hello.get("type") != "hello":
                    raise RuntimeError(f"supervisor feed: {hello}")
                feed.connects += 1
                ready.set()
                async for raw in ws:
                    now = time.time()
                    event = json.loads(raw)
                    kind = event.get("type")
                    if kind == "call.started":
                        feed.started += 1
                    elif kind == "call.ended":
                        feed.ended += 1
                    elif kind == "alert":
                        feed.alerts[event["call_id"]].append((now, event))
                feed.drops.append(f"closed {ws.close_code} {ws.close_reason}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - noted and retried; the run reports it
            feed.drops.append(f"{type(exc).__name__}: {exc}"[:200])
        await asyncio.sleep(1.0)


class Soak:
    def __init__(self, args: argparse.Namespace, server: Server, data_dir: Path, token: str) -> None:
        self.args, self.server, self.data_dir = args, server, data_dir
        self.pid = server.process.pid
        self.headers = {"Authorization": f"Bearer {token}"}
        self.supervisor_url = f"{server.ws}/v1/supervisor/ws?token={token}"
        self.corpus = load_corpus()
        self.ulaw = {f.name: {t: (CALLS_DIR / f"{f.name}.{t}.ulaw").read_bytes() for t in TRACKS}
                     for f in self.corpus}
        self.order = list(self.corpus)
        random.Random(f"{args.seed}:order").shuffle(self.order)
        self.carriers = list(args.carriers)
        self.weights = [CARRIERS.get(c, 1.0) for c in self.carriers]
        self.rngs = [random.Random(f"{args.seed}:line:{i}") for i in range(args.lines)]
        self.calls: list[Planned] = []
        self.samples: list[dict] = []
        self.feed = Feed()

    def http(self) -> httpx.AsyncClient:
        # No keep-alive: a connection held by this client must not count as the server's.
        return httpx.AsyncClient(base_url=self.server.http, headers=self.headers, timeout=60,
                                 limits=httpx.Limits(max_keepalive_connections=0))

    def next_call(self, line: int, k: int, phase: str) -> Planned:
        rng = self.rngs[line]
        fixture = self.order[(line + k * self.args.lines) % len(self.order)]
        carrier = (self.carriers[line % len(self.carriers)] if phase == "warmup"  # every carrier warms up
                   else rng.choices(self.carriers, self.weights)[0])
        return plan_call(f"{line}-{k}", line, phase, fixture, carrier, rng, self.args.drop_share,
                         self.args.malformed_share, self.ulaw)

    async def play(self, planned: Planned) -> None:
        self.calls.append(planned)
        url = f"{self.server.ws}{'/v1/media/' + planned.carrier}"
        try:
            planned.result = await asyncio.wait_for(
                stream_call(url, planned.call, drop_after=planned.drop_after, protocol=planned.carrier),
                planned.frames * FRAME_S + 120)
        except Exception as exc:  # noqa: BLE001 - a failed call is a finding, not a crash of the soak
            planned.error = f"{type(exc).__name__}: {exc}"[:300]

    async def line(self, line: int, first_k: int, delay: float, until: float) -> int:
        await asyncio.sleep(delay)
        k = first_k
        while time.monotonic() < until:
            await self.play(self.next_call(line, k, "soak"))
            k += 1
        return k

    async def sample(self, stop: asyncio.Event, phase: list[str]) -> None:
        async with self.http() as client:
            n = 0
            while not stop.is_set():
                try:
                    row = snapshot(self.pid, self.data_dir)
                except OSError:  # the server is gone: the checks will say so
                    return
                row["phase"] = phase[0]
                if n % 5 == 0 and not phase[0].startswith("settle"):  # settling: no requests at all
                    try:
                        health = (await client.get("/healthz")).json()
                        row["active"], row["queue"] = health["active_calls"], health.get("asr_queue_depth")
                    except httpx.HTTPError:
                        row["active"] = None
                self.samples.append(row)
                n += 1
                try:
                    await asyncio.wait_for(stop.wait(), self.args.sample_every)
                except TimeoutError:
                    pass

    async def wait_idle(self) -> float:
        """Until no call is active, the ASR queue is empty and every call started has ended
        (at most `--drain-timeout` s: a call stuck active is then reported by the checks)."""
        t0, timeout = time.monotonic(), self.args.drain_timeout
        async with self.http() as client:
            while time.monotonic() - t0 < timeout:
                try:
                    health = (await client.get("/healthz")).json()
                    if (health["active_calls"] == 0 and not health.get("asr_queue_depth")
                            and self.feed.ended >= self.feed.started):
                        break
                except httpx.HTTPError:
                    if self.server.process.poll() is not None:
                        break
                await asyncio.sleep(0.5)
        return time.monotonic() - t0

    async def idle_figures(self) -> dict:
        """After `--settle` seconds of nothing at all (no HTTP either): five snapshots 1 s apart;
        the median RSS, the fewest file descriptors (a socket mid-close is not a leak)."""
        await asyncio.sleep(self.args.settle)
        shots = []
        for _ in range(5):
            shots.append(snapshot(self.pid, self.data_dir))
            await asyncio.sleep(1.0)
        least = min(shots, key=lambda s: s["fds"])
        return {**least, "rss_mb": statistics.median(s["rss_mb"] for s in shots)}

    async def run(self) -> dict:
        args = self.args
        ready, stop = asyncio.Event(), asyncio.Event()
        watcher = asyncio.create_task(supervise(self.supervisor_url, self.feed, ready))
        await asyncio.wait_for(ready.wait(), 30)
        phase = ["warmup"]
        sampler = asyncio.create_task(self.sample(stop, phase))
        me0 = os.times()
        t0 = time.time()
        stagger = min(1.0, 20.0 / args.lines)
        print(f"warm-up: {args.lines} calls, one per line ...", flush=True)

        async def first(line: int) -> None:
            await asyncio.sleep(line * stagger)
            await self.play(self.next_call(line, 0, "warmup"))

        await asyncio.gather(*(first(i) for i in range(args.lines)))
        await self.wait_idle()
        phase[0] = "settle-baseline"
        baseline = await self.idle_figures()
        print(f"baseline: RSS {baseline['rss_mb']:.0f} MB, {baseline['fds']} fds {baseline['kinds']}, "
              f"TCP {baseline['tcp']}", flush=True)
        phase[0] = "soak"
        soak_t0 = time.time()
        until = time.monotonic() + args.minutes * 60
        print(f"soak: {args.lines} lines for {args.minutes:g} min ...", flush=True)
        await asyncio.gather(*(self.line(i, 1, i * stagger, until) for i in range(args.lines)))
        soak_t1 = time.time()
        phase[0] = "drain"
        drain_s = await self.wait_idle()
        phase[0] = "settle"
        final = await self.idle_figures()
        stop.set()
        await sampler
        me1 = os.times()
        print(f"final: RSS {final['rss_mb']:.0f} MB, {final['fds']} fds {final['kinds']}, TCP {final['tcp']}",
              flush=True)
        print(f"reading back {len(self.calls)} calls ...", flush=True)
        stored = await self.read_back()
        watcher.cancel()
        return {"baseline": baseline, "final": final, "drain_s": drain_s, "t0": t0, "soak_t0": soak_t0,
                "soak_t1": soak_t1, "loadgen_cpu": (me1.user + me1.system) - (me0.user + me0.system),
                **stored}

    async def read_back(self) -> dict:
        """Every stored call (REST list), the detail of each, each one's recording per track
        compared with what was sent (at once: a 30-minute soak has ~700 of them), /metrics."""
        planned = {p.tag: p for p in self.calls}
        expected = Expected()
        async with self.http() as client:
            listed: list[dict] = []
            while True:
                page = (await client.get("/v1/calls", params={"limit": 500, "offset": len(listed)})).json()
                listed += page
                if len(page) < 500:
                    break
            details, recordings = {}, {}
            sem = asyncio.Semaphore(4)

            async def fetch(call: dict) -> None:
                async with sem:
                    details[call["id"]] = (await client.get(f"/v1/calls/{call['id']}")).json()
                    p = planned.get(call["metadata"].get("soak_call"))
                    if p is None:
                        return
                    for track in TRACKS:  # Telnyx's agent track is opened by its first frame, unlisted
                        r = await client.get(f"/v1/calls/{call['id']}/recording.wav", params={"track": track})
                        got = wav_samples(r.content) if r.status_code == 200 else None
                        recordings[call["id"], track] = compare(got, expected.sent(p, track))

            await asyncio.gather(*(fetch(c) for c in listed))
            metrics = (await client.get("/metrics")).text
        return {"listed": listed, "details": details, "recordings": recordings, "metrics": metrics}


def wav_samples(body: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(body)) as wav:
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


# --- checks ------------------------------------------------------------------------------------


class Expected:
    """The audio each track should hold: what the simulator sent, decoded as the server stores it."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], dict[str, tuple[int, np.ndarray]]] = {}

    def full(self, planned: Planned) -> dict[str, tuple[int, np.ndarray]]:
        key = (planned.fixture.name, "stream" if planned.carrier == "stream" else "ulaw")
        if key not in self._cache:
            call = planned.call
            if planned.carrier == "stream":
                audio, channels = jambonz.l16_audio(call)
                per_frame = int(jambonz.RATE * FRAME_S) * channels * 2
                frames = call.duration_frames
                pcm = np.frombuffer(audio[: frames * per_frame].ljust(frames * per_frame, b"\x00"), dtype="<i2")
                self._cache[key] = {"caller": (jambonz.RATE, pcm[0::2]), "agent": (jambonz.RATE, pcm[1::2])}
            else:
                ulaw = {t: b"".join(call.frame(t, i) for i in range(call.duration_frames)) for t in TRACKS}
                self._cache[key] = {t: (8000, np.frombuffer(ulaw_to_pcm16(ulaw[t]), dtype="<i2")) for t in TRACKS}
        return self._cache[key]

    def sent(self, planned: Planned, track: str) -> tuple[int, np.ndarray]:
        rate, pcm = self.full(planned)[track]
        return rate, pcm[: planned.frames * int(rate * FRAME_S)]


def compare(recorded: tuple[int, np.ndarray] | None, expected: tuple[int, np.ndarray]) -> str | None:
    """None when `recorded` is exactly `expected`, else what differs."""
    if recorded is None:
        return "no recording"
    (rate, got), (want_rate, want) = recorded, expected
    if rate != want_rate:
        return f"rate {rate} ≠ {want_rate}"
    if len(got) == len(want) and np.array_equal(got, want):
        return None
    n = min(len(got), len(want))
    first = int(np.argmax(got[:n] != want[:n])) if not np.array_equal(got[:n], want[:n]) else None
    return (f"{len(got)} samples vs {len(want)} sent ({(len(got) - len(want)) / rate:+.3f} s)"
            + (f", first difference at sample {first}" if first is not None else ", the sent audio's prefix"))


def metric_total(text: str, name: str) -> dict[str, float]:
    """label set → value of a counter in a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


@dataclass
class Check:
    name: str
    what: str
    failures: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        self.failures.append(message)


def overlaps(a: dict, u: dict) -> bool:
    return a["start"] < u["end"] and u["start"] < a["end"]


def evaluate(args: argparse.Namespace, soak: Soak, run: dict, server_alive: bool, log_text: str) -> dict:
    calls, feed = soak.calls, soak.feed
    by_tag = defaultdict(list)
    for c in run["listed"]:
        by_tag[c["metadata"].get("soak_call")].append(c)
    checks = {name: Check(name, what) for name, what in [
        ("played", "every call dialled was played by its carrier client without an error"),
        ("stored", "every call stored once (no strangers), none left active"),
        ("completed", "completed calls stored `ended` (reason completed), carrier socket closed 1000"),
        ("dropped", "dropped calls stored `interrupted` (reason disconnected)"),
        ("recordings", "recording per track = the audio sent, sample for sample (dropped: up to the drop)"),
        ("segments", "completed calls have caller transcript segments"),
        ("alerts", "completed abusive-fixture calls have an alert of each abusive category"),
        ("bad_messages", "stats.bad_messages = malformed messages injected, per call and in /metrics"),
        ("memory", f"idle RSS after the soak ≤ baseline + {args.rss_tolerance_mb:g} MB"),
        ("descriptors", f"idle: no recording open, TCP connections ≤ baseline, fds ≤ baseline + {args.fd_tolerance}"),
        ("feed", "the supervisor feed stayed connected"),
        ("server", "the server is still running and logged no traceback"),
    ]}
    latencies, unalerted, false_alerts = [], 0, []
    for p in calls:
        if p.error:
            checks["played"].fail(f"{p.tag} ({p.carrier}, {p.fixture.name}): {p.error}")
        elif p.result is not None and p.result.completed == p.dropped:
            checks["played"].fail(f"{p.tag}: played as {'completed' if p.result.completed else 'dropped'}")
        rows = by_tag.get(p.tag, [])
        if len(rows) != 1:
            checks["stored"].fail(f"{p.tag} ({p.carrier}, {p.fixture.name}): stored {len(rows)} times")
            continue
        stored = run["details"].get(rows[0]["id"]) or rows[0]
        call_id = stored["id"]
        label = f"{p.tag} ({p.carrier}, {p.fixture.name}{', dropped' if p.dropped else ''}, {call_id})"
        if p.error:
            continue
        if stored["status"] == "active":
            checks["stored"].fail(f"{label}: still active")
        if p.dropped:
            if (stored["status"], stored["end_reason"]) != ("interrupted", "disconnected"):
                checks["dropped"].fail(f"{label}: {stored['status']} / {stored['end_reason']}")
        else:
            if (stored["status"], stored["end_reason"]) != ("ended", "completed"):
                checks["completed"].fail(f"{label}: {stored['status']} / {stored['end_reason']}")
            if p.result is not None and p.result.close_code not in (None, 1000):
                checks["completed"].fail(f"{label}: closed {p.result.close_code}")
        for track in TRACKS:
            problem = run["recordings"].get((call_id, track), "not fetched")
            if problem:
                checks["recordings"].fail(f"{label} {track}: {problem}")
        counted = len(p.injected(counted=True))
        got = (stored.get("stats") or {}).get("bad_messages")
        if got != counted:
            kinds = Counter(j.kind for j in p.injected())
            checks["bad_messages"].fail(f"{label}: stored {got}, injected {counted} counted ({dict(kinds)})")
        if p.dropped:
            continue
        segments = stored.get("segments", [])
        if not any(s["track"] == "caller" for s in segments):
            checks["segments"].fail(f"{label}: no caller segment ({len(segments)} in all)")
        abusive = [u for u in p.fixture.truth["utterances"] if u["track"] == "caller" and u["abusive"]]
        alerts = stored.get("alerts", [])
        if not abusive:
            false_alerts += [f"{p.fixture.name} {a['category']} ({a['rule']}) {a['text'][:60]!r}" for a in alerts]
            continue
        missing = {c for u in abusive for c in u["categories"]} - {a["category"] for a in alerts}
        if missing:
            checks["alerts"].fail(f"{label}: no {'/'.join(sorted(missing))} alert; "
                                  f"got {[(a['category'], a['text']) for a in alerts]}")
        heard = feed.alerts.get(call_id, [])
        for u in abusive:
            times = [t for t, a in heard if overlaps(a, u)]
            if times:
                latencies.append(min(times) - (p.result.started_at + u["end"]))
            else:
                unalerted += 1
    ours = {p.tag for p in calls}
    strangers = [c["id"] for c in run["listed"] if c["metadata"].get("soak_call") not in ours]
    if strangers:
        checks["stored"].fail(f"{len(strangers)} stored calls nobody dialled: {strangers[:5]}")
    counted_total = sum(len(p.injected(counted=True)) for p in calls if not p.error)
    metric = sum(metric_total(run["metrics"], "stream_server_media_malformed_messages_total").values())
    if metric != counted_total:
        checks["bad_messages"].fail(f"/metrics counts {metric:.0f} malformed messages, {counted_total} injected")
    checks["bad_messages"].detail = f"{counted_total} counted + {sum(len(p.injected(False)) for p in calls)} harmless"

    base, final = run["baseline"], run["final"]
    growth = final["rss_mb"] - base["rss_mb"]
    if growth > args.rss_tolerance_mb:
        checks["memory"].fail(f"idle RSS {base['rss_mb']:.0f} → {final['rss_mb']:.0f} MB (+{growth:.0f} MB)")
    checks["memory"].detail = f"{base['rss_mb']:.0f} → {final['rss_mb']:.0f} MB ({growth:+.0f} MB)"
    if final["kinds"].get("recording"):
        checks["descriptors"].fail(f"{final['kinds']['recording']} recording files still open")
    conns = lambda s: sum(n for state, n in s["tcp"].items() if state != "LISTEN")  # noqa: E731
    if conns(final) > conns(base):
        checks["descriptors"].fail(f"TCP connections {base['tcp']} → {final['tcp']}")
    if final["fds"] > base["fds"] + args.fd_tolerance:
        checks["descriptors"].fail(f"fds {base['fds']} {base['kinds']} → {final['fds']} {final['kinds']}")
    checks["descriptors"].detail = (f"fds {base['fds']} → {final['fds']}, TCP connections {conns(base)} → "
                                    f"{conns(final)}, recordings open {final['kinds'].get('recording', 0)}")
    if feed.connects != 1 or feed.drops:
        checks["feed"].fail(f"connected {feed.connects} times; {feed.drops[:3]}")
    if not server_alive:
        checks["server"].fail("the server process exited during the soak")
    failures = [line for line in log_text.splitlines() if any(f in line for f in LOG_FAILURES)]
    if failures:
        checks["server"].fail(f"{len(failures)} traceback lines in the server log, first: {failures[0][:200]}")

    soak_rows = [s for s in run["samples"] if s["phase"] == "soak"]
    rss = [s["rss_mb"] for s in soak_rows] or [float("nan")]
    hours = [(s["t"] - soak_rows[0]["t"]) / 3600 for s in soak_rows]
    slope = float(np.polyfit(hours, rss, 1)[0]) if len(soak_rows) > 2 else float("nan")
    half = len(soak_rows) // 2  # a leak keeps climbing; the allocator's high-water mark levels off
    late_slope = float(np.polyfit(hours[half:], rss[half:], 1)[0]) if len(soak_rows) - half > 2 else float("nan")
    timeline = []  # (minute into the soak, median RSS over that stretch), about 10 stretches
    if soak_rows:
        step = max(hours[-1] * 60 / 10, 0.25)
        for i in range(int(hours[-1] * 60 / step) + 1):
            stretch = [r for h, r in zip(hours, rss) if i * step <= h * 60 < (i + 1) * step]
            if stretch:
                timeline.append((round((i + 1) * step, 1), statistics.median(stretch)))
    played = [p for p in calls if not p.error]
    audio_min = sum(p.frames * FRAME_S for p in played) / 60
    soak_audio_min = sum(p.frames * FRAME_S for p in played if p.phase == "soak") / 60
    cpu = run["final"]["cpu_s"] - run["baseline"]["cpu_s"]
    log_lines = log_text.splitlines()
    return {
        "checks": checks,
        "figures": {
            "calls": len(calls), "warmup": sum(p.phase == "warmup" for p in calls),
            "completed": sum(p.completed for p in calls), "dropped": sum(p.dropped for p in calls),
            "hostile": sum(bool(p.injected()) for p in calls),
            "abusive_completed": sum(p.completed and any(u["abusive"] for u in p.fixture.truth["utterances"]
                                                          if u["track"] == "caller") for p in calls),
            "by_carrier": dict(Counter(p.carrier for p in calls)),
            "junk_kinds": dict(Counter(j.kind for p in calls for j in p.injected())),
            "audio_min": audio_min, "soak_s": run["soak_t1"] - run["soak_t0"], "drain_s": run["drain_s"],
            "alert_p50": percentile(latencies, 50), "alert_p95": percentile(latencies, 95),
            "alert_max": max(latencies, default=float("nan")), "alerted_lines": len(latencies),
            "unalerted_lines": unalerted, "false_alerts": false_alerts,
            "rss_min": min(rss), "rss_max": max(rss), "rss_slope_mb_h": slope, "rss_late_slope_mb_h": late_slope,
            "rss_timeline": timeline,
            "rss_per_soak_call_kb": growth * 1024 / max(1, sum(p.phase == "soak" for p in calls)),
            "fds_max": max((s["fds"] for s in soak_rows), default=0),
            "threads": (run["baseline"]["threads"], run["final"]["threads"]),
            "server_cpu_per_call_min": cpu / soak_audio_min if soak_audio_min else float("nan"),
            "loadgen_cpu_s": run["loadgen_cpu"],
            "exit_code": run["exit_code"],
            "log_warnings": sum(" WARNING " in line for line in log_lines),
            "log_errors": sum(" ERROR " in line for line in log_lines),
            "log_malformed": sum("dropped malformed message" in line for line in log_lines),
        },
    }


# --- report ------------------------------------------------------------------------------------


def report(args: argparse.Namespace, run: dict, result: dict) -> str:
    f, checks = result["figures"], result["checks"]
    base, final = run["baseline"], run["final"]
    passed = all(c.passed for c in checks.values())
    mem = Path("/proc/meminfo").read_text().split()[1]
    lines = [
        "## Soak: concurrent calls with drops and malformed frames, then leaks (issue 8)",
        "",
        f"- Command: `{args.command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        (f"- Machine: {os.cpu_count()} cores, {cpu_model()}, {int(mem) / 2**20:.0f} GiB; Python "
         f"{platform.python_version()}; load generator on the same machine, loopback only"),
        (f"- Load: {args.lines} lines for {args.minutes:g} min after a warm-up round (one call per line), seed "
         f"{args.seed}; carriers {', '.join(args.carriers)}; {args.drop_share:.0%} of calls dropped mid-call, "
         f"{args.malformed_share:.0%} with 2–8 malformed/odd messages injected; ASR model {args.model}, "
         "SQLite, in-process bus"),
        "",
        "**" + ("All checks passed" if passed else "FAILED: " + ", ".join(c.name for c in checks.values()
                                                                          if not c.passed)) + ".**",
        "",
        "| check | verdict | detail |",
        "|---|---|---|",
    ]
    for c in checks.values():
        detail = c.detail if c.passed else "; ".join(c.failures[:3]) + (f" (+{len(c.failures) - 3} more)"
                                                                         if len(c.failures) > 3 else "")
        lines.append(f"| {c.what} | {'pass' if c.passed else 'FAIL'} | {detail.replace('|', '/')} |")
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        (f"| calls dialled (warm-up + soak) | {f['calls']} ({f['warmup']} + {f['calls'] - f['warmup']}): "
         f"{f['completed']} completed, {f['dropped']} dropped, {f['hostile']} with injected messages; "
         + ", ".join(f"{k} {v}" for k, v in sorted(f["by_carrier"].items())) + " |"),
        (f"| audio streamed | {f['audio_min']:.1f} call-minutes; soak phase {f['soak_s'] / 60:.1f} min, drain "
         f"{f['drain_s']:.1f} s |"),
        ("| messages injected | " + ", ".join(f"{k} {v}" for k, v in sorted(f["junk_kinds"].items()))
         + f" ({checks['bad_messages'].detail}) |"),
        (f"| alert latency, abusive caller lines of completed calls | p50 {fmt(f['alert_p50'])} s, p95 "
         f"{fmt(f['alert_p95'])} s, max {fmt(f['alert_max'])} s ({f['alerted_lines']} lines; "
         f"{f['unalerted_lines']} without an overlapping alert); {len(f['false_alerts'])} alerts on calls with no "
         "abusive line" + (": " + "; ".join(f["false_alerts"][:5]) if f["false_alerts"] else "") + " |"),
        (f"| server RSS | idle baseline {base['rss_mb']:.0f} MB → idle after {final['rss_mb']:.0f} MB; during the "
         f"soak min {f['rss_min']:.0f} / max {f['rss_max']:.0f} MB, linear fit {fmt(f['rss_slope_mb_h'], 1)} MB/h "
         f"(second half {fmt(f['rss_late_slope_mb_h'], 1)} MB/h); idle growth per soak call "
         f"{f['rss_per_soak_call_kb']:.0f} KB (the tolerance lets through at most "
         f"{args.rss_tolerance_mb * 1024 / max(1, f['calls'] - f['warmup']):.0f} KB per call of this run) |"),
        ("| server RSS through the soak (minute: median MB) | "
         + ", ".join(f"{m:g}: {v:.0f}" for m, v in f["rss_timeline"]) + " |"),
        (f"| server file descriptors | idle {base['fds']} → {final['fds']} (max {f['fds_max']} under load); "
         f"baseline {base['kinds']}, after {final['kinds']}; TCP {base['tcp']} → {final['tcp']} |"),
        f"| server threads | idle {f['threads'][0]} → {f['threads'][1]} |",
        (f"| CPU | server {fmt(f['server_cpu_per_call_min'])} s per call-minute (soak + drain + settle); load "
         f"generator {f['loadgen_cpu_s']:.0f} s in all |"),
        (f"| server log | {f['log_warnings']} warnings ({f['log_malformed']} 'dropped malformed message'), "
         f"{f['log_errors']} errors; exit status {f['exit_code']} on SIGTERM after the run"
         + (" (uvicorn re-raises the signal after its graceful shutdown)" if f["exit_code"] == -15 else "") + " |"),
        "",
    ]
    return "\n".join(lines)


def print_failures(checks: dict[str, Check]) -> None:
    for c in checks.values():
        for message in c.failures[:20]:
            print(f"  FAIL {c.name}: {message}")
        if len(c.failures) > 20:
            print(f"  FAIL {c.name}: ... {len(c.failures) - 20} more")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration after the warm-up round")
    parser.add_argument("--lines", type=int, default=6, help="concurrent lines (capacity.py: ~10 on 2 cores)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--carriers", nargs="+", default=list(CARRIERS), choices=list(CARRIERS))
    parser.add_argument("--drop-share", type=float, default=0.2, help="share of calls cut mid-call")
    parser.add_argument("--malformed-share", type=float, default=0.3, help="share of calls with junk injected")
    parser.add_argument("--settle", type=float, default=70.0,
                        help="idle seconds before memory is measured (longer than the server's 60 s memory trim)")
    parser.add_argument("--rss-tolerance-mb", type=float, default=64.0,
                        help="idle RSS growth allowed over the soak, allocator high-water marks included (2-min "
                             "runs: +7 to +31 MB); at 30 min × 6 lines (~330 calls) it flags ≥ ~200 KB per call")
    parser.add_argument("--fd-tolerance", type=int, default=4, help="fds above the baseline allowed when idle")
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="longest wait for the calls to end and the ASR queue to empty")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between server snapshots")
    parser.add_argument("--json", type=Path, help="also write the figures and verdicts here")
    parser.add_argument("--no-write", action="store_true", help="print only; don't touch RESULTS.md")
    args = parser.parse_args()
    args.command = "python benchmarks/soak.py " + " ".join(sys.argv[1:])
    args.model = os.environ.get("STREAM_SERVER_ASR_MODEL", "base")
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        data_dir = Path(tmp)
        server = Server("fast", free_port(), data_dir, env={
            "STREAM_SERVER_API_TOKEN": token,
            "STREAM_SERVER_HOST": "127.0.0.1",  # loopback only
            "STREAM_SERVER_AUDIOSOCKET_PORT": "0",  # not played here
        })
        soak = Soak(args, server, data_dir, token)
        try:
            run = asyncio.run(soak.run())
            run["samples"] = soak.samples
            alive = server.process.poll() is None
        except Exception as exc:  # noqa: BLE001 - e.g. the server died and stopped answering
            tail = server.log.read_text(errors="replace")[-4000:]
            print(f"SOAK ABORTED: {type(exc).__name__}: {exc}; server exit code {server.process.poll()}; "
                  f"{len(soak.calls)} calls dialled. Server log tail:\n{tail}")
            return 1
        finally:
            server.stop()
        run["exit_code"] = server.process.returncode
        log_text = server.log.read_text(errors="replace")
        result = evaluate(args, soak, run, alive, log_text)
    section = report(args, run, result)
    print(section)
    print_failures(result["checks"])
    passed = all(c.passed for c in result["checks"].values())
    if args.json:
        args.json.write_text(json.dumps({
            "passed": passed,
            "checks": {c.name: {"passed": c.passed, "failures": c.failures, "detail": c.detail}
                       for c in result["checks"].values()},
            "figures": result["figures"], "baseline": run["baseline"], "final": run["final"],
        }, indent=1, default=str))
    if not args.no_write:
        update_section("soak", section)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
