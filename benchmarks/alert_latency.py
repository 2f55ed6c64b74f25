"""Alert latency on the fixture calls: end of an abusive utterance → alert at a supervisor.

Starts a real server (unless --server is given), streams each abusive fixture call through
the real Twilio WebSocket at real-time pace, one call at a time, with a supervisor socket
listening, and measures for every abusive caller utterance:

    latency = alert arrival (wall clock) − (stream start + utterance end in stream time)

The server runs with STREAM_SERVER_ALERT_COOLDOWN_S=0 so each abusive utterance can
alert on its own (the default cooldown folds an outburst into one alert, which would hide
the latency of its later lines). Also reports transcript lag (utterance end → its
`transcript.final`) for caller utterances. Results are written to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/alert_latency.py --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.report import cpu_model, percentile, update_section
from stream_server.simulator import SimulatedCall, stream_call

CALLS_DIR = ROOT / "tests" / "fixtures" / "calls"


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, STREAM_SERVER_ALERT_COOLDOWN_S="0", STREAM_SERVER_LOG_LEVEL="warning")
    for key in ("STREAM_SERVER_API_TOKEN", "STREAM_SERVER_TWILIO_AUTH_TOKEN"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_server.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=(data_dir / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(360):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("server did not start: " + (data_dir / "server.log").read_text()[-2000:])


async def measure_call(base: str, name: str) -> dict:
    truth = json.loads((CALLS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    call = SimulatedCall(
        caller=(CALLS_DIR / f"{name}.caller.ulaw").read_bytes(),
        agent=(CALLS_DIR / f"{name}.agent.ulaw").read_bytes(),
        parameters={**truth["metadata"], "bench": name},
    )
    ws_base = base.replace("http://", "ws://")
    events: list[tuple[float, dict]] = []
    async with websockets.connect(f"{ws_base}/v1/supervisor/ws", max_size=2**22) as feed:
        await feed.recv()  # hello

        async def listen() -> None:
            call_id = None
            while True:
                event = json.loads(await feed.recv())
                now = time.time()
                if event["type"] == "call.started" and event["metadata"].get("bench") == name:
                    call_id = event["call_id"]
                if call_id and event.get("call_id") == call_id:
                    events.append((now, event))
                    if event["type"] == "call.ended":
                        return

        listener = asyncio.create_task(listen())
        result = await stream_call(f"{ws_base}/v1/media/twilio", call)
        await asyncio.wait_for(listener, 300)
    t0 = result.started_at
    alerts = [(t, e) for t, e in events if e["type"] == "alert" and e.get("rule") == "text"]
    finals = [(t, e) for t, e in events if e["type"] == "transcript.final" and e["track"] == "caller"]
    rows = []
    for u in (u for u in truth["utterances"] if u["track"] == "caller"):
        overlapping = [t for t, e in alerts if e["start"] < u["end"] and u["start"] < e["end"]]
        transcribed = [t for t, e in finals if e["start"] < u["end"] and u["start"] < e["end"]]
        rows.append(
            {
                "call": name,
                "text": u["text"],
                "abusive": u["abusive"],
                "alert_latency": (min(overlapping) - (t0 + u["end"])) if overlapping else None,
                "final_lag": (min(transcribed) - (t0 + u["end"])) if transcribed else None,
            }
        )
    false_alerts = [
        e for _, e in alerts
        if not any(u["abusive"] and e["start"] < u["end"] and u["start"] < e["end"] for u in truth["utterances"])
    ]
    return {"rows": rows, "false_alerts": [(name, e["start"], e["end"], e["category"], e["text"]) for e in false_alerts]}


def write_results(command: str, rows: list[dict], false_alerts: list[tuple], repeat: int, model: str) -> str:
    abusive = [r for r in rows if r["abusive"]]
    latencies = [r["alert_latency"] for r in abusive if r["alert_latency"] is not None]
    lags = [r["final_lag"] for r in rows if r["final_lag"] is not None]
    misses = sum(1 for r in abusive if r["alert_latency"] is None)
    lines = [
        "## Alert latency, one call at a time (issue: live pipeline)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}",
        f"- ASR model: {model} (int8, 2 threads); endpointing 600 ms (900 ms for phrases under 2 s); cooldown 0 for this run",
        f"- Calls: en_abusive, ja_abusive fixtures, {repeat} run(s) each, real-time pace over the Twilio WebSocket",
        "",
        "| measure | n | p50 | p95 | max |",
        "|---|---|---|---|---|",
        (f"| alert latency (s) after the abusive utterance ends | {len(latencies)} | "
         f"{percentile(latencies, 50):.2f} | {percentile(latencies, 95):.2f} | {max(latencies, default=float('nan')):.2f} |"),
        (f"| caller transcript.final lag (s) | {len(lags)} | {percentile(lags, 50):.2f} | "
         f"{percentile(lags, 95):.2f} | {max(lags, default=float('nan')):.2f} |"),
        "",
        (f"Abusive utterances: {len(abusive)}; missed (no alert overlapping them): {misses}; "
         f"false alerts (overlapping no abusive utterance): {len(false_alerts)}."),
        "Target for later issues: p95 alert latency under 1.5 s for one call on this 2-core machine.",
        "",
        "| call | utterance | alert latency (s) |",
        "|---|---|---|",
    ]
    for r in abusive:
        value = f"{r['alert_latency']:.2f}" if r["alert_latency"] is not None else "missed"
        lines.append(f"| {r['call']} | {r['text']} | {value} |")
    for call, start, end, category, text in false_alerts:
        lines.append(f"| {call} | false alert {category} at {start:.2f}-{end:.2f}s: {text} | — |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    rows, false_alerts = [], []
    for i in range(args.repeat):
        for name in args.calls:
            measured = await measure_call(args.server, name)
            rows += measured["rows"]
            false_alerts += measured["false_alerts"]
            done = [r for r in measured["rows"] if r["abusive"]]
            print(f"run {i + 1} {name}: " + ", ".join(
                f"{r['alert_latency']:.2f}s" if r["alert_latency"] is not None else "missed" for r in done), flush=True)
    section = write_results(args.command, rows, false_alerts, args.repeat, args.model)
    print(section)
    if not args.no_write:
        update_section("alert_latency", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="base URL of a running server (default: start one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", nargs="+", default=["en_abusive", "ja_abusive"])
    parser.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    args = parser.parse_args()
    args.command = "python benchmarks/alert_latency.py " + " ".join(sys.argv[1:])
    args.model = os.environ.get("STREAM_SERVER_ASR_MODEL", "base")
    process = None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.server:
            port = 8765
            process = start_server(Path(tmp), port)
            args.server = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(main_async(args))
        finally:
            if process:
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
