"""Scale-out: what the Redis roles cost against one process, at the same loads.

Three configurations on one machine, each measured at the same N concurrent calls with the
load, the corpus and the measures of benchmarks/capacity.py (N lines, each playing the fixture
calls back to back over the Twilio WebSocket at real-time pace; a supervisor socket records
every event):

- ``in-process``: one ``stream-server serve`` (role all, SQLite, in-process bus), as
  capacity.py runs it;
- ``redis-1asr``: 1 ingest + 1 gateway + 1 asr process (ASR_WORKERS=2, ASR_THREADS=2: the
  same model threads as in-process) on Redis and a fresh PostgreSQL database;
- ``redis-2asr``: 1 ingest + 1 gateway + 2 asr processes, each ASR_WORKERS=1, ASR_THREADS=1.

Media go to the ingest node, the supervisor feed and the REST API to the gateway; the run
waits until every ingest node has its answers. Per configuration and N: alert latency
p50/p95, caller transcript lag, CPU seconds per call-minute summed over every process of the
configuration (its nodes, plus redis-server and the PostgreSQL backends serving its database),
peak resident memory summed over its nodes, and for the Redis configurations the difference
from in-process at the same N. Capacity = the largest N whose p95 alert latency is ≤ 2.5 s.

    .venv/bin/python benchmarks/scale_out.py --calls 4 8
    .venv/bin/python benchmarks/scale_out.py --calls 1 --duration 35 --configs redis-2asr --no-write

Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as
`make test` does. Each configuration gets its own Redis key prefix, database and data directory,
all removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import traceback
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.capacity import (
    LAG_GROWTH_LIMIT_S,
    P95_LIMIT_S,
    FixtureCall,
    Server,
    fmt,
    load_corpus,
    measure,
    run_load,
)
from benchmarks.report import cpu_model, update_section

REDIS_URL = os.environ.get("SCALE_OUT_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_ADMIN = os.environ.get("SCALE_OUT_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
# The nodes' URL for a database on the same cluster (SQLAlchemy, psycopg 3 driver).
POSTGRES_URL = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/{name}"

# name → (label, the asr processes' (ASR_WORKERS, ASR_THREADS); none = one process, role all)
CONFIGS: dict[str, tuple[str, list[tuple[int, int]]]] = {
    "in-process": ("in-process", []),
    "redis-1asr": ("redis, 1 asr process", [(2, 2)]),
    "redis-2asr": ("redis, 2 asr processes", [(1, 1), (1, 1)]),
}
BASE = "in-process"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the processes of one configuration ----------------------------------------------------------


class Services:
    """CPU of the shared services a Redis configuration leans on: redis-server (the whole
    process: anything else using this Redis during the run counts too) and the PostgreSQL
    backends connected to this configuration's database."""

    def __init__(self, database: str) -> None:
        self.database = database
        client = redis.Redis.from_url(REDIS_URL)
        self.processes: dict[int, tuple[str, psutil.Process]] = {}
        self._add("redis", int(client.info("server")["process_id"]))
        client.close()
        self.last: dict[int, float] = {}  # pid → CPU seconds when last seen alive

    def _add(self, service: str, pid: int) -> None:
        if pid not in self.processes:
            with contextlib.suppress(psutil.Error):
                self.processes[pid] = (service, psutil.Process(pid))

    def cpu(self) -> dict[str, float]:
        """CPU seconds per service, cumulative: a process's time counts from 0 if it started
        after the previous call, and up to when it was last seen if it has ended since."""
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)):
                self._add("postgres", pid)
        totals = {"redis": 0.0, "postgres": 0.0}
        for pid, (service, process) in self.processes.items():
            with contextlib.suppress(psutil.Error):
                t = process.cpu_times()
                self.last[pid] = t.user + t.system
            totals[service] += self.last.get(pid, 0.0)
        return totals


