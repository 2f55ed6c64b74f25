"""Retention, deletion requests and legal holds: on SQLite and a real PostgreSQL, with real
recordings on disk, through the store functions, the real routers, the CLI and a real app
whose lifespan runs the purge job."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from databases import KINDS, store_url
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from stream_server.alerts.alert import Alert
from stream_server.api import calls, exports, retention
from stream_server.config import Settings
from stream_server.evidence.integrity import sha256_file
from stream_server.evidence.verify import verify_package
from stream_server.metrics import ServerMetrics
from stream_server.store.access import AccessStore
from stream_server.store.recordings import RecordingStore
from stream_server.store.repository import CallStore
from stream_server.store.retention import (
    RetentionPolicy,
    caller_matches,
    delete_caller,
    number_key,
    purge_expired,
    release_legal_hold,
    set_legal_hold,
)
from stream_server.store.schema import AlertActionRow, AlertRow, CallRow, SegmentRow

NOW = datetime.now(UTC)
POLICY = RetentionPolicy(audio_days=30, transcript_days=90, alert_days=365)
NUMBER = "+81 90-1234-5678"
EVIDENCE_KEY = "retention-test-key"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    s = CallStore(store_url(request.param, tmp_path, "retention"))
    yield s
    s.close()


@pytest.fixture
def recordings(tmp_path):
    return RecordingStore(tmp_path / "recordings")


def seed(store, recordings, call_id, ended_days_ago, caller=NUMBER, active=False, seal=False):
    """A call with both tracks recorded, two segments, one alert with a supervisor action, ended
    `ended_days_ago` days before NOW (active: started then, never ended)."""
    started = NOW - timedelta(days=ended_days_ago, minutes=5)
    store.create_call(call_id, "twilio", ["caller", "agent"], {"from": caller}, started_at=started)
    for track in ("caller", "agent"):
        recorder = recordings.open_track(call_id, track, 8000)
        recorder.write(b"\x01\x00" * 8000)
        recorder.close()
    store.add_segment(call_id, "caller", 1.0, 2.0, "you idiot", "en", {"insult": 0.9}, True)
    store.add_segment(call_id, "agent", 2.5, 3.0, "please calm down", "en", {"insult": 0.01}, False)
    alert = Alert(call_id, "insult", "high", 0.9, "you idiot", 1.0, 2.0, {"from": caller})
    store.add_alert(alert)
    store.act_on_alert(alert.id, "escalate", "supervisor", "threatening")
    if active:
        return
    if seal:
        store.seal_call(call_id, {f"{t}.wav": sha256_file(recordings.path(call_id, t)) for t in ("caller", "agent")})
    store.end_call(call_id, "completed", 300.0, abnormal=False)
    with store.session() as session, session.begin():
        session.execute(update(CallRow).where(CallRow.id == call_id).values(ended_at=NOW - timedelta(days=ended_days_ago)))


def rows(store, table, call_id):
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(table.call_id == call_id)))


def kept(store, recordings, call_id):
    """What is left of the call: (recorded tracks, segments, alerts, alert actions)."""
    return (len(recordings.tracks(call_id)), rows(store, SegmentRow, call_id), rows(store, AlertRow, call_id),
            rows(store, AlertActionRow, call_id))


EVERYTHING = (2, 2, 1, 1)
NOTHING = (0, 0, 0, 0)


# -- purge -------------------------------------------------------------------------------------


def test_each_kind_is_purged_at_its_own_age_and_the_call_row_stays(store, recordings):
    for call_id, days in (("fresh", 10), ("month", 40), ("quarter", 100), ("year", 400)):
        seed(store, recordings, call_id, days)
    report = purge_expired(store, recordings, POLICY, NOW)

    assert kept(store, recordings, "fresh") == EVERYTHING
    assert kept(store, recordings, "month") == (0, 2, 1, 1)  # audio past 30 days only
    assert kept(store, recordings, "quarter") == (0, 0, 1, 1)  # and the transcript past 90
    assert kept(store, recordings, "year") == NOTHING  # and the alerts past 365
    assert report.calls == {"audio": 3, "transcripts": 2, "alerts": 1}
    assert report.removed == {"recordings": 6, "segments": 4, "alerts": 1, "alert_actions": 1}
    assert not (recordings.root / "year").exists()
    year = store.get_call("year")  # the row stays: reports still count the call, with its summary
    assert (year["duration"], year["alert_count"], year["max_score"]) == (300.0, 1, 0.9)
    assert set(year["purged"]) == {"audio", "transcripts", "alerts"}
    assert set(store.get_call("month")["purged"]) == {"audio"}
    assert store.get_call("fresh")["purged"] is None


def test_a_second_purge_removes_nothing_and_keeps_the_first_times(store, recordings):
    seed(store, recordings, "old", 400)
    purge_expired(store, recordings, POLICY, NOW)
    first = store.get_call("old")["purged"]
    again = purge_expired(store, recordings, POLICY, NOW + timedelta(days=1))
    assert again.items == 0 and again.calls == {"audio": 0, "transcripts": 0, "alerts": 0}
    assert store.get_call("old")["purged"] == first


def test_a_period_of_zero_keeps_that_kind_forever(store, recordings):
    seed(store, recordings, "ancient", 4000)
    purge_expired(store, recordings, RetentionPolicy(audio_days=30), NOW)
    assert kept(store, recordings, "ancient") == (0, 2, 1, 1)
    assert purge_expired(store, recordings, RetentionPolicy(), NOW).items == 0


def test_dry_run_counts_what_would_go_and_removes_nothing(store, recordings):
    seed(store, recordings, "old", 400)
    report = purge_expired(store, recordings, POLICY, NOW, dry_run=True)
    assert report.dry_run and report.removed == {"recordings": 2, "segments": 2, "alerts": 1, "alert_actions": 1}
    assert kept(store, recordings, "old") == EVERYTHING and store.get_call("old")["purged"] is None


def test_a_held_call_survives_every_period_and_goes_once_released(store, recordings):
    seed(store, recordings, "held", 400)
    hold = set_legal_hold(store, "held", "legal", "complaint 2026-17")
    assert store.get_call("held")["legal_hold"] == hold and hold["reason"] == "complaint 2026-17"

    report = purge_expired(store, recordings, POLICY, NOW)
    assert report.held == ["held"] and report.items == 0
    assert kept(store, recordings, "held") == EVERYTHING

    released = release_legal_hold(store, "held", "legal")
    assert released["released"] == hold and store.get_call("held")["legal_hold"] is None
    assert purge_expired(store, recordings, POLICY, NOW).calls == {"audio": 1, "transcripts": 1, "alerts": 1}
    assert kept(store, recordings, "held") == NOTHING


def test_an_active_call_is_never_touched(store, recordings):
    seed(store, recordings, "live", 400, active=True)  # started 400 days ago, still streaming
    report = purge_expired(store, recordings, RetentionPolicy(1, 1, 1), NOW)
    assert report.items == 0 and kept(store, recordings, "live") == EVERYTHING
    deletion = delete_caller(store, recordings, NUMBER, "dpo")
    assert deletion.active == ["live"] and deletion.deleted == []
    assert kept(store, recordings, "live") == EVERYTHING


@contextlib.contextmanager
def undeletable(folder):
    """The folder's files cannot be removed while inside: read-only folder, or, for root (whom
    permissions do not stop), an immutable file (chattr +i; skipped where the filesystem has none)."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    victim = next(folder.iterdir())
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(victim)], capture_output=True).returncode:
        pytest.skip("running as root on a filesystem without immutable files: nothing stops the removal")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(victim)], check=True)


