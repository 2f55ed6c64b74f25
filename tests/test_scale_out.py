"""Scale-out, as deployed: separate processes in every role, real Redis, real PostgreSQL.

Two ingest nodes, two ASR worker nodes (real Whisper) and one gateway share one Redis prefix, one
fresh PostgreSQL database and one data directory. A supervisor on the gateway watches one
abusive call on each ingest node; one ASR worker is killed (SIGKILL) while it holds speech.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import websockets
from fixture_calls import load_call, simulate_args
from live_server import (
    LiveServer,
    assert_text_alerts,
    run_calls,
    start_server,
    stop_server,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _services_answer() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        psycopg.connect(POSTGRES_ADMIN, connect_timeout=2).close()
        return True
    except (redis.RedisError, psycopg.Error):
        return False


pytestmark = pytest.mark.skipif(not _services_answer(),
                                reason="needs Redis on :6379 and PostgreSQL on :5432 (.ci/run starts both)")


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test alone, dropped afterwards."""
    name = f"stream_server_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



def _start(data_dir: Path, roles: dict[str, dict[str, str]]) -> dict[str, LiveServer]:
    """Start every node at once (each loads its models): name → server."""
    with ThreadPoolExecutor(len(roles)) as pool:
        futures = {name: pool.submit(start_server, data_dir, env, 240, f"{name}.log") for name, env in roles.items()}
        servers: dict[str, LiveServer] = {}
        errors = []
        for name, future in futures.items():
            try:
                servers[name] = future.result()
            except RuntimeError as exc:
                errors.append(f"{name}: {exc}")
    if errors:
        for server in servers.values():
            stop_server(server)
        raise RuntimeError("\n".join(errors))
    return servers


def _health(server: LiveServer) -> dict:
    return httpx.get(f"{server.http}/healthz", timeout=10).json()


