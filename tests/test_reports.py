"""Console reports (ad sources, callers, durations, agents), the call search's filters and
sorting, and the loudness curve: on SQLite and on a real PostgreSQL, through the real routers
(a small app without the ASR model) and the store functions directly."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from databases import KINDS, store_url
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stream_server.alerts.alert import Alert
from stream_server.api import calls, reports
from stream_server.config import Settings
from stream_server.store import reports as store_reports
from stream_server.store.recordings import RecordingStore
from stream_server.store.repository import CallFilter, CallStore

TOKEN = "reports-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = (BASE - timedelta(hours=1)).isoformat()
FORMULA = '=HYPERLINK("http://evil.example/x","click")'
ACTION_FOR_STATUS = {"acknowledged": "acknowledge", "escalated": "escalate", "false_alarm": "false_alarm"}


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    s = CallStore(store_url(request.param, tmp_path, "reports"))
    yield s
    s.close()


@pytest.fixture
def recordings(tmp_path):
    return RecordingStore(tmp_path / "recordings")


@pytest.fixture
def client(store, recordings, tmp_path):
    """The calls and reports routers on a real store, as the app mounts them (no ASR model)."""
    app = FastAPI()
    app.include_router(calls.router)
    app.include_router(reports.router)
    app.state.settings = Settings(data_dir=tmp_path, api_token=TOKEN, prolonged_call_minutes=30)
    app.state.services = SimpleNamespace(store=store, recordings=recordings)
    with TestClient(app) as http:
        http.headers.update(AUTH)
        yield http


def seed_call(store, call_id, hours, duration, meta, alerts=(), score=0.0):
    """A call started BASE + `hours`, ended after `duration` s (None: still active), with a
    caller utterance scoring `score` and one alert per (category, status)."""
    store.create_call(call_id, "twilio", ["caller", "agent"], meta, started_at=BASE + timedelta(hours=hours))
    if score:
        store.add_segment(call_id, "caller", 1.0, 2.0, "line", "en", {"insult": score}, score > 0.5)
    for category, status in alerts:
        alert = Alert(call_id, category, "medium", 0.9, "line", 1.0, 2.0, meta)
        store.add_alert(alert)
        if status != "open":
            store.act_on_alert(alert.id, ACTION_FOR_STATUS[status], "supervisor")
    if duration is not None:
        store.end_call(call_id, "completed", duration, abnormal=False)


def meta(source=None, campaign=None, caller=None, agent=None, tracking=None):
    pairs = {"utm_source": source, "utm_campaign": campaign, "from": caller, "agent": agent,
             "tracking_number": tracking}
    return {k: v for k, v in pairs.items() if v}


@pytest.fixture
def seeded(store):
    """Seven calls, all started within six hours of BASE:

    c1 google/spring +8131 sato    120 s  insult (open)                          -> abusive
    c2 google/spring +8131 sato     60 s  -
    c3 google/summer +8132 suzuki  400 s  insult marked false_alarm              -> not abusive
    c4 google/summer +8131 suzuki 2000 s  prolonged (acknowledged)               -> not abusive
    c5 google/summer  -     -       10 s  -
    c6 yahoo/=HYPERLINK +8133 sato 1000 s threat (escalated), shouting (open)   -> abusive
    c7  -/-          +8131  -      active -
    """
    spring = dict(source="google", campaign="spring", tracking="+81120000001")
    summer = dict(source="google", campaign="summer", tracking="+81120000002")
    seed_call(store, "c1", 0, 120.0, meta(**spring, caller="+8131", agent="sato"), [("insult", "open")], 0.9)
    seed_call(store, "c2", 1, 60.0, meta(**spring, caller="+8131", agent="sato"))
    seed_call(store, "c3", 2, 400.0, meta(**summer, caller="+8132", agent="suzuki"), [("insult", "false_alarm")], 0.8)
    seed_call(store, "c4", 3, 2000.0, meta(**summer, caller="+8131", agent="suzuki"), [("prolonged", "acknowledged")])
    seed_call(store, "c5", 4, 10.0, meta(**summer))
    seed_call(store, "c6", 5, 1000.0, meta("yahoo", FORMULA, "+8133", "sato"),
              [("threat", "escalated"), ("shouting", "open")], 0.95)
    seed_call(store, "c7", 6, None, meta(caller="+8131"))
    return store


def ids(rows):
    return [row["id"] for row in rows]


def parse_csv(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text)))


# -- ad sources ---------------------------------------------------------------------------------


def test_ad_source_report_ranks_the_campaign_that_brought_abuse_first(seeded, client):
    body = client.get("/v1/reports/ad-sources", params={"since": SINCE}).json()
    assert body["since"] == (BASE - timedelta(hours=1)).isoformat() and body["until"] is None
    rows = {(r["ad_source"], r["campaign"]): r for r in body["rows"]}
    assert [(r["ad_source"], r["campaign"]) for r in body["rows"]] == [
        ("yahoo", FORMULA), ("google", "spring"), ("google", "summer"), (None, None),
    ]
    assert rows[("google", "spring")] == {
        "ad_source": "google", "campaign": "spring", "calls": 2, "abusive_calls": 1, "abuse_rate": 0.5,
        "alerts": 1, "categories": {"insult": 1},
    }
    # A false alarm makes no call abusive and is not counted; a long call alone is not abuse.
    summer = rows[("google", "summer")]
    assert (summer["calls"], summer["abusive_calls"], summer["abuse_rate"]) == (3, 0, 0.0)
    assert summer["alerts"] == 1 and summer["categories"] == {"prolonged": 1}
    assert rows[("yahoo", FORMULA)]["categories"] == {"threat": 1, "shouting": 1}
    assert rows[("yahoo", FORMULA)]["alerts"] == 2 and rows[("yahoo", FORMULA)]["abuse_rate"] == 1.0
    assert rows[(None, None)]["calls"] == 1  # untagged calls are reported too, as null


def test_more_abusive_calls_rank_first_at_an_equal_rate(store):
    seed_call(store, "a1", 0, 10.0, meta("a"), [("insult", "open")])
    seed_call(store, "a2", 0, 10.0, meta("a"))
    for n in range(4):  # b: 2 of 4 abusive, same rate as a (1 of 2)
        seed_call(store, f"b{n}", 0, 10.0, meta("b"), [("insult", "open")] if n < 2 else [])
    assert [r["ad_source"] for r in store_reports.ad_source_report(store)] == ["b", "a"]


def test_reports_cover_only_calls_started_in_the_window(seeded, client):
    seed_call(seeded, "old", -240, 50.0, meta("google", "spring", "+8134", "tanaka"), [("insult", "open")])
    everything = {(r["ad_source"], r["campaign"]): r for r in store_reports.ad_source_report(seeded)}
    assert (everything[("google", "spring")]["calls"], everything[("google", "spring")]["abusive_calls"]) == (3, 2)

    window = {"since": SINCE, "until": (BASE + timedelta(hours=2)).isoformat()}  # c1, c2 only
    rows = client.get("/v1/reports/ad-sources", params=window).json()["rows"]
    assert [(r["campaign"], r["calls"]) for r in rows] == [("spring", 2)]
    callers = client.get("/v1/reports/callers", params=window).json()["rows"]
    assert [(r["caller_number"], r["calls"]) for r in callers] == [("+8131", 2)]
    agents = client.get("/v1/reports/agents", params=window).json()["rows"]
    assert [(r["agent"], r["calls"]) for r in agents] == [("sato", 2)]
    buckets = client.get("/v1/reports/durations", params=window).json()["buckets"]
    assert sum(b["calls"] for b in buckets) == 2
    # A bound with an offset means that instant: 18:30+09:00 is 09:30 UTC, after c1, before c2.
    tokyo = {"since": "2026-03-02T18:30:00+09:00", "until": window["until"]}
    assert [(r["campaign"], r["calls"]) for r in client.get("/v1/reports/ad-sources", params=tokyo).json()["rows"]] \
        == [("spring", 1)]


def test_reversed_window_is_a_client_error(client):
    response = client.get("/v1/reports/agents", params={"since": BASE.isoformat(), "until": SINCE})
    assert response.status_code == 422 and "since must be before until" in response.text


def test_ad_source_csv_neutralises_formulas_from_caller_controlled_tags(seeded, client):
    response = client.get("/v1/reports/ad-sources", params={"since": SINCE, "format": "csv"})
    table = parse_csv(response)
    assert response.headers["content-disposition"] == 'attachment; filename="ad-sources-report.csv"'
    header, *rows = table
    assert header[:6] == ["ad_source", "campaign", "calls", "abusive_calls", "abuse_rate", "alerts"]
    assert {"insult", "threat", "shouting", "prolonged", "repeat_caller"} <= set(header[6:])
    first = dict(zip(header, rows[0], strict=True))
    assert first["campaign"] == "'" + FORMULA  # shown as text by a spreadsheet, never run
    assert [first[c] for c in ("ad_source", "calls", "abusive_calls", "abuse_rate")] == ["yahoo", "1", "1", "1.0"]
    assert (first["threat"], first["shouting"], first["insult"]) == ("1", "1", "0")
    assert [row[1] for row in rows] == ["'" + FORMULA, "spring", "summer", ""]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# -- callers, durations, agents ---------------------------------------------------------------


def test_caller_report_puts_repeat_callers_first(seeded, client):
    rows = client.get("/v1/reports/callers", params={"since": SINCE}).json()["rows"]
    assert [r["caller_number"] for r in rows] == ["+8131", "+8133", "+8132"]  # c5 has no number
    assert rows[0] == {
        "caller_number": "+8131", "calls": 4, "abusive_calls": 1, "alerts": 2, "total_duration": 2180.0,
        "last_call_at": (BASE + timedelta(hours=6)).isoformat(),
    }
    assert (rows[2]["abusive_calls"], rows[2]["alerts"]) == (0, 0)  # only a false alarm
    assert [r["caller_number"] for r in client.get(
        "/v1/reports/callers", params={"since": SINCE, "min_calls": 2}).json()["rows"]] == ["+8131"]
    assert len(client.get("/v1/reports/callers", params={"limit": 2}).json()["rows"]) == 2
    assert client.get("/v1/reports/callers", params={"min_calls": 0}).status_code == 422


def test_caller_csv_writes_numbers_as_text(seeded, client):
    response = client.get("/v1/reports/callers", params={"since": SINCE, "format": "csv"})
    header, *rows = parse_csv(response)
    assert response.headers["content-disposition"] == 'attachment; filename="callers-report.csv"'
    assert header == ["caller_number", "calls", "abusive_calls", "alerts", "total_duration", "last_call_at"]
    assert rows[0][:5] == ["'+8131", "4", "1", "2", "2180.0"]  # "+..." would be read as a formula


def test_duration_report_buckets_calls_and_counts_prolonged_ones(seeded, client):
    body = client.get("/v1/reports/durations", params={"since": SINCE}).json()
    got = [(b["label"], b["min_s"], b["max_s"], b["calls"], b["abusive_calls"]) for b in body["buckets"]]
    assert got == [
        ("<1 min", 0, 60, 1, 0),  # c5
        ("1-5 min", 60, 300, 2, 1),  # c2 (exactly 60 s), c1
        ("5-15 min", 300, 900, 1, 0),  # c3
        ("15-30 min", 900, 1800, 1, 1),  # c6
        ("30-60 min", 1800, 3600, 1, 0),  # c4
        ("60+ min", 3600, None, 0, 0),
    ]  # c7 is still active: no duration, no bucket
    assert (body["prolonged_call_minutes"], body["prolonged_calls"]) == (30, 1)
    assert store_reports.duration_report(seeded, 0)["prolonged_calls"] == 0  # rule off
    csv_rows = parse_csv(client.get("/v1/reports/durations", params={"format": "csv"}))
    assert csv_rows[0] == ["label", "min_s", "max_s", "calls", "abusive_calls"]
    assert csv_rows[-1] == ["60+ min", "3600", "", "0", "0"]


def test_agent_report_shows_who_absorbed_the_most_abuse(seeded, client):
    rows = client.get("/v1/reports/agents", params={"since": SINCE}).json()["rows"]
    assert [r["agent"] for r in rows] == ["sato", "suzuki", None]
    assert rows[0] == {"agent": "sato", "calls": 3, "abusive_calls": 2, "alerts": 3,
                       "abusive_call_seconds": 1120.0, "escalations": 1}
    assert rows[1] == {"agent": "suzuki", "calls": 2, "abusive_calls": 0, "alerts": 1,
                       "abusive_call_seconds": 0.0, "escalations": 0}
    assert (rows[2]["calls"], rows[2]["alerts"]) == (2, 0)
    header, *csv_rows = parse_csv(client.get("/v1/reports/agents", params={"since": SINCE, "format": "csv"}))
    assert header == ["agent", "calls", "abusive_calls", "alerts", "abusive_call_seconds", "escalations"]
    assert csv_rows[0] == ["sato", "3", "2", "3", "1120.0", "1"]


def test_reports_need_the_api_token(seeded, client):
    for report in ("ad-sources", "callers", "durations", "agents"):
        assert client.get(f"/v1/reports/{report}", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_unknown_format_is_rejected(client):
    assert client.get("/v1/reports/agents", params={"format": "xlsx"}).status_code == 422


# -- call search --------------------------------------------------------------------------------


def test_search_filters(seeded):
    def found(**kw):
        return sorted(ids(seeded.list_calls(CallFilter(**kw))))

    assert found(min_duration=100) == ["c1", "c3", "c4", "c6"]  # c7 has no duration yet
    assert found(max_duration=60) == ["c2", "c5"]
    assert found(min_duration=100, max_duration=1000) == ["c1", "c3", "c6"]
    assert found(category="insult") == ["c1", "c3"]
    assert found(category="threat") == ["c6"]
    assert found(acknowledged=True) == ["c3", "c4"]  # c6's shouting is still open
    assert found(acknowledged=False) == ["c1", "c6"]
    assert found(agent="sato") == ["c1", "c2", "c6"]
    assert found(tracking_number="+81120000001") == ["c1", "c2"]
    assert found(agent="sato", category="threat") == ["c6"]
    assert found(ad_source="google", campaign="summer", min_duration=100) == ["c3", "c4"]
    assert seeded.count_calls(CallFilter(agent="sato", limit=1)) == 3


@pytest.mark.parametrize(("sort", "order", "expected"), [
    ("started_at", "desc", ["c7", "c6", "c5", "c4", "c3", "c2", "c1"]),
    ("started_at", "asc", ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]),
    ("duration", "asc", ["c5", "c2", "c1", "c3", "c6", "c4", "c7"]),  # no duration: last either way
    ("duration", "desc", ["c4", "c6", "c3", "c1", "c2", "c5", "c7"]),
    ("max_score", "desc", ["c6", "c1", "c3", "c7", "c5", "c4", "c2"]),  # ties: newest first
    ("alert_count", "desc", ["c6", "c4", "c3", "c1", "c7", "c5", "c2"]),
    ("caller_number", "asc", ["c7", "c4", "c2", "c1", "c3", "c6", "c5"]),  # c5 has no number
])
def test_search_sorts(seeded, client, sort, order, expected):
    response = client.get("/v1/calls", params={"sort": sort, "order": order})
    assert response.status_code == 200, response.text
    assert ids(response.json()) == expected


def test_search_pages_carry_the_total(seeded, client):
    response = client.get("/v1/calls", params={"sort": "duration", "order": "asc", "limit": 2, "offset": 2})
    assert ids(response.json()) == ["c1", "c3"] and response.headers["x-total-count"] == "7"
    pages = [ids(client.get("/v1/calls", params={"limit": 3, "offset": o, "sort": "max_score"}).json())
             for o in (0, 3, 6)]
    assert sorted(sum(pages, [])) == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]  # no overlap, no gap
    response = client.get("/v1/calls", params={"agent": "sato", "limit": 1})
    assert len(response.json()) == 1 and response.headers["x-total-count"] == "3"
    response = client.get("/v1/calls", params={"category": "threat", "acknowledged": "false"})
    assert ids(response.json()) == ["c6"] and response.headers["x-total-count"] == "1"
    response = client.get(
        "/v1/calls", params={"min_duration": 100, "max_duration": 1000, "tracking_number": "+81120000002"}
    )
    assert ids(response.json()) == ["c3"]
    response = client.get("/v1/calls", params={"ad_source": "google", "campaign": "spring", "phone": "+8131"})
    assert ids(response.json()) == ["c2", "c1"]  # the older filters still work


@pytest.mark.parametrize("params", [
    {"sort": "ad_source"}, {"order": "sideways"}, {"category": "rudeness"}, {"min_duration": -1},
    {"min_duration": 100, "max_duration": 10}, {"acknowledged": "maybe"},
])
def test_search_rejects_bad_parameters(client, params):
    assert client.get("/v1/calls", params=params).status_code == 422


# -- loudness -----------------------------------------------------------------------------------


def tone(seconds, dbfs, rate=8000):
    """A 440 Hz sine whose RMS is `dbfs` below full scale, as 16-bit PCM."""
    t = np.arange(int(seconds * rate)) / rate
    amplitude = 32768.0 * 10 ** (dbfs / 20) * math.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def test_loudness_curve_of_silence_then_a_tone(client, recordings, store):
    store.create_call("c1", "twilio", ["caller", "agent"], {})
    caller = recordings.open_track("c1", "caller", 8000)
    caller.write(b"\x00\x00" * 8000)  # 1 s silence
    caller.write(tone(1.0, -20.0))
    caller.close()
    agent = recordings.open_track("c1", "agent", 8000)
    agent.write(tone(0.5, -30.0))
    agent.close()

    body = client.get("/v1/calls/c1/loudness", params={"step": 0.25}).json()
    assert body["step"] == 0.25
    curve = body["tracks"]["caller"]
    assert len(curve) == 8
    assert curve[:4] == [-90.0] * 4
    assert all(abs(level + 20.0) < 0.1 for level in curve[4:]), curve
    assert len(body["tracks"]["agent"]) == 2 and all(abs(v + 30.0) < 0.1 for v in body["tracks"]["agent"])


def test_loudness_of_a_long_call_is_capped_by_widening_the_step(client, recordings, store):
    store.create_call("long", "twilio", ["caller"], {})
    caller = recordings.open_track("long", "caller", 8000)
    minute = tone(60.0, -25.0)
    for _ in range(30):
        caller.write(minute)
    caller.close()
    body = client.get("/v1/calls/long/loudness", params={"step": 0.05}).json()
    assert body["step"] == 0.45  # 1800 s in at most 4000 points, on a 0.05 s grid
    assert len(body["tracks"]["caller"]) == 4000
    assert all(abs(v + 25.0) < 0.1 for v in body["tracks"]["caller"])


@pytest.mark.parametrize("step", [0.01, 5.5])
def test_loudness_step_is_bounded(client, recordings, step):
    recordings.open_track("c1", "caller", 8000).close()
    assert client.get("/v1/calls/c1/loudness", params={"step": step}).status_code == 422


def test_loudness_of_an_unknown_call_is_404(seeded, client):
    assert client.get("/v1/calls/nope/loudness").status_code == 404
    assert client.get("/v1/calls/c1/loudness").status_code == 404  # a call without a recording