class Layout:
    """One configuration's `stream-server serve` processes, seen by capacity.run_load as one
    server: media to `media`, the feed and the REST API on `front`, health summed over all."""

    def __init__(self, nodes: dict[str, Server], media: Server, front: Server, services: Services | None) -> None:
        self.nodes, self.media, self.front, self.services = nodes, media, front, services
        self.cpu_marks: list[dict[str, float]] = []  # one per cpu_seconds() call: part → seconds
        self.peak_rss: dict[str, float] = {}

    media_ws = property(lambda self: self.media.ws)
    feed_ws = property(lambda self: self.front.ws)
    api_http = property(lambda self: self.front.http)
    health_urls = property(lambda self: [node.http for node in self.nodes.values()])

    def cpu_seconds(self) -> float:
        """Every process of the configuration; run_load calls it at the start and the end."""
        mark = {name: node.cpu_seconds() for name, node in self.nodes.items()}
        if self.services is not None:
            mark.update(self.services.cpu())
        self.cpu_marks.append(mark)
        return sum(mark.values())

    def run_cpu(self) -> dict[str, float]:
        """CPU seconds per part between the last two cpu_seconds() calls (one run_load)."""
        start, end = self.cpu_marks[-2], self.cpu_marks[-1]
        return {part: end[part] - start.get(part, 0.0) for part in end}

    def rss_mb(self) -> float:
        total = 0.0
        for name, node in self.nodes.items():
            with contextlib.suppress(psutil.Error):
                rss = node.rss_mb()
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
                total += rss
        return total

    def reset(self) -> None:
        self.cpu_marks.clear()
        self.peak_rss.clear()

    async def snapshot(self) -> dict[str, dict]:
        async with httpx.AsyncClient(timeout=10) as client:
            return {name: (await client.get(f"{node.http}/healthz")).json() for name, node in self.nodes.items()}


def node_env(role: str, common: dict[str, str], workers: int = 2, threads: int = 2) -> dict[str, str]:
    return {**common, "STREAM_SERVER_ROLE": role, "STREAM_SERVER_ASR_WORKERS": str(workers),
            "STREAM_SERVER_ASR_THREADS": str(threads), "STREAM_SERVER_AUDIOSOCKET_PORT": "0"}


def start_layout(key: str, data_dir: Path, cleanup: contextlib.ExitStack) -> Layout:
    """Start the configuration's processes; `cleanup` stops them (and removes its database
    and Redis keys) in reverse order, also when a later one fails to start."""
    _, asr = CONFIGS[key]
    if not asr:
        server = Server("fast", free_port(), data_dir, node_env("all", {}))
        cleanup.callback(server.stop)
        return Layout({"all": server}, server, server, None)

    tag = uuid.uuid4().hex[:8]
    database, prefix = f"stream_server_scale_out_{tag}", f"bench-scale-out-{tag}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    cleanup.callback(drop_database, database)
    cleanup.callback(delete_keys, prefix)
    common = {"STREAM_SERVER_BUS": REDIS_URL, "STREAM_SERVER_BUS_PREFIX": prefix,
              "STREAM_SERVER_DATABASE_URL": POSTGRES_URL.format(name=database)}
    nodes: dict[str, Server] = {}
    # One at a time, the gateway first: it migrates the new database before anyone else uses it.
    plan = [("gateway", node_env("gateway", common))]
    plan += [(f"asr-{i + 1}", node_env("asr", common, w, t)) for i, (w, t) in enumerate(asr)]
    plan += [("ingest", {**node_env("ingest", common), "STREAM_SERVER_NODE_NAME": f"bench-ingest-{tag}"})]
    for name, env in plan:
        nodes[name] = Server("fast", free_port(), data_dir, env, log_name=f"{name}.log")
        cleanup.callback(nodes[name].stop)
    return Layout(nodes, nodes["ingest"], nodes["gateway"], Services(database))


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (.*)$")


def log_findings(data_dir: Path) -> dict[str, list[str]]:
    """Warnings, errors and tracebacks in each node's log, repeats folded (`× n`)."""
    found = {}
    for path in sorted(data_dir.glob("*.log")):
        counts: dict[str, int] = defaultdict(int)
        for text in path.read_text(errors="replace").splitlines():
            m = LOG_LINE.match(text)
            if m and "DEV MODE" not in text:
                counts[f"{m.group(1)} {m.group(2)[:200]}"] += 1
            elif not m and (text.startswith(("Traceback", "ERROR:", "WARNING:", "CRITICAL:"))
                            or re.match(r"^[\w.]+(Error|Exception)\b", text)):
                counts[text[:200]] += 1
        if counts:
            found[path.stem] = [f"{line} × {n}" if n > 1 else line for line, n in counts.items()]
    return found


# --- a configuration, N by N ---------------------------------------------------------------------