def test_a_recording_that_cannot_be_removed_is_reported_and_tried_again(store, recordings):
    seed(store, recordings, "stuck", 400)
    with undeletable(recordings.root / "stuck"):
        report = purge_expired(store, recordings, RetentionPolicy(audio_days=30), NOW)
        assert report.calls["audio"] == 0 and report.failed and report.failed[0].startswith("stuck audio:")
        assert "audio" not in (store.get_call("stuck")["purged"] or {})  # not marked: the next run retries
    assert purge_expired(store, recordings, RetentionPolicy(audio_days=30), NOW).calls["audio"] == 1
    assert recordings.tracks("stuck") == []


def test_a_call_whose_files_cannot_be_removed_is_not_deleted(store, recordings):
    seed(store, recordings, "stuck", 5)
    with undeletable(recordings.root / "stuck"):
        report = delete_caller(store, recordings, NUMBER, "dpo")
        assert report.deleted == [] and report.failed[0].startswith("stuck:")
        assert store.get_call("stuck") is not None and rows(store, SegmentRow, "stuck") == 2  # rows rolled back
    assert delete_caller(store, recordings, NUMBER, "dpo").deleted == ["stuck"]


# -- deletion requests -------------------------------------------------------------------------


def test_number_forms_that_match():
    assert number_key("+81 90-1234-5678") == number_key("819012345678") == "819012345678"
    assert number_key("(03) 1234.5678") == "0312345678"
    assert number_key("090-1234-5678") != number_key("+81 90 1234 5678")  # national vs E.164: not guessed


