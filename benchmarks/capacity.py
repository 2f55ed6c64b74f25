"""Capacity: N concurrent calls at real-time pace, our pipeline vs the obvious one.

For each pipeline (``fast`` = this server, ``baseline`` = ``WhisperModel.transcribe()`` once
per VAD utterance, one at a time; STREAM_SERVER_ASR_PIPELINE) a real server is started and,
for each N, N telephone lines each play the synthetic fixture calls back to back for
``--duration`` seconds: two tracks, 20 ms μ-law frames paced by the clock over the Twilio
WebSocket, starts staggered.  A supervisor socket records every event.  Per run:

- alert latency: end of each abusive caller utterance (stream time) → first text alert of
  that call overlapping it at the supervisor; misses and false alerts;
- transcript lag: utterance end → its ``transcript.final``, caller and agent tracks;
  "lag growth" = median caller lag in the last third of the run minus the first third;
- cost: server CPU seconds per call-minute (until the ASR queue has drained), peak resident
  memory; the load generator's own CPU (it shares the machine);
- accuracy: word (en) / character (ja) error rate of the stored transcripts against the
  scripts, and of transcribing each whole recording offline with the same model.

A run passes when p95 alert latency ≤ 2.5 s and caller lag does not grow (≤ 0.5 s); the
capacity is the largest passing N.  Results go to benchmarks/RESULTS.md and a plot to
benchmarks/capacity.png.

    .venv/bin/python benchmarks/capacity.py --calls 1 8 10 12 --baseline-calls 1 2 3 4 --keep-going --profile 60
    .venv/bin/python benchmarks/capacity.py --duration 60 --calls 1 8 --baseline-calls 1 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import websockets

try:  # the bench extras; benchmarks/soak.py (and tests/test_soak.py) use Server without them
    import psutil
except ImportError:
    psutil = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.report import cpu_model, percentile, update_section
from stream_server.simulator import FRAME_BYTES, FRAME_S, SimulatedCall, start_message

CALLS_DIR = ROOT / "tests" / "fixtures" / "calls"
PLOT = ROOT / "benchmarks" / "capacity.png"
P95_LIMIT_S = 2.5
LAG_GROWTH_LIMIT_S = 0.5


# --- corpus ------------------------------------------------------------------------------------


@dataclass
class FixtureCall:
    name: str
    truth: dict
    frames: dict[str, list[str]]  # track → base64 payload per 20 ms frame

    @property
    def language(self) -> str:
        return self.truth["language"]


def load_corpus() -> list[FixtureCall]:
    corpus = []
    for path in sorted(CALLS_DIR.glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        frames = {}
        for carrier_track, track in (("inbound", "caller"), ("outbound", "agent")):
            audio = (CALLS_DIR / f"{truth['name']}.{track}.ulaw").read_bytes()
            frames[carrier_track] = [
                base64.b64encode(audio[i : i + FRAME_BYTES]).decode()
                for i in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES)
            ]
        corpus.append(FixtureCall(truth["name"], truth, frames))
    return corpus


# --- server ------------------------------------------------------------------------------------


class Server:
    """A real `stream-server serve` in its own process, on a fresh data directory.

    `env` adds settings (benchmarks/scale_out.py starts the scale-out roles this way, each with
    its own `log_name` in their shared data directory)."""

    def __init__(self, pipeline: str, port: int, data_dir: Path, env: dict[str, str] | None = None,
                 log_name: str = "server.log") -> None:
        base = dict(os.environ, STREAM_SERVER_ALERT_COOLDOWN_S="0", STREAM_SERVER_LOG_LEVEL="warning",
                    STREAM_SERVER_ASR_PIPELINE=pipeline, STREAM_SERVER_REPEAT_CALLS="0")
        for key in ("STREAM_SERVER_API_TOKEN", "STREAM_SERVER_TWILIO_AUTH_TOKEN", "STREAM_SERVER_DATABASE_URL"):
            base.pop(key, None)
        env = {**base, **(env or {})}
        self.log = data_dir / log_name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream_server.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        for _ in range(600):
            if self.process.poll() is not None:  # exited: no use waiting
                break
            try:
                if httpx.get(f"{self.http}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        if self.process.poll() is not None or not self._answers():
            self.stop()
            raise SystemExit(f"server did not start ({self.log}): " + self.log.read_text()[-2000:])
        self.ps = psutil.Process(self.process.pid) if psutil is not None else None

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.http}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # Where run_load sends each kind of traffic; one process serves them all. A scale-out
    # layout (benchmarks/scale_out.py) spreads them over its nodes.
    @property
    def media_ws(self) -> str:
        return self.ws

    @property
    def feed_ws(self) -> str:
        return self.ws

    @property
    def api_http(self) -> str:
        return self.http

    @property
    def health_urls(self) -> list[str]:
        return [self.http]

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- load --------------------------------------------------------------------------------------

MEDIA = ('{{"event":"media","sequenceNumber":"{seq}","streamSid":"{sid}","media":{{"track":"{track}",'
         '"chunk":"{chunk}","timestamp":"{ts}","payload":"{payload}"}}}}')


@dataclass
class StreamedCall:
    tag: str
    fixture: FixtureCall
    started_at: float = 0.0  # wall clock of the first media frame
    ended_at: float = 0.0


async def play(ws_url: str, fixture: FixtureCall, tag: str, record: StreamedCall, closers: set) -> None:
    """One call over the Twilio protocol; returns once `stop` is sent (the close is awaited
    in the background so the line can dial its next call at once)."""
    call = SimulatedCall(caller=b"", agent=b"", parameters={**fixture.truth["metadata"], "bench_call": tag})
    ws = await websockets.connect(f"{ws_url}/v1/media/twilio", max_size=2**20)
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(json.dumps(start_message(call)))
    frames = min(len(f) for f in fixture.frames.values())
    seq = 1
    record.started_at, clock = time.time(), time.monotonic()
    for i in range(frames):
        for track, payloads in fixture.frames.items():
            seq += 1
            await ws.send(MEDIA.format(seq=seq, sid=call.stream_sid, track=track, chunk=i + 1,
                                       ts=round(i * FRAME_S * 1000), payload=payloads[i]))
        delay = clock + (i + 1) * FRAME_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": call.stream_sid,
                              "stop": {"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}}))
    record.ended_at = time.time()
    task = asyncio.get_running_loop().create_task(ws.wait_closed())
    closers.add(task)
    task.add_done_callback(closers.discard)


async def line(ws_url: str, index: int, corpus: list[FixtureCall], delay: float, until: float,
               calls: list[StreamedCall], closers: set) -> None:
    await asyncio.sleep(delay)
    k = 0
    while time.monotonic() < until:
        fixture = corpus[(index + k) % len(corpus)]
        record = StreamedCall(f"{index}-{k}", fixture)
        calls.append(record)
        await play(ws_url, fixture, record.tag, record, closers)
        k += 1


@dataclass
class Observed:
    events: list[tuple[float, dict]] = field(default_factory=list)
    call_ids: dict[str, str] = field(default_factory=dict)  # bench tag → call id
    ended: int = 0


async def supervise(ws_url: str, seen: Observed, ready: asyncio.Event) -> None:
    async with websockets.connect(f"{ws_url}/v1/supervisor/ws", max_size=2**22) as feed:
        await feed.recv()  # hello
        ready.set()
        async for raw in feed:
            now = time.time()
            event = json.loads(raw)
            kind = event.get("type")
            if kind == "call.started" and "bench_call" in event.get("metadata", {}):
                seen.call_ids[event["metadata"]["bench_call"]] = event["call_id"]
            elif kind == "call.ended":
                seen.ended += 1
            if kind in ("transcript.final", "alert"):
                seen.events.append((now, event))


async def health_of(server: Server, client: httpx.AsyncClient) -> dict:
    """`/healthz` of the server, or of a scale-out layout summed over its nodes: calls and their
    unanswered speech (`active_calls`, `asr_queue_depth`, `asr_queued`) where calls run (roles
    all and ingest), model time (`asr_busy_seconds`) where the model runs (roles all and asr)."""
    nodes = [(await client.get(f"{url}/healthz")).json() for url in server.health_urls]
    if len(nodes) == 1:
        return nodes[0]
    calls = [h for h in nodes if h.get("role", "all") in ("all", "ingest")]
    model = [h for h in nodes if h.get("role", "all") in ("all", "asr")]

    def total(dicts: list[dict]) -> dict:
        out: dict = defaultdict(int)
        for d in dicts:
            for key, value in d.items():
                out[key] += value
        return dict(out)

    return {"active_calls": sum(h["active_calls"] for h in calls),
            "asr_queue_depth": sum(h["asr_queue_depth"] for h in calls),
            "asr_queued": total([h.get("asr_queued", {}) for h in calls]),
            "asr_busy_seconds": total([h["asr_busy_seconds"] for h in model]),
            "nodes": nodes}


async def sample(server: Server, client: httpx.AsyncClient, samples: list[dict], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            health = await health_of(server, client)
        except httpx.HTTPError:
            health = {}
        samples.append({"t": time.time(), "rss": server.rss_mb(), "queued": health.get("asr_queued", {}),
                        "active": health.get("active_calls")})
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def run_load(server: Server, corpus: list[FixtureCall], n: int, duration: float) -> dict:
    """N lines for `duration` seconds; waits until every call is transcribed. Media go to
    `server.media_ws`, the supervisor feed is `server.feed_ws`, calls are read back from
    `server.api_http`; health is `health_of(server)`."""
    seen, ready, stop = Observed(), asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(supervise(server.feed_ws, seen, ready))
    await asyncio.wait_for(ready.wait(), 30)
    samples: list[dict] = []
    me = psutil.Process()
    async with httpx.AsyncClient(timeout=10) as client:
        sampler = asyncio.create_task(sample(server, client, samples, stop))
        busy0 = (await health_of(server, client))["asr_busy_seconds"]
        cpu0, my_cpu0, t0 = server.cpu_seconds(), sum(me.cpu_times()[:2]), time.time()
        calls: list[StreamedCall] = []
        closers: set = set()
        until = time.monotonic() + duration
        stagger = min(1.0, 30.0 / n)  # lines dial in over the first ≤ 30 s
        await asyncio.gather(*(line(server.media_ws, i, corpus, i * stagger, until, calls, closers) for i in range(n)))
        streamed_at = time.time()
        my_cpu = sum(me.cpu_times()[:2]) - my_cpu0
        drained = False
        for _ in range(1200):  # deferred agent work drains after the calls; up to 10 min
            health = await health_of(server, client)
            if health["active_calls"] == 0 and health["asr_queue_depth"] == 0 and seen.ended >= len(calls):
                drained = True
                break
            await asyncio.sleep(0.5)
        drain_s = time.time() - streamed_at
        await asyncio.sleep(1.0)  # last events in flight
        cpu = server.cpu_seconds() - cpu0
        busy1 = (await health_of(server, client))["asr_busy_seconds"]
        busy = {k: busy1[k] - busy0.get(k, 0.0) for k in busy1}
        stop.set()
        await sampler
        details = {}
        for record in calls:
            call_id = seen.call_ids.get(record.tag)
            if call_id:
                details[record.tag] = (await client.get(f"{server.api_http}/v1/calls/{call_id}")).json()
    watcher.cancel()
    for task in list(closers):
        task.cancel()
    return {"n": n, "calls": calls, "seen": seen, "samples": samples, "server_cpu": cpu,
            "loadgen_cpu": my_cpu, "t0": t0, "duration": duration, "drain_s": drain_s, "drained": drained,
            "details": details, "asr_busy": busy}


# --- measures ----------------------------------------------------------------------------------


# Alerts about one utterance: its words, its words in a raised voice, or the voice alone (the
# shouting fixture's lines). Call-level rules (prolonged, repeat_caller) are about no one line.
UTTERANCE_RULES = ("text", "text+voice", "voice")


def overlaps(event: dict, u: dict) -> bool:
    return event["start"] < u["end"] and u["start"] < event["end"]


def measure(run: dict, offline: dict[tuple[str, str], str]) -> dict:
    from benchmarks.scoring import error_rate  # jiwer: the bench extras
    seen: Observed = run["seen"]
    by_call: dict[str, list[tuple[float, dict]]] = defaultdict(list)
    for t, event in seen.events:
        by_call[event["call_id"]].append((t, event))
    alert_latency, misses, false_alerts = [], 0, 0
    missed: list[tuple[str, str]] = []  # (line, what it was heard as): tells ASR from classifier misses
    lag: dict[str, list[tuple[float, float]]] = {"caller": [], "agent": []}  # (end offset in run, lag)
    refs, streamed, offline_hyps = defaultdict(list), defaultdict(list), defaultdict(list)
    minutes = 0.0
    for record in run["calls"]:
        call_id = seen.call_ids.get(record.tag)
        truth = record.fixture.truth
        minutes += truth["duration"] / 60
        events = by_call.get(call_id, [])
        alerts = [(t, e) for t, e in events if e["type"] == "alert" and e.get("rule") in UTTERANCE_RULES]
        finals = [(t, e) for t, e in events if e["type"] == "transcript.final"]
        for u in truth["utterances"]:
            end_wall = record.started_at + u["end"]
            done = [t for t, e in finals if e["track"] == u["track"] and overlaps(e, u)]
            if done:
                lag[u["track"]].append((end_wall - run["t0"], min(done) - end_wall))
            if u["track"] == "caller" and u["abusive"]:
                hits = [t for t, e in alerts if overlaps(e, u)]
                if hits:
                    alert_latency.append(min(hits) - end_wall)
                else:
                    misses += 1
                    heard = [e["text"] for _, e in finals if e["track"] == "caller" and overlaps(e, u)]
                    other = [e.get("rule") for _, e in events if e["type"] == "alert" and overlaps(e, u)]
                    missed.append((f"{record.fixture.name}: {u['text']!r}", f"{heard!r}, other alerts {other!r}"))
        false_alerts += sum(
            1 for _, e in alerts if not any(u["abusive"] and overlaps(e, u) for u in truth["utterances"])
        )
        segments = run["details"].get(record.tag, {}).get("segments", [])
        for track in ("caller", "agent"):
            key = (truth["language"], track)
            refs[key].append(" ".join(u["text"] for u in truth["utterances"] if u["track"] == track))
            streamed[key].append(" ".join(s["text"] for s in sorted(segments, key=lambda s: s["start"])
                                          if s["track"] == track))
            offline_hyps[key].append(offline[(record.fixture.name, track)])
    caller_lags = [v for _, v in lag["caller"]]
    agent_lags = [v for _, v in lag["agent"]]
    third = run["duration"] / 3
    early = [v for t, v in lag["caller"] if t < third]
    late = [v for t, v in lag["caller"] if 2 * third <= t < run["duration"]]
    growth = statistics.median(late) - statistics.median(early) if early and late else float("nan")
    p95 = percentile(alert_latency, 95)
    accuracy = {}  # (language, track or "both") → streamed / offline error rate
    for lang in sorted({lang for lang, _ in refs}):
        for track in ("caller", "agent", "both"):
            keys = [(lang, t) for t in ("caller", "agent") if track in (t, "both")]
            r = [x for k in keys for x in refs[k]]
            accuracy[lang, track] = {"streamed": error_rate(r, [x for k in keys for x in streamed[k]], lang),
                                     "offline": error_rate(r, [x for k in keys for x in offline_hyps[k]], lang)}
    agent_backlog = max((s["queued"].get("agent_final", 0) for s in run["samples"]), default=0)
    return {
        "n": run["n"],
        "calls": len(run["calls"]),
        "call_minutes": minutes,
        "alert_p50": percentile(alert_latency, 50),
        "alert_p95": p95,
        "alert_max": max(alert_latency, default=float("nan")),
        "abusive": len(alert_latency) + misses,
        "misses": misses,
        "missed": missed,
        "false_alerts": false_alerts,
        "caller_lag_p50": percentile(caller_lags, 50),
        "caller_lag_p95": percentile(caller_lags, 95),
        "lag_growth": growth,
        "agent_lag_p50": percentile(agent_lags, 50),
        "agent_lag_max": max(agent_lags, default=float("nan")),
        "agent_backlog": agent_backlog,
        "untranscribed": sum(1 for r in run["calls"] for u in r.fixture.truth["utterances"]) - len(caller_lags)
        - len(agent_lags),
        "drain_s": run["drain_s"],
        "cpu_per_call_min": run["server_cpu"] / minutes if minutes else float("nan"),
        "loadgen_cpu_per_call_min": run["loadgen_cpu"] / minutes if minutes else float("nan"),
        "peak_rss_mb": max((s["rss"] for s in run["samples"]), default=float("nan")),
        "accuracy": accuracy,
        "asr_busy": run["asr_busy"],
        "passed": bool(p95 <= P95_LIMIT_S and growth <= LAG_GROWTH_LIMIT_S),
    }


def offline_transcripts(corpus: list[FixtureCall], model: str) -> dict[tuple[str, str], str]:
    """Each whole track transcribed offline by faster-whisper with the same model (30 s windows,
    previous-text conditioning, beam 5, language given): the accuracy yardstick."""
    import audioop

    import soxr
    from faster_whisper import WhisperModel

    from stream_server.asr.models import default_cache_dir, resolve_model

    whisper = WhisperModel(resolve_model(model, default_cache_dir()), compute_type="int8", cpu_threads=2)
    out = {}
    for fixture in corpus:
        for track in ("caller", "agent"):
            ulaw = (CALLS_DIR / f"{fixture.name}.{track}.ulaw").read_bytes()
            pcm = np.frombuffer(audioop.ulaw2lin(ulaw, 2), dtype="<i2").astype(np.float32) / 32768
            audio = soxr.resample(pcm, 8000, 16000).astype(np.float32)
            segments, _ = whisper.transcribe(audio, language=fixture.language, beam_size=5)
            out[(fixture.name, track)] = " ".join(s.text.strip() for s in segments)
    return out


def start_profile(server: Server, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy samples the server's Python threads (the event loop and the ASR worker, whose
    time inside CTranslate2 shows as the engine line that called it)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("py-spy not installed (pip install -e '.[bench]'); no profile", flush=True)
        return None
    return subprocess.Popen([str(spy), "record", "--pid", str(server.process.pid), "--duration", str(int(seconds)),
                             "--rate", "50", "--nonblocking", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_frames(raw: Path, limit: int = 12) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) of the busiest functions in a py-spy raw profile."""
    own: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    total = 0
    for row in raw.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1] if " (" in f else f
                  for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    ranked = sorted(inclusive, key=lambda f: (own[f], inclusive[f]), reverse=True)[:limit]
    return [(f, 100 * own[f] / total, 100 * inclusive[f] / total) for f in ranked] if total else []