async def _kill_when_holding_speech(worker: LiveServer, timeout: float = 60) -> int:
    """SIGKILL `worker` as soon as it holds queued speech; how many utterances it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = (await asyncio.to_thread(_health, worker))["asr_worker"]["in_flight"]
        if held:
            worker.process.kill()
            worker.process.wait(10)
            return held
        await asyncio.sleep(0.1)
    raise AssertionError("the worker never took any speech")


def test_two_ingest_two_asr_one_gateway_every_alert_once_and_no_speech_lost_when_a_worker_dies(
        tmp_path, database_url, redis_prefix):
    shared = {"STREAM_SERVER_BUS": REDIS_URL, "STREAM_SERVER_BUS_PREFIX": redis_prefix,
              "STREAM_SERVER_DATABASE_URL": database_url, "STREAM_SERVER_ASR_CLAIM_IDLE_S": "4",
              "STREAM_SERVER_AUDIOSOCKET_PORT": "0"}
    asr = {**shared, "STREAM_SERVER_ROLE": "asr", "STREAM_SERVER_ASR_WORKERS": "1", "STREAM_SERVER_ASR_THREADS": "1"}
    nodes = _start(tmp_path, {
        "asr-1": asr, "asr-2": asr,
        "ingest-1": {**shared, "STREAM_SERVER_ROLE": "ingest", "STREAM_SERVER_NODE_NAME": "ingest-1"},
        "ingest-2": {**shared, "STREAM_SERVER_ROLE": "ingest", "STREAM_SERVER_NODE_NAME": "ingest-2"},
        "gateway": {**shared, "STREAM_SERVER_ROLE": "gateway"},
    })
    gateway, ingest = nodes["gateway"], [nodes["ingest-1"], nodes["ingest-2"]]
    try:
        async def scenario():
            calls = [run_calls(ingest[0], {"en": simulate_args("en_abusive")}, timeout=240, supervisor=gateway),
                     run_calls(ingest[1], {"ja": simulate_args("ja_abusive")}, timeout=240, supervisor=gateway)]
            tasks = [asyncio.create_task(c) for c in calls]
            held = await _kill_when_holding_speech(nodes["asr-1"])
            async with websockets.connect(gateway.supervisor_url) as feed:  # joining mid-call
                hello = json.loads(await feed.recv())
            en, ja = await asyncio.gather(*tasks)
            return held, hello, en["en"], ja["ja"]

        held, hello, en, ja = asyncio.run(scenario())
        # The gateway runs no call itself; its hello lists the ingest nodes' calls from the store.
        assert {c["metadata"].get("test_id") for c in hello["active_calls"]} >= {"en", "ja"}

        # Every utterance each ingest node queued was answered, the dead worker's included.
        deadline = time.monotonic() + 60
        while any(_health(node)["asr_queue_depth"] for node in ingest):
            assert time.monotonic() < deadline, [_health(node) for node in ingest]
            time.sleep(0.5)
        survivor = _health(nodes["asr-2"])["asr_worker"]
        assert survivor["claimed"] >= held >= 1, survivor
        # The shared backlog is polled each second: it reaches 0 just after the answers do.
        drained = 'stream_server_asr_backlog_utterances{stream="caller"} 0.0'
        deadline = time.monotonic() + 15
        while drained not in (scrape := httpx.get(f"{ingest[0].http}/metrics",
                                                  headers={"Authorization": "Bearer test-api-token"}).text):
            assert time.monotonic() < deadline, [line for line in scrape.splitlines() if "backlog" in line]
            time.sleep(0.5)
        assert 'stream_server_asr_utterances_total{work="caller_final"}' in scrape

        with gateway.client() as http:
            for run, name, node in ((en, "en_abusive", "ingest-1"), (ja, "ja_abusive", "ingest-2")):
                assert len(run.of_type("call.started")) == 1 and len(run.of_type("call.ended")) == 1
                assert_text_alerts(run, load_call(name).metadata)
                alert_ids = [a["id"] for a in run.of_type("alert")]
                assert len(alert_ids) == len(set(alert_ids))  # each alert once on the gateway's feed
                stored = http.get(f"/v1/calls/{run.call_id}").json()
                assert sorted(alert_ids) == sorted(a["id"] for a in stored["alerts"])
                assert stored["status"] == "ended"
                # Each final transcript the feed showed is a stored segment, exactly once.
                finals = sorted(e["segment_id"] for e in run.of_type("transcript.final"))
                assert finals == sorted(s["id"] for s in stored["segments"])
                assert {s["track"] for s in stored["segments"]} == {"caller", "agent"}
                assert stored["node"] == node
                assert http.get(f"/v1/calls/{run.call_id}/recording.wav").status_code == 200  # shared data dir
    finally:
        for server in nodes.values():
            if server.process.poll() is None:
                stop_server(server)



@pytest.mark.parametrize(("role", "serves", "not_served"), [
    ("ingest", {"/v1/media/twilio", "/v1/webrtc/offer", "/healthz", "/metrics"}, {"/v1/calls", "/v1/supervisor/ws"}),
    ("asr", {"/healthz", "/metrics"}, {"/v1/media/twilio", "/v1/calls", "/v1/supervisor/ws"}),
    ("gateway", {"/v1/calls", "/v1/supervisor/ws", "/healthz", "/metrics"}, {"/v1/media/twilio", "/v1/webrtc/offer"}),
    ("all", {"/v1/media/twilio", "/v1/calls", "/v1/supervisor/ws", "/healthz"}, set()),
])
def test_each_role_serves_only_its_part(role, serves, not_served):
    from stream_server.app import create_app
    from stream_server.config import Settings

    paths = set(_paths(create_app(Settings(role=role, bus=REDIS_URL)).router.routes))
    assert serves <= paths and not (not_served & paths)


def _paths(routes) -> Iterator[str]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
            yield from _paths(route.original_router.routes)
        elif hasattr(route, "path"):
            yield route.path


def test_a_scale_out_role_without_redis_is_refused_naming_the_setting(tmp_path):
    result = subprocess.run([sys.executable, "-m", "stream_server.cli", "serve", "--role", "ingest",
                             "--data-dir", str(tmp_path)], check=False, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "STREAM_SERVER_BUS"})
    assert result.returncode != 0 and "STREAM_SERVER_BUS=redis://" in result.stderr