def test_delete_caller_removes_every_form_of_the_number_and_reports_held_calls(store, recordings):
    for call_id, caller in (("spaced", "+81 90-1234-5678"), ("e164", "+819012345678"), ("bare", "819012345678"),
                            ("hyphens", "81-90-1234-5678"), ("held", "+819012345678"),
                            ("national", "090-1234-5678"), ("other", "+819099999999")):
        seed(store, recordings, call_id, 5, caller=caller)
    set_legal_hold(store, "held", "legal", "police request")

    report = delete_caller(store, recordings, "+81 (90) 1234-5678", "dpo")

    assert sorted(report.deleted) == ["bare", "e164", "hyphens", "spaced"]
    assert [h["call_id"] for h in report.held] == ["held"] and report.held[0]["legal_hold"]["reason"] == "police request"
    assert report.removed == {"recordings": 8, "segments": 8, "alerts": 4, "alert_actions": 4}
    for call_id in report.deleted:
        assert store.get_call(call_id) is None and kept(store, recordings, call_id) == NOTHING
        assert not (recordings.root / call_id).exists()
    for call_id in ("held", "national", "other"):
        assert kept(store, recordings, call_id) == EVERYTHING
    assert delete_caller(store, recordings, "+819012345678", "dpo").deleted == []  # nothing left but the held call


def test_a_caller_that_is_not_a_phone_number_matches_only_exactly(store, recordings):
    seed(store, recordings, "anon", 5, caller="anonymous")
    seed(store, recordings, "sip", 5, caller="sip:anonymous@example.com")
    with store.session() as session:
        assert session.scalars(select(CallRow.id).where(caller_matches("anonymous"))).all() == ["anon"]
    with pytest.raises(ValueError, match="1 to 64"):
        delete_caller(store, recordings, "   ", "dpo")


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def app(store, recordings, tmp_path):
    """The retention, calls and exports routers on a real store, as the app mounts them (no ASR
    model); dev mode: no token, no user, so every request is an anonymous admin."""
    app = FastAPI()
    for module in (retention, calls, exports):
        app.include_router(module.router)
    app.state.settings = Settings(data_dir=tmp_path, evidence_key=EVIDENCE_KEY, retention_audio_days=30,
                                  retention_transcript_days=90, retention_alert_days=365, retention_interval_s=0)
    app.state.services = SimpleNamespace(store=store, recordings=recordings)
    app.state.metrics = ServerMetrics()
    return app


@pytest.fixture
def client(app):
    with TestClient(app) as http:
        yield http


def audit_entries(store, action):
    return AccessStore(store).audit_entries(action=action)[0]