async def run_config(key: str, args: argparse.Namespace, corpus: list[FixtureCall], offline: dict) -> dict:
    label, _ = CONFIGS[key]
    rows: list[dict] = []
    error, gaps = None, []
    tmp = tempfile.TemporaryDirectory(prefix=f"scale_out-{key}-")
    data_dir = Path(tmp.name)
    try:
        with contextlib.ExitStack() as cleanup:  # stops every process, drops the database, deletes the keys
            print(f"{label}: starting...", flush=True)
            layout = start_layout(key, data_dir, cleanup)
            for n in args.calls:
                layout.reset()
                before = await layout.snapshot()
                gaps = gaps or health_gaps(before)
                run = await run_load(layout, corpus, n, args.duration)
                after = await layout.snapshot()
                row = measure(run, offline)
                row.update(per_node(layout, before, after, row["call_minutes"]))
                row["config"], row["meets_target"] = key, bool(row["alert_p95"] <= P95_LIMIT_S)
                row["drained"] = run["drained"]
                rows.append(row)
                print(progress(label, row), flush=True)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - report it; the other configurations still run
        error = f"{type(exc).__name__}: {exc}"[:1000]
        traceback.print_exc()
    finally:
        # Every process has stopped (also after a failure): the logs are complete.
        findings = log_findings(data_dir)
        if args.logs:
            keep = Path(args.logs) / key
            keep.mkdir(parents=True, exist_ok=True)
            for log in data_dir.glob("*.log"):
                shutil.copy(log, keep / log.name)
        if gaps:
            findings["healthz"] = gaps
        for name, lines in findings.items():
            for text in lines:
                print(f"  {label} / {name}: {text}", flush=True)
        tmp.cleanup()
    return {"key": key, "label": label, "rows": rows, "findings": findings, "error": error}


def health_gaps(snapshot: dict[str, dict]) -> list[str]:
    """Fields this benchmark reads per role that a node's /healthz does not show."""
    expected = {"all": ("asr_busy_seconds", "asr_queue_depth"), "ingest": ("asr_queue_depth", "asr_backlog"),
                "asr": ("asr_busy_seconds", "asr_worker"), "gateway": ()}
    return [f"{name} (role {h.get('role')}) lacks {field}" for name, h in snapshot.items()
            for field in expected.get(h.get("role", "all"), ()) if h.get(field) is None]


def per_node(layout: Layout, before: dict, after: dict, minutes: float) -> dict:
    cpu = layout.run_cpu()
    nodes = {}
    for name in layout.nodes:
        b, a = before[name], after[name]
        busy = sum((a.get("asr_busy_seconds") or {}).values()) - sum((b.get("asr_busy_seconds") or {}).values())
        done_a, done_b = (a.get("asr_worker") or {}).get("done"), (b.get("asr_worker") or {}).get("done")
        nodes[name] = {"cpu": cpu.get(name, float("nan")), "peak_rss": layout.peak_rss.get(name, float("nan")),
                       "busy": busy if a.get("role") in ("all", "asr") else float("nan"),
                       "done": done_a - done_b if done_a is not None and done_b is not None else None,
                       "health_keys": sorted(a)}
    services = {k: v for k, v in cpu.items() if k not in layout.nodes}
    node_cpu = sum(n["cpu"] for n in nodes.values())
    return {"nodes": nodes, "services_cpu": services,
            "node_cpu_per_call_min": node_cpu / minutes if minutes else float("nan"),
            "services_cpu_per_call_min": sum(services.values()) / minutes if minutes else float("nan")}


def progress(label: str, r: dict) -> str:
    nodes = ", ".join(f"{name} {fmt(v['cpu'], 1)} s CPU / {fmt(v['peak_rss'], 0)} MB"
                      + (f" / busy {fmt(v['busy'], 0)} s" if not math.isnan(v["busy"]) else "")
                      + (f" / {v['done']} jobs" if v["done"] is not None else "")
                      for name, v in r["nodes"].items())
    return (f"{label} N={r['n']}: {r['calls']} calls, alert p50 {fmt(r['alert_p50'])} / p95 {fmt(r['alert_p95'])} s "
            f"(missed {r['misses']}/{r['abusive']}, false {r['false_alerts']}), caller lag p95 "
            f"{fmt(r['caller_lag_p95'])} s, CPU {fmt(r['cpu_per_call_min'])} s/call-min (nodes "
            f"{fmt(r['node_cpu_per_call_min'])}, Redis+PG {fmt(r['services_cpu_per_call_min'])}), peak RSS "
            f"{fmt(r['peak_rss_mb'], 0)} MB, drain {r['drain_s']:.0f} s{'' if r['drained'] else ' (NOT drained)'}, "
            f"{'≤' if r['meets_target'] else '>'} {P95_LIMIT_S} s\n    per node: {nodes}")