# --- report ------------------------------------------------------------------------------------


def capacity(rows: list[dict]) -> int:
    passing = [r["n"] for r in rows if r["passed"]]
    return max(passing, default=0)


def fmt(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def write_plot(results: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for pipeline, rows in results.items():
        ns = [r["n"] for r in rows]
        a.plot(ns, [r["alert_p95"] for r in rows], marker="o", label=f"{pipeline} p95")
        a.plot(ns, [r["alert_p50"] for r in rows], marker=".", linestyle=":", label=f"{pipeline} p50")
        b.plot(ns, [r["caller_lag_p95"] for r in rows], marker="o", label=f"{pipeline} p95")
    a.axhline(P95_LIMIT_S, color="grey", linestyle="--", linewidth=1)
    a.set(xlabel="concurrent calls", ylabel="seconds after the abusive utterance ends", title="Alert latency")
    b.set(xlabel="concurrent calls", ylabel="seconds after the utterance ends", title="Caller transcript lag")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"stream_server, {os.cpu_count()} cores ({cpu_model()})", fontsize=9)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)


def report(args: argparse.Namespace, corpus: list[FixtureCall], results: dict[str, list[dict]]) -> str:
    ours, base = capacity(results.get("fast", [])), capacity(results.get("baseline", []))
    lines = [
        "## Capacity: concurrent calls on one machine, ours vs baseline (issue: performance)",
        "",
        f"- Command: `{args.command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        (f"- Machine: {os.cpu_count()} cores, {cpu_model()}, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}; load generator on the same machine"),
        (f"- ASR model: {args.model} int8 on 2 threads (fast: 2 workers × 1 thread; baseline: 1 × 2); each run {args.duration:.0f} s of dialling, then "
        "until the ASR queue drains; cooldown 0 so every abusive line can alert"),
        (f"- Calls: the {len(corpus)} fixture calls ({', '.join(c.name for c in corpus)}; "
        f"{min(c.truth['duration'] for c in corpus):.0f}–{max(c.truth['duration'] for c in corpus):.0f} s each) played back "
        "to back on every line, each line starting at the next fixture, starts staggered"),
        ("- An abusive line (the fixture's truth, shouting included) counts as caught by any alert about it: "
        "its words (`text`), its words in a raised voice (`text+voice`) or the voice alone (`voice`); "
        "each missed line is listed under the tables with what the ASR heard"),
        ("- `fast` = this server; `baseline` = WhisperModel.transcribe() per utterance, one at a time "
        "(STREAM_SERVER_ASR_PIPELINE=baseline)"),
        f"- Pass = p95 alert latency ≤ {P95_LIMIT_S} s and caller lag growth ≤ {LAG_GROWTH_LIMIT_S} s",
        "",
        f"**Capacity: fast {ours} calls, baseline {base} calls"
        + (f" ({ours / base:.1f}×)**" if base else "**"),
        "",
        ("| pipeline | N | calls | alert p50 / p95 / max (s) | missed / false | caller lag p50 / p95 (s) | "
        "lag growth (s) | agent lag p50 / max (s) | agent backlog | CPU s per call-min | peak RSS (MB) | pass |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pipeline, rows in results.items():
        for r in rows:
            lines.append(
                f"| {pipeline} | {r['n']} | {r['calls']} | {fmt(r['alert_p50'])} / {fmt(r['alert_p95'])} / "
                f"{fmt(r['alert_max'])} | {r['misses']}/{r['abusive']} / {r['false_alerts']} | "
                f"{fmt(r['caller_lag_p50'])} / {fmt(r['caller_lag_p95'])} | {fmt(r['lag_growth'])} | "
                f"{fmt(r['agent_lag_p50'])} / {fmt(r['agent_lag_max'])} | {r['agent_backlog']} | "
                f"{fmt(r['cpu_per_call_min'])} | {fmt(r['peak_rss_mb'], 0)} | {'yes' if r['passed'] else 'no'} |"
            )
    fast = results.get("fast", [])
    if len(fast) >= 2:
        slope = np.polyfit([r["n"] for r in fast], [r["peak_rss_mb"] for r in fast], 1)[0]
        lines += ["", f"Memory per additional call (fast, slope of peak RSS over N): {slope:.1f} MB."]
    for pipeline, rows in results.items():
        misses: Counter[str] = Counter()
        first: dict[str, str] = {}
        for r in rows:
            for line, heard in r.get("missed", []):
                misses[line] += 1
                first.setdefault(line, heard)
        if misses:
            lines += ["", f"Missed lines, {pipeline}, all N together (how often; what the ASR heard the first time, "
                      "and the other alerts on that line):", ""]
            lines += [f"- {line} ×{n}: heard as {first[line]}" for line, n in misses.most_common()]
    lines += ["", ("Model time per kind of work (seconds of the single ASR worker during the run and the drain; "
              "the run's wall time is about its dialling time plus one call plus the drain):"), "",
              "| pipeline | N | caller finals | caller partials | agent finals | drain after the last call (s) |",
              "|---|---|---|---|---|---|"]
    for pipeline, rows in results.items():
        for r in rows:
            b = r["asr_busy"]
            lines.append(f"| {pipeline} | {r['n']} | {b.get('caller_final', 0):.0f} | {b.get('caller_partial', 0):.0f} "
                         f"| {b.get('agent_final', 0):.0f} | {r['drain_s']:.0f} |")
    lines += ["", "Ratios at the same N (baseline ÷ fast; > 1 means the fast path is better):", "",
              "| N | alert p95 | caller lag p95 | CPU per call-min |", "|---|---|---|---|"]
    by_n = {r["n"]: r for r in results.get("baseline", [])}
    for r in fast:
        b = by_n.get(r["n"])
        if b:
            lines.append(f"| {r['n']} | {fmt(b['alert_p95'] / r['alert_p95'], 1)}× | "
                         f"{fmt(b['caller_lag_p95'] / r['caller_lag_p95'], 1)}× | "
                         f"{fmt(b['cpu_per_call_min'] / r['cpu_per_call_min'], 1)}× |")
    lines += ["", ("Accuracy of the stored transcripts (all calls of the run; en WER, ja CER) vs the same "
                   "recordings transcribed offline whole. Alerts read the caller track; in the fast pipeline "
                   "agent-track finals are drafts (STREAM_SERVER_ASR_AGENT_DRAFT):"), "",
              "| pipeline | N | track | en streamed | en offline | ja streamed | ja offline | worst ratio |",
              "|---|---|---|---|---|---|---|---|"]
    nan = {"streamed": float("nan"), "offline": float("nan")}
    for pipeline, rows in results.items():
        for r in rows:
            for track in ("caller", "agent", "both"):
                en, ja = r["accuracy"].get(("en", track), nan), r["accuracy"].get(("ja", track), nan)
                ratio = max((a["streamed"] / a["offline"] for a in (en, ja) if a["offline"]), default=float("nan"))
                lines.append(f"| {pipeline} | {r['n']} | {track} | {fmt(en['streamed'], 3)} | "
                             f"{fmt(en['offline'], 3)} | {fmt(ja['streamed'], 3)} | {fmt(ja['offline'], 3)} | "
                             f"{fmt(ratio)}× |")
    for r in results.get("fast", []):
        if r.get("profile"):
            lines += ["", (f"Where the server's Python threads spent their time at N = {r['n']} (py-spy, "
                           f"{args.profile:.0f} s from the start of the run, idle excluded). The model runs in "
                           "CTranslate2's own threads, which py-spy counts as idle: its time is the model-time "
                           "table above; this is everything else (media, VAD, recording, database):"), "",
                      "| function | self % | inclusive % |", "|---|---|---|"]
            lines += [f"| `{name}` | {own:.1f} | {inc:.1f} |" for name, own, inc in r["profile"]]
    gen = [r["loadgen_cpu_per_call_min"] for rows in results.values() for r in rows]
    lines += ["", (f"The load generator itself used {fmt(statistics.mean(gen))} CPU s per call-minute on the same "
              "cores. Plot: [capacity.png](capacity.png)."), ""]
    return "\n".join(lines) + "\n"


async def run_pipeline(pipeline: str, ns: list[int], args: argparse.Namespace, corpus: list[FixtureCall],
                       offline: dict, port: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pipeline, port, Path(tmp))
        try:
            for n in ns:
                spy = None
                if args.profile and pipeline == "fast" and n == max(ns):
                    spy = start_profile(server, args.profile, Path(tmp) / "profile.txt")
                run = await run_load(server, corpus, n, args.duration)
                row = measure(run, offline)
                if spy is not None:
                    spy.wait()
                    profile = Path(tmp) / "profile.txt"
                    row["profile"] = top_frames(profile) if profile.exists() else []
                rows.append(row)
                print(f"{pipeline} N={n}: alert p95 {fmt(row['alert_p95'])} s, caller lag p95 "
                      f"{fmt(row['caller_lag_p95'])} s, growth {fmt(row['lag_growth'])} s, agent backlog "
                      f"{row['agent_backlog']}, CPU {fmt(row['cpu_per_call_min'])} s/call-min, "
                      f"RSS {fmt(row['peak_rss_mb'], 0)} MB, ASR busy {row['asr_busy']}, "
                      f"{'pass' if row['passed'] else 'FAIL'}", flush=True)
                for line, heard in row["missed"]:
                    print(f"  missed {line} heard as {heard}", flush=True)
                if not row["passed"] and not args.keep_going:
                    break
        finally:
            server.stop()
    return rows


async def main_async(args: argparse.Namespace) -> None:
    corpus = load_corpus()
    print("offline transcription of the corpus (accuracy yardstick)...", flush=True)
    offline = await asyncio.to_thread(offline_transcripts, corpus, args.model)
    results = {}
    if args.calls:
        results["fast"] = await run_pipeline("fast", args.calls, args, corpus, offline, 8771)
    if args.baseline_calls:
        results["baseline"] = await run_pipeline("baseline", args.baseline_calls, args, corpus, offline, 8772)
    section = report(args, corpus, results)
    print(section)
    if not args.no_write:
        update_section("capacity", section)
        write_plot(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="*", default=[1, 8, 10, 12, 16, 24],
                        help="concurrent calls for the fast pipeline, ascending")
    parser.add_argument("--baseline-calls", type=int, nargs="*", default=[1, 2, 3, 4])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of dialling per run")
    parser.add_argument("--keep-going", action="store_true", help="run every N even after one fails")
    parser.add_argument("--profile", type=float, default=0.0,
                        help="py-spy the server for this many seconds during the fast pipeline's largest N")
    parser.add_argument("--no-write", action="store_true", help="print only; don't touch RESULTS.md or the plot")
    args = parser.parse_args()
    args.command = "python benchmarks/capacity.py " + " ".join(sys.argv[1:])
    args.model = os.environ.get("STREAM_SERVER_ASR_MODEL", "base")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