def purged_items(metrics: ServerMetrics) -> dict[str, float]:
    families = text_string_to_metric_families(metrics.exposition().decode())
    return {s.labels["kind"]: s.value for f in families for s in f.samples
            if s.name == "stream_server_retention_purged_items_total"}


def test_legal_hold_routes(client, store, recordings):
    seed(store, recordings, "c1", 400)
    put = client.put("/v1/calls/c1/legal-hold", json={"reason": "case 42", "by": "lawyer"})
    assert put.status_code == 200, put.text
    assert put.json()["legal_hold"]["reason"] == "case 42"
    assert put.json()["legal_hold"]["by"] == "lawyer"  # dev mode: the name sent (a user token's own wins)
    assert client.post("/v1/retention/purge").json()["held"] == ["c1"]
    assert kept(store, recordings, "c1") == EVERYTHING

    assert client.put("/v1/calls/nope/legal-hold", json={"reason": "x"}).status_code == 404
    assert client.put("/v1/calls/c1/legal-hold", json={"reason": ""}).status_code == 422
    assert client.put("/v1/calls/c1/legal-hold", json={}).status_code == 422
    assert client.put("/v1/calls/c1/legal-hold", content=b"not json").status_code == 422
    assert client.put("/v1/calls/c1/legal-hold", json={"reason": "   "}).status_code == 422

    released = client.delete("/v1/calls/c1/legal-hold")
    assert released.status_code == 200 and released.json()["released"]["reason"] == "case 42"
    assert released.json()["legal_hold"] is None
    assert client.delete("/v1/calls/c1/legal-hold").json()["released"] is None  # nothing left to release
    assert client.delete("/v1/calls/nope/legal-hold").status_code == 404

    (entry,) = audit_entries(store, "legal_hold.set")
    assert (entry["actor"], entry["call_id"], entry["detail"]["reason"]) == ("anonymous", "c1", "case 42")
    assert len(audit_entries(store, "legal_hold.release")) == 2


def test_purge_route_reports_counts_and_audits_it(client, app, store, recordings):
    seed(store, recordings, "old", 400)
    dry = client.post("/v1/retention/purge?dry_run=true").json()
    assert dry["dry_run"] and dry["removed"]["recordings"] == 2 and kept(store, recordings, "old") == EVERYTHING
    done = client.post("/v1/retention/purge")
    assert done.status_code == 200
    assert done.json()["calls"] == {"audio": 1, "transcripts": 1, "alerts": 1}
    assert kept(store, recordings, "old") == NOTHING
    assert purged_items(app.state.metrics) == {"recordings": 2, "segments": 2, "alerts": 1, "alert_actions": 1}
    entries = audit_entries(store, "retention.purge")
    assert [e["detail"]["dry_run"] for e in entries] == [False, True]  # newest first
    assert entries[0]["detail"]["removed"]["recordings"] == 2

    policy = client.get("/v1/retention").json()
    assert policy == {"audio_days": 30, "transcript_days": 90, "alert_days": 365, "interval_s": 0.0,
                      "keeps_everything": False, "last_run": None}
    assert audit_entries(store, "retention.read")
    assert client.post("/v1/retention/purge?dry_run=maybe").status_code == 422


def test_audio_routes_say_the_recording_was_purged(client, store, recordings):
    seed(store, recordings, "old", 40)  # audio past its 30 days, transcript and alerts kept
    client.post("/v1/retention/purge")
    for path in ("recording.wav", "recording.wav?track=caller", "loudness", "evidence.zip", "training.zip"):
        response = client.get(f"/v1/calls/old/{path}")
        assert response.status_code == 410, (path, response.text)
        assert "purged by retention" in response.json()["detail"]
    assert client.get("/v1/calls/old").json()["segments"]  # what is left is still served
    assert client.get("/v1/calls/unknown/recording.wav").status_code == 404


