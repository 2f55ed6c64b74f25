"""`GET /metrics`: what a Prometheus scraping a node sees before and after a real call."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient
from fixture_calls import simulate_args
from live_server import API_TOKEN, LiveServer, assert_text_alerts, run_calls
from prometheus_client.parser import text_string_to_metric_families

from stream_server.app import create_app
from stream_server.config import Settings

WORK_CLASSES = ("caller_final", "caller_partial", "agent_final", "agent_partial")
FRAME_BYTES = 320  # a 20 ms μ-law frame at 8 kHz, as 16-bit PCM


class Scrape:
    """One scrape, parsed the way Prometheus parses it."""

    def __init__(self, text: str) -> None:
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def labels(self, name: str, key: str) -> set[str]:
        return {s.labels[key] for s in self.samples if s.name == name}


def scrape(server: LiveServer) -> Scrape:
    with server.client() as http:
        response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


@pytest.fixture(scope="module")
def abusive_call(live_server):
    """Scrapes around one abusive Twilio call of this module's own (other tests' calls on the
    shared server only add to counters, which is why deltas are compared)."""
    before = scrape(live_server)
    runs = asyncio.run(run_calls(live_server, {"metrics_abusive": simulate_args("en_abusive")}))
    return before, runs["metrics_abusive"], scrape(live_server)


def test_call_is_counted_by_carrier_and_how_it_ended(abusive_call):
    before, run, after = abusive_call
    assert run.ended["reason"] == "completed"
    started = "stream_server_calls_started_total"
    ended = "stream_server_calls_ended_total"
    assert after.value(started, carrier="twilio") - before.value(started, carrier="twilio") >= 1
    assert after.value(ended, carrier="twilio", reason="completed") - before.value(
        ended, carrier="twilio", reason="completed") >= 1


def test_media_received_covers_both_tracks_of_the_call(abusive_call):
    before, run, after = abusive_call
    frames = "stream_server_media_frames_received_total"
    received = "stream_server_media_received_bytes_total"
    new_frames = after.value(frames, carrier="twilio") - before.value(frames, carrier="twilio")
    new_bytes = after.value(received, carrier="twilio") - before.value(received, carrier="twilio")
    expected_frames = 2 * run.ended["duration"] / 0.02  # two tracks of 20 ms frames
    assert new_frames >= 0.95 * expected_frames
    assert new_bytes == pytest.approx(new_frames * FRAME_BYTES, rel=0.05)


def test_every_alert_the_supervisor_saw_is_counted_with_its_latency(abusive_call):
    before, run, after = abusive_call
    alerts = assert_text_alerts(run)
    name = "stream_server_alerts_total"
    for category in {a["category"] for a in alerts}:
        seen = sum(1 for a in alerts if a["category"] == category)
        counted = after.value(name, category=category, rule="text") - before.value(name, category=category, rule="text")
        assert counted >= seen, category
    latency_count = "stream_server_alert_latency_seconds_count"
    observed = after.value(latency_count) - before.value(latency_count)
    assert observed >= len(alerts)
    seconds = after.value("stream_server_alert_latency_seconds_sum") - before.value(
        "stream_server_alert_latency_seconds_sum")
    assert 0 < seconds / observed < 15  # per alert: a few seconds on a busy 2-core machine, never minutes


def test_asr_work_and_lag_are_visible(abusive_call):
    before, run, after = abusive_call
    busy = "stream_server_asr_busy_seconds_total"
    assert after.value(busy, work="caller_final") > before.value(busy, work="caller_final")
    assert after.value(busy, work="agent_final") > before.value(busy, work="agent_final")
    lag = "stream_server_asr_lag_seconds_count"
    finals = len(run.of_type("transcript.final"))  # both tracks; empty transcripts are timed too
    assert after.value(lag) - before.value(lag) >= finals
    assert after.value(lag, track="caller") > before.value(lag, track="caller")
    batches = "stream_server_asr_batch_size_count"
    assert after.value(batches, work="caller_final") > before.value(batches, work="caller_final")
    assert after.labels("stream_server_asr_queued_utterances", "work") == set(WORK_CLASSES)
    assert 0 <= after.value("stream_server_asr_utilisation_ratio") <= 1
    assert after.value("stream_server_asr_workers") >= 1


def test_bus_events_are_counted_by_type(abusive_call):
    before, run, after = abusive_call
    name = "stream_server_bus_events_published_total"
    for kind in ("call.started", "transcript.final", "alert", "call.ended"):
        assert after.value(name, type=kind) - before.value(name, type=kind) >= len(run.of_type(kind)), kind
    assert after.value("stream_server_bus_connected", bus="memory") == 1
    assert after.value("stream_server_bus_events_dropped_slow_subscriber_total") >= 0


def test_scrape_needs_a_token_when_the_api_has_one(live_server):
    assert httpx.get(f"{live_server.http}/metrics").status_code == 401
    wrong = httpx.get(f"{live_server.http}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = httpx.get(f"{live_server.http}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("api_token", "metrics_token", "presented", "status"),
    [
        (None, None, None, 200),  # dev mode: open like /healthz
        ("api", "scraper", "scraper", 200),
        ("api", "scraper", "api", 200),
        ("api", "scraper", None, 401),
        (None, "scraper", None, 401),
        (None, "scraper", "api", 401),
    ],
)
def test_metrics_token_is_an_alternative_to_the_api_token(api_token, metrics_token, presented, status, tmp_path):
    # Not started (no lifespan): no model loads; counters and the active-calls gauge still answer.
    app = create_app(Settings(data_dir=tmp_path, api_token=api_token, metrics_token=metrics_token))
    headers = {"Authorization": f"Bearer {presented}"} if presented else {}
    response = TestClient(app).get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 200:  # no call yet: the families are declared, their samples come with the first call
        families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
        assert families["stream_server_calls_started"] == "counter"
        assert families["stream_server_alert_latency_seconds"] == "histogram"
        assert families["stream_server_active_calls"] == "gauge"


def test_two_apps_in_one_process_keep_separate_registries(tmp_path):
    first, second = create_app(Settings(data_dir=tmp_path)), create_app(Settings(data_dir=tmp_path))
    first.state.metrics.call_started("twilio")
    assert Scrape(TestClient(first).get("/metrics").text).value("stream_server_calls_started_total") == 1
    assert Scrape(TestClient(second).get("/metrics").text).value("stream_server_calls_started_total") == 0