# --- report ------------------------------------------------------------------------------------


def capacity(rows: list[dict]) -> str:
    """The largest N that met the target; "≥ N" when that is the largest N run (no upper bound seen)."""
    best = max((r["n"] for r in rows if r["meets_target"]), default=0)
    return f"≥ {best}" if rows and best == max(r["n"] for r in rows) else str(best)


def accuracy(row: dict, language: str) -> str:
    """Error rate of the stored transcripts (both tracks) against the scripts: that the queue
    path transcribes as well as the in-process one (capacity.py compares with offline)."""
    return fmt(row["accuracy"].get((language, "both"), {}).get("streamed", float("nan")), 3)


def signed(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:+.{digits}f}"


def report(args: argparse.Namespace, results: list[dict]) -> str:
    caps = ", ".join(f"{res['label']} **{capacity(res['rows'])}**" for res in results)
    lines = [
        "## Scale-out: Redis roles vs one process, same loads (issue: scale-out)",
        "",
        f"- Command: `{args.command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        (f"- Machine: {os.cpu_count()} cores, {cpu_model()}, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
         f"Python {platform.python_version()}; every process of every configuration, Redis, PostgreSQL and "
         "the load generator on the same cores"),
        (f"- ASR model: {args.model} int8, 2 model threads in all in every configuration; each run "
         f"{args.duration:.0f} s of dialling, then until every utterance is answered; cooldown 0"),
        ("- `in-process`: one `serve` (role all, SQLite, in-process bus; as benchmarks/capacity.py). "
         "`redis, 1 asr process`: ingest + gateway + 1 asr (ASR_WORKERS=2, ASR_THREADS=2). "
         "`redis, 2 asr processes`: ingest + gateway + 2 asr (each ASR_WORKERS=1, ASR_THREADS=1). "
         "The Redis configurations share a fresh PostgreSQL database and data directory; media go "
         "to the ingest node, the supervisor feed and REST API to the gateway"),
        (f"- Capacity = the largest N with p95 alert latency ≤ {P95_LIMIT_S} s (the scale-out target). "
         f"capacity.py's pass also needs caller lag growth ≤ {LAG_GROWTH_LIMIT_S} s: its column is shown"),
        "",
        f"Capacity: {caps}",
        "",
        *[f"**{res['label']} failed:** {res['error']}\n" for res in results if res["error"]],
        ("| configuration | N | calls | alert p50 / p95 (s) | missed / false | caller lag p50 / p95 (s) | "
         "lag growth (s) | agent backlog | drain (s) | CPU s per call-min: all (nodes + Redis/PG) | "
         f"peak RSS, nodes (MB) | streamed WER en / CER ja | p95 ≤ {P95_LIMIT_S} s | capacity.py pass |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"| {res['label']} | {r['n']} | {r['calls']} | {fmt(r['alert_p50'])} / {fmt(r['alert_p95'])} | "
                f"{r['misses']}/{r['abusive']} / {r['false_alerts']} | {fmt(r['caller_lag_p50'])} / "
                f"{fmt(r['caller_lag_p95'])} | {fmt(r['lag_growth'])} | {r['agent_backlog']} | "
                f"{r['drain_s']:.0f}{'' if r['drained'] else ' (not drained)'} | {fmt(r['cpu_per_call_min'])} "
                f"({fmt(r['node_cpu_per_call_min'])} + {fmt(r['services_cpu_per_call_min'])}) | "
                f"{fmt(r['peak_rss_mb'], 0)} | {accuracy(r, 'en')} / {accuracy(r, 'ja')} | "
                f"{'yes' if r['meets_target'] else 'no'} | "
                f"{'yes' if r['passed'] else 'no'} |")
    base = {r["n"]: r for res in results if res["key"] == BASE for r in res["rows"]}
    overhead = []
    for res in results:
        if res["key"] == BASE:
            continue
        for r in res["rows"]:
            b = base.get(r["n"])
            if b is None:
                continue
            d_cpu = r["cpu_per_call_min"] - b["cpu_per_call_min"]
            overhead.append(
                f"| {res['label']} | {r['n']} | {signed(r['alert_p95'] - b['alert_p95'])} | "
                f"{signed(r['caller_lag_p95'] - b['caller_lag_p95'])} | {signed(d_cpu)} "
                f"({signed(100 * d_cpu / b['cpu_per_call_min'], 0)} %) | "
                f"{signed(r['node_cpu_per_call_min'] - b['node_cpu_per_call_min'])} | "
                f"{signed(r['peak_rss_mb'] - b['peak_rss_mb'], 0)} |")
    if overhead:
        lines += ["", ("Overhead against in-process at the same N (Redis configuration minus in-process; "
                       "+ = worse):"), "",
                  ("| configuration | N | Δ alert p95 (s) | Δ caller lag p95 (s) | Δ CPU s per call-min, all "
                   "processes | Δ of it in the nodes alone | Δ peak RSS (MB) |"),
                  "|---|---|---|---|---|---|---|", *overhead]
    lines += ["", ("Per process (CPU seconds during the run and the drain, peak RSS, model time, jobs taken "
                   "from the queue):"), "",
              "| configuration | N | process | CPU s | peak RSS (MB) | model busy (s) | jobs done |",
              "|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:
            for name, v in r["nodes"].items():
                lines.append(f"| {res['label']} | {r['n']} | {name} | {fmt(v['cpu'], 1)} | {fmt(v['peak_rss'], 0)} | "
                             f"{fmt(v['busy'], 0)} | {'—' if v['done'] is None else v['done']} |")
            for service, cpu in r["services_cpu"].items():
                lines.append(f"| {res['label']} | {r['n']} | {service} | {fmt(cpu, 1)} | — | — | — |")
    gen = [r["loadgen_cpu_per_call_min"] for res in results for r in res["rows"]]
    lines += [
        "",
        "How to read:",
        "",
        ("- Same load, same model threads: the difference between rows at one N is what splitting the "
         "server over processes costs (or gains). The Redis configurations also move the database "
         "from in-process SQLite to PostgreSQL, whose backends' CPU is in the \"Redis/PG\" share; "
         "redis-server's CPU is the whole server's, so run nothing else on that Redis meanwhile."),
        ("- Alert latency runs from the end of the abusive utterance (stream time) to the alert at the "
         "supervisor socket, here on the gateway: it includes the ingest → Redis → asr → Redis → "
         "ingest round trip and the event's trip through the Redis bus to the gateway."),
        ("- Peak RSS is the highest sum over the configuration's `serve` processes at one moment "
         "(sampled each second); each process counts the shared libraries it maps, and each loads "
         "its own copy of what its role needs, so several processes cost more memory than one."),
        ("- On 2 cores the processes compete for the same CPUs: this measures overhead, not the gain of "
         "scaling out, which needs the asr processes on other machines."),
        (f"- The load generator itself used {fmt(sum(gen) / len(gen)) if gen else '—'} CPU s per call-minute "
         "on the same cores (not counted above)."),
    ]
    issues = [f"- {res['label']} / {name}: {text}" for res in results
              for name, found in res["findings"].items() for text in found[:10]]
    if issues:
        lines += ["", "Warnings and errors in the nodes' logs (and /healthz fields missing):", "", *issues]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    corpus = load_corpus()
    offline: dict = defaultdict(str)  # no offline yardstick here: capacity.py compares accuracy
    results = []
    for key in args.configs:
        results.append(await run_config(key, args, corpus, offline))
    section = report(args, results)
    print(section)
    if not args.no_write:
        update_section("scale-out", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[4, 8], help="concurrent calls, each configuration")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of dialling per run")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                        help="configurations to run, in this order (default: all three)")
    parser.add_argument("--logs", metavar="DIR", help="keep each configuration's node logs under DIR/<config>/")
    parser.add_argument("--no-write", action="store_true", help="print only; don't touch RESULTS.md")
    args = parser.parse_args()
    args.command = "python benchmarks/scale_out.py " + " ".join(sys.argv[1:])
    args.model = os.environ.get("STREAM_SERVER_ASR_MODEL", "base")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