def test_an_export_made_before_the_purge_still_verifies(client, store, recordings, tmp_path):
    seed(store, recordings, "case", 100, seal=True)
    before = client.get("/v1/calls/case/evidence.zip")
    assert before.status_code == 200
    (tmp_path / "before.zip").write_bytes(before.content)

    client.post("/v1/retention/purge")  # audio and transcript past their periods, alerts not
    result = verify_package(tmp_path / "before.zip", EVIDENCE_KEY)
    assert result.ok, result.problems
    assert any("match the seal" in note for note in result.notes)
    # The seal stays with the call: the earlier export's recordings can still be matched against it.
    sealed = store.get_call("case")["evidence"]["files"]
    with zipfile.ZipFile(io.BytesIO(before.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["sealed"]["files"] == sealed
    assert client.get("/v1/calls/case/evidence.zip").status_code == 410


def test_an_export_after_only_the_transcript_went_says_so(app, store, recordings, tmp_path):
    app.state.settings = app.state.settings.model_copy(update={"retention_audio_days": 0})
    seed(store, recordings, "case", 100)
    with TestClient(app) as http:
        http.post("/v1/retention/purge")
        response = http.get("/v1/calls/case/evidence.zip")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        transcript = json.loads(archive.read("transcript.json"))
        assert {"recording/caller.wav", "recording/agent.wav"} <= set(archive.namelist())
    assert transcript["segments"] == [] and set(transcript["call"]["purged"]) == {"transcripts"}
    (tmp_path / "after.zip").write_bytes(response.content)
    assert verify_package(tmp_path / "after.zip", EVIDENCE_KEY).ok


def test_deletion_request_route(client, app, store, recordings):
    seed(store, recordings, "a", 5)
    seed(store, recordings, "b", 5, caller="+819012345678")
    seed(store, recordings, "held", 5)
    client.put("/v1/calls/held/legal-hold", json={"reason": "litigation"})

    dry = client.delete("/v1/callers/819012345678?dry_run=true").json()
    assert sorted(dry["deleted"]) == ["a", "b"] and kept(store, recordings, "a") == EVERYTHING
    response = client.delete("/v1/callers/%2B81%2090-1234-5678")  # "+81 90-1234-5678", URL-encoded
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["deleted"]) == ["a", "b"] and [h["call_id"] for h in body["held"]] == ["held"]
    assert client.get("/v1/calls/a").status_code == 404 and not (recordings.root / "a").exists()
    assert client.get("/v1/calls/held").status_code == 200
    assert purged_items(app.state.metrics)["calls"] == 2

    entry = audit_entries(store, "caller.delete")[0]
    assert sorted(entry["detail"]["deleted"]) == ["a", "b"] and entry["detail"]["held"] == ["held"]
    logged = json.dumps(entry)
    assert "9012345678" not in logged and "90-1234" not in logged  # the audit log does not keep the number
    assert entry["detail"]["number"].endswith("5678")
    assert client.delete("/v1/callers/" + "1" * 65).status_code == 422


def test_the_routes_need_the_admin_role(client, store, recordings):
    seed(store, recordings, "c1", 5)
    access = AccessStore(store)
    access.add_user("sato", "supervisor")
    token, _ = access.create_token("sato")
    supervisor = {"Authorization": f"Bearer {token}"}
    for method, path, body in (("PUT", "/v1/calls/c1/legal-hold", {"reason": "x"}),
                               ("DELETE", "/v1/calls/c1/legal-hold", None), ("DELETE", f"/v1/callers/{NUMBER}", None),
                               ("POST", "/v1/retention/purge", None), ("GET", "/v1/retention", None)):
        assert client.request(method, path, json=body, headers=supervisor).status_code == 403, path
        assert client.request(method, path, json=body).status_code == 401, path  # a user exists: no more dev mode
    assert kept(store, recordings, "c1") == EVERYTHING


# -- the CLI -----------------------------------------------------------------------------------


def cli(tmp_path, *args, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_SERVER_")}
    environment.update({"STREAM_SERVER_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-m", "stream_server.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=environment, timeout=120)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_cli_purge_delete_caller_and_legal_hold(store, recordings, tmp_path):
    seed(store, recordings, "old", 400)
    seed(store, recordings, "held", 400)
    seed(store, recordings, "recent", 5)

    assert "nothing to purge" in cli(tmp_path, "purge").stdout  # every period 0 by default
    hold = cli(tmp_path, "legal-hold", "held", "--reason", "case 7")
    assert hold.returncode == 0, hold.stderr
    assert cli(tmp_path, "legal-hold", "nope", "--reason", "x").returncode != 0
    assert cli(tmp_path, "legal-hold", "held").returncode != 0  # --reason or --release is required

    days = {"STREAM_SERVER_RETENTION_AUDIO_DAYS": "30"}
    dry = cli(tmp_path, "purge", "--dry-run", **days)
    assert dry.returncode == 0 and json.loads(dry.stdout)["removed"]["recordings"] == 2
    assert recordings.tracks("old") == ["caller", "agent"]
    done = cli(tmp_path, "purge", **days)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["held"] == ["held"] and recordings.tracks("old") == []
    assert recordings.tracks("held") == ["caller", "agent"]

    refused = cli(tmp_path, "delete-caller", NUMBER)  # no --yes and no terminal to ask on
    assert refused.returncode == 1 and store.get_call("recent") is not None
    deleted = cli(tmp_path, "delete-caller", NUMBER, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert sorted(json.loads(deleted.stdout)["deleted"]) == ["old", "recent"]
    assert store.get_call("recent") is None and store.get_call("held") is not None

    assert cli(tmp_path, "legal-hold", "held", "--release").returncode == 0
    assert store.get_call("held")["legal_hold"] is None
    actions = [e["action"] for e in AccessStore(store).audit_entries()[0]]
    assert actions.count("retention.purge") == 2 and "caller.delete" in actions
    assert {"legal_hold.set", "legal_hold.release"} <= set(actions)


# -- the purge job in a real app ---------------------------------------------------------------


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize("role", ["all", "gateway"])
def test_the_purge_job_runs_in_the_app_lifespan(role, tmp_path, request):
    """Role all (one machine) and the gateway (scale-out): the lifespan starts the job, it purges
    what is past its period every interval, counts it in /metrics and audits it; shutdown stops it."""
    from stream_server.app import create_app

    scale_out = {}
    if role == "gateway":
        if not _redis_answers():
            pytest.skip(f"the gateway role needs Redis at {REDIS_URL}")
        scale_out = {"role": "gateway", "bus": REDIS_URL, "bus_prefix": request.getfixturevalue("redis_prefix")}
    settings = Settings(data_dir=tmp_path, asr_model="tiny.en", asr_workers=1, asr_threads=1, voice_alerts=False,
                        retention_audio_days=30, retention_interval_s=0.2, **scale_out)
    store = CallStore(settings.resolved_database_url)
    recordings = RecordingStore(tmp_path / "recordings")
    seed(store, recordings, "old", 40)
    seed(store, recordings, "new", 1)

    app = create_app(settings)
    with TestClient(app) as http:
        job = app.state.retention_job
        deadline = time.monotonic() + 30
        while (recordings.tracks("old") or job.runs < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert recordings.tracks("old") == [] and job.runs >= 2  # it ran, then ran again
        assert recordings.tracks("new") == ["caller", "agent"]
        metrics = {s.labels.get("kind"): s.value for f in text_string_to_metric_families(http.get("/metrics").text)
                   for s in f.samples if s.name == "stream_server_retention_purged_items_total"}
        assert metrics == {"recordings": 2}
        last = http.get("/v1/retention").json()["last_run"]
        assert last is not None and not last["dry_run"]
    assert not job.running  # stopped with the app
    entries = audit_entries(store, "retention.purge")
    assert len(entries) == 1 and entries[0]["actor"] == "retention-job"  # only the run that removed something
    assert segments_left(store, "old") == 2  # transcripts: kept forever by default
    store.close()


def segments_left(store, call_id):
    return rows(store, SegmentRow, call_id)
