"""Hostile input, generated, on every REST route (issue 8, point 1, for the API).

For every operation of the server's OpenAPI schema, hypothesis draws requests from schemathesis'
strategies: requests that fit the schema and requests that break it (wrong types, out-of-range
and huge numbers, missing and unexpected fields, odd strings, NUL). They go to a server process of
this module's own (not the session's shared one), as the bootstrap admin, who may call every
route. The server is seeded with real calls streamed by `stream-server simulate`, their alerts, a
user and a token, and generated ids are swapped half the time for those, so that requests also
reach existing calls, alerts and users, not only 404s. A sweep of boundary values over every path
and query parameter of the schema (2**63, 400-digit numbers, 1e309, NaN, year 1 and 9999 with a
time zone, NUL, 10,000 characters) covers what random generation may miss.

What must hold for every request:

- no 5xx (a crash), and nothing a crash leaves in the server log ("Traceback",
  "Exception in ASGI application");
- every 4xx the app answers is JSON with a `detail`, and no answer holds a traceback, the
  server's data path or its token;
- a 2xx matches the operation's response schema and content type.

And over the whole module: the server stays healthy, a call streamed in real time while all this
goes on ends as if nothing had happened (completed, every frame recorded, its alert raised), and
no file descriptor leaks.

Hand-written cases send what the generator cannot: path traversal in ids (raw `../` and encoded
forms), huge query strings, NUL, invalid UTF-8 and lone surrogates, non-JSON, deeply nested and
out-of-range JSON bodies, bodies of several MB on JSON routes, hostile Authorization headers.

Destructive routes are not excluded: users get disabled, tokens revoked, legal holds set and
released, callers deleted (the seeded ones too) and retention purged on this dedicated server.
Nothing asserted depends on a seeded call surviving them; the live call's number is never
offered to the generator.

STREAM_SERVER_API_FUZZ_EXAMPLES sets the generated examples per operation (default 25: the module
takes under a minute on two cores; use a few hundred for a deeper local run).
STREAM_SERVER_API_FUZZ_DATABASE=postgresql runs the server on PostgreSQL (tests/databases.py)
instead of SQLite: NUL in text and out-of-range integers fail differently there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from databases import clean_postgres_url
from fixture_calls import load_call, simulate_args
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from live_server import API_TOKEN, TWILIO_AUTH_TOKEN, WEBRTC_TOKEN, LiveServer, run_calls, start_server, stop_server
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from stream_server.app import create_app
from stream_server.config import Settings

EXAMPLES = int(os.environ.get("STREAM_SERVER_API_FUZZ_EXAMPLES", "25"))
DATABASE = os.environ.get("STREAM_SERVER_API_FUZZ_DATABASE", "sqlite")
# Generate only: against a live server each shrink step is a request, and a crash found shrinks
# for minutes, so the failing request is reported as sent (with a curl line to repeat it); and
# no example database, whose examples a server in another state would not reproduce anyway.
GENERATE_ONLY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                         phases=[Phase.explicit, Phase.generate], database=None)
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CRASH_MARKERS = ("Traceback", "Exception in ASGI application")


def success_conforms_to_schema(ctx, response, case):
    """response_schema_conformance, on 2xx answers only. The routes' own 422s (HTTPException:
    "since must be before until", "min_duration must not exceed max_duration", a refused user or
    legal hold...) carry a string `detail` where the schema documents FastAPI's list of validation
    errors for every 422; that the 4xx are JSON with a `detail` is checked on every answer below."""
    if response.status_code < 400:
        return response_schema_conformance(ctx, response, case)
    return None


# Checked on every generated request besides clear_answer_problem. Left out on purpose:
# - status_code_conformance: the schema lists only 200/201/422, while the routes answer 401,
#   403, 404, 409, 410 and 413 by design (FastAPI does not document HTTPExceptions);
# - positive_data_acceptance: a schema-valid id that names no call is rightly a 404;
# - negative_data_rejection: the schema is FastAPI's, generated from the very pydantic models that
#   validate the requests, and pydantic's lax mode accepts by design more than the schema says
#   (a unix timestamp for a date-time, "yes" or "on" for a boolean): not a bug, and not a crash;
# - the stateful checks (use_after_free, ensure_resource_availability...): the schema has no
#   links between operations to follow.
# Negative cases are still generated: the server must refuse or take them, never crash on them.
CHECKS = [not_a_server_error, success_conforms_to_schema, content_type_conformance]

LIVE_CALL = "en_threat"  # streamed in real time under the fuzzing; its number is in no seed
SEEDED_CALLS = ("en_abusive", "en_shouting")  # streamed 4x real time before anything starts
SEED_USER = "fuzz-qa"


# -- the server, its seeds and its log --------------------------------------------------------


class LogWatch:
    """The server log from where it was last read: what a crash (if any) left there since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip(self) -> None:
        self.offset = self.path.stat().st_size

    def crashes(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        text = data.decode(errors="replace")
        return text if any(marker in text for marker in CRASH_MARKERS) else ""


@dataclass
class Seeds:
    """What exists on the server, for the generator to aim at (values by parameter name)."""

    path: dict[str, list] = field(default_factory=dict)
    query: dict[str, list] = field(default_factory=dict)


@dataclass
class Fuzzed:
    server: LiveServer
    seeds: Seeds
    log: LogWatch
    open_fds: int
    requests: Counter = field(default_factory=Counter)  # generated requests per operation
    modes: Counter = field(default_factory=Counter)  # and per generation mode (positive, negative)


def _open_fds(server: LiveServer) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    env = {"STREAM_SERVER_ASR_MODEL": "tiny.en"}
    if DATABASE == "postgresql":
        env["STREAM_SERVER_DATABASE_URL"] = clean_postgres_url("api_fuzz")
    server = start_server(tmp_path_factory.mktemp("api-fuzz"), env)
    try:
        runs = asyncio.run(run_calls(server, {name: simulate_args(name, "--speed", "4") for name in SEEDED_CALLS}))
        assert all(run.ended for run in runs.values()), {name: run.simulate_output for name, run in runs.items()}
        with server.client() as http:
            calls = http.get("/v1/calls", params={"limit": 500}).json()
            alerts = http.get("/v1/alerts", params={"limit": 1000}).json()
            assert http.post("/v1/users", json={"name": SEED_USER, "role": "qa"}).status_code == 201
            token = http.post(f"/v1/users/{SEED_USER}/tokens", json={"label": "fuzz"}).json()
        assert alerts, "the seeded abusive calls raised no alert"
        call_ids = [call["id"] for call in calls]
        numbers = sorted({call["caller_number"] for call in calls if call["caller_number"]})
        seeds = Seeds(
            path={"call_id": call_ids, "alert_id": [a["id"] for a in alerts], "name": [SEED_USER, "api-token"],
                  "number": numbers, "token_id": [token["id"]]},
            query={"call_id": call_ids, "phone": numbers, "user": [SEED_USER], "actor": ["api-token", SEED_USER],
                   "ad_source": ["yahoo", "tiktok"]},
        )
        log = LogWatch(server.log_path)
        log.skip()
        fuzzed = Fuzzed(server, seeds, log, _open_fds(server))
        yield fuzzed
        sweep = fuzzed.requests.pop("boundary sweep", 0)
        print(f"\n{sum(fuzzed.requests.values())} generated requests over {len(fuzzed.requests)} operations "
              f"(max_examples {EXAMPLES}; by mode: {dict(fuzzed.modes)}), {sweep} boundary values, "
              f"{HAND_WRITTEN['requests']} hand-written requests")
        for label, count in sorted(fuzzed.requests.items()):
            print(f"  {count:6d}  {label}")
    finally:
        stop_server(server)


@dataclass
class LiveCall:
    """One call streamed in real time while the API is attacked: it must not notice."""

    process: subprocess.Popen


@pytest.fixture(scope="module")
def live_call(fuzzed):
    server = fuzzed.server
    args = simulate_args(LIVE_CALL, "--protocol", "twilio", "--url", server.media_url("twilio"),
                         "--auth-token", TWILIO_AUTH_TOKEN, "--param", "test_id=live")
    process = subprocess.Popen([sys.executable, "-m", "stream_server.cli", "simulate", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield LiveCall(process)
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(autouse=True)
def own_log(fuzzed):
    """Each test answers for what the server logged while it ran, not for the test before it;
    the last test of the module reads the whole log."""
    fuzzed.log.skip()


def _health(server: LiveServer) -> dict:
    response = httpx.get(f"{server.http}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def clear_answer_problem(status: int, content_type: str, body: bytes, what: str, server: LiveServer) -> str | None:
    """What is wrong with an answer, if anything: a 5xx; an app's 4xx that is not JSON with a
    `detail`; something of the server's insides (a traceback, its data path, the token) in it."""
    if status >= 500:
        return f"{what}: {status} {body[:300]!r}"
    if 400 <= status < 500:
        try:
            detail = "detail" in json.loads(body)
        except ValueError:
            detail = False
        if not content_type.startswith("application/json") or not detail:
            return f"{what}: {status} {content_type} {body[:300]!r}"
    text = body.decode(errors="replace")
    for secret in ("Traceback", str(server.data_dir), API_TOKEN):
        if secret in text:
            return f"{what}: the answer leaks {secret!r}: {text[:300]}"
    return None


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b|^ERROR:|\" 5\d\d |/stream_server/")


def crash_summary(log: str) -> str:
    """What a crash logged, without the framework frames: the failed request, the exceptions,
    the project's own frames (the whole log is in the server's data directory)."""
    lines = [line for line in log.splitlines() if EXCEPTION_LINE.search(line)]
    return "\n".join(lines[:80])


def _assert_no_problems(problems: list[str | None], fuzzed: Fuzzed, what: str) -> None:
    """Every problem found, not only the first; then the log: no crash left there either."""
    problems = [p for p in problems if p]
    crash = fuzzed.log.crashes()
    if crash:
        problems.append(f"the server logged a crash ({fuzzed.server.log_path}):\n{crash_summary(crash)}")
    assert not problems, f"{what}:\n" + "\n".join(problems)


# -- by hand: what the generator does not send ------------------------------------------------


HAND_WRITTEN: Counter = Counter()  # requests sent by raw_request


class Raw(NamedTuple):
    status: int
    content_type: str
    body: bytes


def raw_request(server: LiveServer, method: str, target: bytes, body: bytes = b"",
                headers: dict[str, str | bytes] | None = None, timeout: float = 30) -> Raw:
    """Exactly these bytes on the wire (no client normalising `..`, refusing NUL or encoding
    for us), on a connection of its own; the answer, read until the server closes."""
    HAND_WRITTEN["requests"] += 1
    head = {"Host": f"127.0.0.1:{server.port}", "Connection": "close", **AUTH, **(headers or {})}
    if body or method in ("POST", "PUT"):
        head.setdefault("Content-Length", str(len(body)))
    lines = b"".join(k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) + b"\r\n"
                     for k, v in head.items())
    data = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(method.encode() + b" " + target + b" HTTP/1.1\r\n" + lines + b"\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was all sent: the answer is still there to read
        try:
            while chunk := sock.recv(1 << 16):
                data += chunk
        except ConnectionResetError:
            pass
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), f"{method} {target[:100]!r}: no HTTP answer: {data[:200]!r}"
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    content_type = next((line.split(b":", 1)[1].strip().decode() for line in header_block.split(b"\r\n")
                         if line.lower().startswith(b"content-type:")), "")
    return Raw(int(status_line.split()[1]), content_type, payload)


# uvicorn refuses a request line it cannot parse (over its size limit, raw control or 8-bit
# bytes) before the app sees it, with this plain-text 400: a clear error, not the app's JSON.
UVICORN_REFUSAL = Raw(400, "text/plain; charset=utf-8", b"Invalid HTTP request received.")


@pytest.fixture(scope="module")
def seeded(fuzzed, live_call) -> dict[str, str]:
    """One seeded call and alert, read now: the hand-written cases run before the generated ones."""
    return {"call": fuzzed.seeds.path["call_id"][0], "alert": fuzzed.seeds.path["alert_id"][0]}


TRAVERSALS = [b"..%2F..%2Fserver.log", b"%2e%2e%2f%2e%2e%2fevidence.key", b"..%5C..%5Cserver.log", b"%2e%2e",
              b"....%2F%2F", b"..%252F..%252Fserver.log", b"%00..%2Fserver.log"]
ID_ROUTES = [
    ("GET", b"/v1/calls/{}"), ("GET", b"/v1/calls/{}/recording.wav"), ("GET", b"/v1/calls/{}/loudness"),
    ("GET", b"/v1/calls/{}/evidence.zip"), ("GET", b"/v1/calls/{}/training.zip"),
    ("DELETE", b"/v1/calls/{}/legal-hold"), ("POST", b"/v1/alerts/{}/ack"), ("DELETE", b"/v1/users/{}"),
    ("DELETE", b"/v1/callers/{}?dry_run=true"), ("DELETE", b"/v1/tokens/{}"),
]


@pytest.mark.parametrize("method,route", ID_ROUTES, ids=[f"{m} {r.decode()}" for m, r in ID_ROUTES])
def test_path_traversal_in_ids_reaches_no_file(fuzzed, seeded, method, route):
    server, problems = fuzzed.server, []
    for traversal in TRAVERSALS + [b"../../server.log", b"..", b"../" + seeded["call"].encode()]:
        target = route.replace(b"{}", traversal)
        answer = raw_request(server, method, target)
        what = f"{method} {target!r}"
        problems.append(clear_answer_problem(*answer, what, server))
        if answer.status == 200 and not (b"callers" in route and json.loads(answer.body)["deleted"] == []):
            problems.append(f"{what}: {answer}")  # only a caller deletion's dry run may answer: nothing found
        if b"Uvicorn running" in answer.body or b"INFO" in answer.body:
            problems.append(f"{what}: the server log in the answer")
    _assert_no_problems(problems, fuzzed, f"traversal on {method} {route!r}")


def test_path_traversal_under_the_console_assets_reaches_no_file(fuzzed):
    server = fuzzed.server
    for target in (b"/console/../server.log", b"/console/..%2f..%2fserver.log", b"/console/%2e%2e/%2e%2e/evidence.key",
                   b"/console/..%5c..%5cserver.log", b"/console/%2e%2e%2f%2e%2e%2fstream_server.db",
                   b"/calls/..%2F..%2Fserver.log"):
        answer = raw_request(server, "GET", target)
        assert answer.status in (200, 404), (target, answer)  # /calls/<anything> is the replay page
        assert answer.body.startswith((b"{", b"<!")) and b"Uvicorn running" not in answer.body, (target, answer)
    _assert_no_problems([], fuzzed, "traversal under /console")


@pytest.mark.parametrize("size", [20_000, 100_000, 1_000_000])
def test_a_huge_query_value_is_refused_or_searched_not_a_crash(fuzzed, size):
    server, problems = fuzzed.server, []
    for target in (b"/v1/calls?phone=" + b"9" * size, b"/v1/calls?" + b"&".join([b"agent=x"] * (size // 8)),
                   b"/v1/audit?actor=" + b"%00" * (size // 3), b"/v1/reports/callers?since=" + b"1" * size):
        started = time.monotonic()
        answer = raw_request(server, "GET", target)
        if time.monotonic() - started > 20:
            problems.append(f"{target[:60]!r}: took {time.monotonic() - started:.1f}s")
        if answer != UVICORN_REFUSAL:
            problems.append(clear_answer_problem(*answer, repr(target[:60]), server))
    _health(server)
    _assert_no_problems(problems, fuzzed, f"query of {size} bytes")


# Percent-encoded NUL, an overlong NUL, invalid UTF-8, UTF-8-encoded lone surrogates (high, low),
# a BOM, a noncharacter, RTL override: Starlette decodes them with replacement characters.
ODD_QUERY_VALUES = [b"%00", b"a%00b", b"%C0%80", b"%FF%FE", b"%ED%A0%80", b"%ED%B2%80", b"%EF%BB%BF", b"%EF%BF%BF",
                    b"%E2%80%AE", b"%25", b"%", b"%G0", b"\\u0000", b"%5Cud800"]
QUERY_ROUTES = [b"/v1/calls?phone={}&agent={}&ad_source={}&campaign={}&tracking_number={}",
                b"/v1/alerts?call_id={}", b"/v1/audit?actor={}&action={}&call_id={}", b"/v1/tokens?user={}",
                b"/v1/calls?since={}", b"/v1/alerts?since={}", b"/v1/reports/callers?until={}",
                b"/v1/calls?limit={}&offset={}", b"/v1/calls?status={}&category={}&acknowledged={}",
                b"/v1/calls/{}/evidence.zip?by={}", b"/v1/calls/{}", b"/v1/webhooks?limit={}"]


@pytest.mark.parametrize("value", ODD_QUERY_VALUES, ids=[v.decode() for v in ODD_QUERY_VALUES])
def test_nul_bad_utf8_and_lone_surrogates_in_queries_and_paths(fuzzed, seeded, value):
    server, problems = fuzzed.server, []
    for route in QUERY_ROUTES + [b"/v1/callers/{}?dry_run=true", b"/v1/users/{}/tokens"]:
        target = route.replace(b"{}", value)
        method = "DELETE" if route.startswith(b"/v1/callers") else "POST" if route.startswith(b"/v1/users") else "GET"
        answer = raw_request(server, method, target, b"{}" if method == "POST" else b"",
                             {"Content-Type": "application/json"} if method == "POST" else None)
        problems.append(clear_answer_problem(*answer, f"{method} {target!r}", server))
    # Raw bytes no client would send (NUL, 8-bit) are uvicorn's to refuse, before the app.
    for raw in (b"/v1/calls?phone=\x00", b"/v1/calls?phone=\xff\xfe", b"/v1/calls/\xed\xa0\x80"):
        answer = raw_request(server, "GET", raw)
        if answer != UVICORN_REFUSAL:
            problems.append(clear_answer_problem(*answer, repr(raw), server))
    _assert_no_problems(problems, fuzzed, f"query value {value!r}")


JSON_ROUTES = [("POST", "/v1/users"), ("POST", f"/v1/users/{SEED_USER}/tokens"), ("PUT", "/v1/calls/{call}/legal-hold"),
               ("POST", "/v1/alerts/{alert}/ack"), ("POST", "/v1/alerts/{alert}/actions")]
HOSTILE_BODIES = [
    ("not json", b"{not json"), ("empty", b""), ("binary", b"\xff\xfe\x00\x01"), ("truncated", b'{"name": "x'),
    ("a list", b"[1, 2, 3]"), ("null", b"null"), ("a string", b'"x"'), ("NaN", b"NaN"),
    ("deep lists", b"[" * 100_000 + b"]" * 100_000), ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("5000-digit int", b'{"expires_days": ' + b"9" * 5000 + b', "reason": "x", "action": "escalate"}'),
    ("duplicate keys", b'{"name": "a", "name": "b", "role": "qa", "reason": "x", "action": "escalate"}'),
    ("BOM", b'\xef\xbb\xbf{"reason": "x"}'),
    ("NUL in strings", b'{"name": "nul\\u0000", "role": "qa", "label": "\\u0000", "reason": "a\\u0000b", '
                       b'"by": "\\u0000", "action": "escalate", "note": "\\u0000"}'),
    ("UTF-16", '{"reason": "x", "name": "u16", "role": "qa"}'.encode("utf-16")),
]
# FastAPI's default 422 handler echoes each offending `input` back: these cannot be rendered into
# that answer (a lone surrogate is no UTF-8, an infinite float no JSON; so are NaN, and raw bytes
# sent as text/plain, above), and were each a 500 when this test was written.
UNRENDERABLE_BODIES = [
    ("lone surrogate", b'{"name": "\\udc80", "role": "qa", "label": "\\ud800", "reason": "\\udc80", '
                       b'"by": "\\udfff", "action": "escalate", "note": "\\ud83d"}'),
    ("infinite float", b'{"name": 1e999, "role": "qa", "expires_days": -1e999, "reason": 1e999, "by": 1e999, '
                       b'"action": 1e999}'),
]


@pytest.mark.parametrize("method,route", JSON_ROUTES, ids=[f"{m} {r}" for m, r in JSON_ROUTES])
def test_non_json_deep_and_odd_bodies_get_a_clear_error(fuzzed, seeded, method, route):
    server, problems = fuzzed.server, []
    target = route.format(**seeded).encode()
    for name, body in HOSTILE_BODIES + UNRENDERABLE_BODIES:
        for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            answer = raw_request(server, method, target, body, {"Content-Type": content_type})
            problems.append(clear_answer_problem(*answer, f"{name} as {content_type}", server))
    _health(server)
    _assert_no_problems(problems, fuzzed, f"odd bodies on {method} {route}")


@pytest.mark.parametrize("method,route", JSON_ROUTES, ids=[f"{m} {r}" for m, r in JSON_ROUTES])
def test_a_body_of_several_megabytes_is_refused_not_a_hang(fuzzed, seeded, method, route):
    server, problems = fuzzed.server, []
    target = route.format(**seeded).encode()
    big = "x" * (6 << 20)
    for name, body in (("6 MB strings", json.dumps({"name": big, "role": "qa", "label": big, "reason": big, "by": big,
                                                    "action": "escalate", "note": big}).encode()),
                       ("600,000-item list", json.dumps([{"n": i} for i in range(600_000)]).encode())):
        started = time.monotonic()
        answer = raw_request(server, method, target, body, {"Content-Type": "application/json"}, timeout=60)
        took = time.monotonic() - started
        what = f"{name} ({len(body)} bytes): {answer.status} in {took:.1f}s, {len(answer.body)} bytes back"
        if not 400 <= answer.status < 500 or took > 30:
            problems.append(what)
        problems.append(clear_answer_problem(*answer, what, server))
    _assert_no_problems(problems, fuzzed, f"several MB on {method} {route}")


def test_a_body_over_the_limit_is_refused_with_413_whoever_sends_it(fuzzed):
    """STREAM_SERVER_HTTP_MAX_BODY_BYTES (1 MiB): refused from its Content-Length, before auth
    and before it is read, and a chunked body as soon as it passes the limit."""
    server = fuzzed.server
    body = b'{"name": "' + b"x" * (2 << 20) + b'", "role": "qa"}'
    for headers in ({"Content-Type": "application/json"},
                    {"Content-Type": "application/json", "Authorization": "Bearer not-a-token"}):
        answer = raw_request(server, "POST", b"/v1/users", body, headers)
        assert answer.status == 413 and b"over 1048576 bytes" in answer.body, answer

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = httpx.post(f"{server.http}/v1/users", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    _health(server)


def test_webrtc_offer_takes_hostile_bodies(fuzzed):
    """The one route that reads its body raw (an SDP offer), not as a schema'd JSON model."""
    server, problems = fuzzed.server, []
    auth = {"Authorization": f"Bearer {WEBRTC_TOKEN}", "Content-Type": "application/json"}
    for body in (b"", b"{not json", b"\xff\xfe", b'{"sdp": "\\udc80", "type": "offer"}', b'{"sdp": 1e999}',
                 b'{"sdp": "v=0\\r\\n' + b"a=x\\r\\n" * 5000 + b'", "type": "offer"}', b"[" * 100_000,
                 b"x" * (4 << 20)):
        answer = raw_request(server, "POST", b"/v1/webrtc/offer", body, auth)
        problems.append(clear_answer_problem(*answer, f"offer {body[:40]!r}", server))
        if answer.status not in (400, 413, 422):
            problems.append(f"offer {body[:40]!r}: {answer}")
    _assert_no_problems(problems, fuzzed, "webrtc offers")


def test_hostile_authorization_headers_are_refused_with_401(fuzzed):
    server, problems = fuzzed.server, []
    for value in (b"Bearer \xff\xfe", b"Bearer " + b"x" * 60_000, b"Basic Zm9vOmJhcg==", b"Bearer", b"Bearer  ",
                  b"bearer " + API_TOKEN.encode() + b"x", b"Bearer " + API_TOKEN[:-1].encode(), b"Bearer %00"):
        for route in (b"/v1/me", b"/v1/calls", b"/metrics", b"/v1/users"):
            answer = raw_request(server, "GET", route, headers={"Authorization": value})
            if answer == UVICORN_REFUSAL:
                continue
            what = f"{route!r} with {value[:30]!r}"
            problems.append(clear_answer_problem(*answer, what, server))
            if answer.status != 401:
                problems.append(f"{what}: {answer}")
    _assert_no_problems(problems, fuzzed, "hostile Authorization headers")


# -- the generated run -------------------------------------------------------------------------
#
# One test per operation, each running hypothesis over schemathesis' strategies for it (positive
# and negative cases alike), against the schema the running server serves at GET /openapi.json.
# The list of operations is taken at collection from the app's own schema, built in-process;
# test_the_served_schema_has_exactly_the_operations_tested checks the server serves the same.
# (schemathesis' pytest integration is not used: on pytest 9.2 `from_fixture` fails setting
# Node._nodeid, which is gone, and `schema.parametrize()` gives every operation the same node id.)

APP_SCHEMA = create_app(Settings(role="all")).openapi()
OPERATIONS = [f"{method.upper()} {path}" for path, item in APP_SCHEMA["paths"].items() for method in item]


@pytest.fixture(scope="module")
def served_schema(fuzzed):
    return schemathesis.openapi.from_url(f"{fuzzed.server.http}/openapi.json")


def test_the_served_schema_has_exactly_the_operations_tested(served_schema):
    """Nothing left out: what the server serves is what the tests below were collected from."""
    served = {result.ok().label for result in served_schema.get_all_operations()}
    assert served == set(OPERATIONS)
    assert served_schema.raw_schema == APP_SCHEMA


# Boundary values per parameter type, for every path and query parameter the served schema has:
# a sweep like schemathesis' coverage phase, aimed at what breaks a database or a date library.
BOUNDARIES = {
    "integer": ["9223372036854775807", "9223372036854775808", "-9223372036854775809", "1" * 400, "1" * 5000,
                "1e3", "0x10", "NaN", "-0", " 1", "1_0"],
    "number": ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "1e-400", "9" * 400, "1" * 5000, "0x1p3"],
    "date-time": ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01", "9999-12-31", "-1",
                  "99999999999", "1e20", "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z", "0", "nan"],
    "boolean": ["2", "yes", "", "\x00", "nan"],
    "string": ["\x00", "x" * 10_000, "'; DROP TABLE calls; --", "%", "\u202e\ufeff", "../../etc/passwd",
               "\ud7ff\ue000"],
}


def _kind(parameter: dict) -> str:
    schemas = parameter.get("schema", {})
    for candidate in schemas.get("anyOf", [schemas]):
        if candidate.get("format") == "date-time":
            return "date-time"
        if candidate.get("type") in BOUNDARIES:
            return candidate["type"]
    return "string"


def test_every_parameter_takes_boundary_values(fuzzed, seeded, served_schema):
    server, problems, sent = fuzzed.server, [], 0
    defaults = {"call_id": seeded["call"], "alert_id": seeded["alert"], "name": SEED_USER,
                "token_id": str(fuzzed.seeds.path["token_id"][0]), "number": "+810000000000"}
    # A connection of its own per request: uvicorn closes one after a crash, under the next request.
    with httpx.Client(base_url=server.http, headers=AUTH, timeout=60,
                      limits=httpx.Limits(max_keepalive_connections=0)) as http:
        for path, item in served_schema.raw_schema["paths"].items():
            for method, operation in item.items():
                for parameter in operation.get("parameters", []):
                    for value in BOUNDARIES[_kind(parameter)]:
                        path_values = {name: value if name == parameter["name"] else default
                                       for name, default in defaults.items()}
                        url = path.format(**{k: quote(v, safe="") for k, v in path_values.items()})
                        query = {parameter["name"]: value} if parameter["in"] == "query" else {}
                        body = {"json": {}} if "requestBody" in operation else {}
                        response = http.request(method.upper(), url, params=query, **body)
                        sent += 1
                        problems.append(clear_answer_problem(
                            response.status_code, response.headers.get("content-type", ""), response.content,
                            f"{method.upper()} {path} {parameter['name']}={value[:40]!r}", server))
    fuzzed.requests["boundary sweep"] += sent
    _assert_no_problems(problems, fuzzed, f"{sent} boundary values")


def _aim_at_seeds(case, data, seeds: Seeds) -> None:
    """Half the time, swap a generated id (path or query) for one that exists on the server."""
    for location, values_by_name in ((case.path_parameters, seeds.path), (case.query, seeds.query)):
        if not isinstance(location, dict):
            continue
        for name in list(location):
            values = values_by_name.get(name)
            if values and data.draw(st.booleans(), label=f"seeded {name}"):
                location[name] = data.draw(st.sampled_from(values), label=name)


# No operation is excluded: every route in the schema, the destructive ones included, is run.
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_route_survives_generated_hostile_input(label, served_schema, fuzzed, live_call):
    method, path = label.split(" ", 1)
    operation = served_schema[path][method]
    cases = st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])

    @given(case=cases, data=st.data())
    @GENERATE_ONLY
    def attack(case, data):
        _aim_at_seeds(case, data, fuzzed.seeds)
        # A connection of its own per request: uvicorn closes one after a crash, under the next request.
        response = case.call(base_url=fuzzed.server.http, headers={**AUTH, "Connection": "close"}, timeout=60)
        fuzzed.requests[label] += 1
        fuzzed.modes[case.meta.generation.mode.value if case.meta else "?"] += 1
        what = case.as_curl_command(headers=AUTH)
        if response.status_code >= 500:
            time.sleep(0.3)  # uvicorn logs the traceback just after the 500 went out: wait for it
        content_type = (response.headers.get("content-type") or [""])[0]
        problem = clear_answer_problem(response.status_code, content_type, response.content, what, fuzzed.server)
        _assert_no_problems([problem], fuzzed, what)  # first: whatever else fails, the log is read
        case.validate_response(response, checks=CHECKS)

    attack()


# -- afterwards: the server and the call that was running ---------------------------------------


def test_the_server_and_the_live_call_came_through_unharmed(fuzzed, live_call):
    """Last in the module: after everything above, the server answers, its log holds no crash,
    it holds no more file descriptors than before, and the call streamed meanwhile ended as if
    nothing had happened: completed, every frame recorded, no bad message, its alert raised."""
    server = fuzzed.server
    output, _ = live_call.process.communicate(timeout=180)
    assert live_call.process.returncode == 0, output.decode(errors="replace")
    expected = load_call(LIVE_CALL)
    deadline = time.monotonic() + 60
    while True:
        with server.client() as http:
            calls = [c for c in http.get("/v1/calls", params={"limit": 500}).json()
                     if c["metadata"].get("test_id") == "live"]
        if calls and calls[0]["status"] != "active" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(calls) == 1, calls
    call = calls[0]
    assert (call["status"], call["end_reason"]) == ("ended", "completed"), call
    assert call["stats"]["bad_messages"] == 0, call["stats"]
    audio_seconds = len(expected.ulaw("caller")) / 8000
    assert abs(call["duration"] - audio_seconds) < 1.0, (call["duration"], audio_seconds)
    assert call["alert_count"] >= 1 and call["max_score"] > 0.5, call
    with server.client() as http:
        wav = http.get(f"/v1/calls/{call['id']}/recording.wav", params={"track": "caller"})
    assert wav.status_code == 200
    assert abs((len(wav.content) - 44) / 2 / 8000 - audio_seconds) < 0.1  # 16-bit mono: every frame kept
    health = _health(server)
    assert health["status"] == "ok" and health["active_calls"] == 0, health
    assert server.process.poll() is None
    fds = _open_fds(server)
    assert fds <= fuzzed.open_fds + 16, f"{fuzzed.open_fds} file descriptors open before, {fds} after"
    whole_log = server.log()
    assert not any(marker in whole_log for marker in CRASH_MARKERS), \
        f"crashes in the server log over the whole module ({server.log_path}):\n{crash_summary(whole_log)}"
