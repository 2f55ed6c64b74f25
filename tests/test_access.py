"""Access control over real HTTP and WebSocket routes: roles, tenant/team scopes, hashed tokens,
the audit log of playback and exports, and production mode closing what has no credential.

A small app with the real routers, a real SQLite store, real recordings on disk and the real
in-process bus (no ASR model: nothing here transcribes).
"""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from stream_server import cli, exposure
from stream_server.alerts.alert import Alert
from stream_server.api import admin, alerts, calls, console, exports, media, reports, supervisor
from stream_server.bus.memory import MemoryBus
from stream_server.config import Settings
from stream_server.store.access import AccessError, AccessStore
from stream_server.store.recordings import RecordingStore
from stream_server.store.repository import CallStore

ACME_NORTH = {"from": "+81311110000", "utm_source": "google", "tenant": "acme", "team": "north"}
ACME_SOUTH = {"from": "+81322220000", "utm_source": "yahoo", "tenant": "acme", "team": "south"}
GLOBEX = {"from": "+81633330000", "utm_source": "tiktok", "tenant": "globex", "team": "north"}


def build_app(tmp_path, **settings) -> FastAPI:
    store = CallStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    recordings = RecordingStore(tmp_path / "recordings")
    app = FastAPI()
    for module in (calls, alerts, reports, exports, supervisor, admin, console, media):
        app.include_router(module.router)
    app.state.settings = Settings(data_dir=tmp_path, evidence_key="k" * 32, **settings)
    app.state.services = SimpleNamespace(store=store, bus=MemoryBus(), recordings=recordings)
    app.state.active_calls = {}
    for call_id, meta in (("north", ACME_NORTH), ("south", ACME_SOUTH), ("globex", GLOBEX)):
        store.create_call(call_id, "twilio", ["caller"], meta)
        recorder = recordings.open_track(call_id, "caller", 8000)
        recorder.write((np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes())
        recorder.close()
        store.add_alert(Alert(call_id, "insult", "high", 0.9, "you idiot", 1.0, 2.0, meta))
        store.end_call(call_id, "completed", 1.0, False)
    return app


@pytest.fixture
def app(tmp_path):
    app = build_app(tmp_path)
    yield app
    app.state.services.store.close()


def token_for(app: FastAPI, name: str, role: str, tenant: str | None = None, team: str | None = None) -> str:
    people = AccessStore(app.state.services.store)
    people.add_user(name, role, tenant, team)
    return people.create_token(name, "test")[0]


def as_user(app: FastAPI, token: str | None) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_tokens_are_stored_only_as_hashes(app, tmp_path):
    token = token_for(app, "sato", "supervisor")
    assert token.startswith("sst_") and len(token) > 40
    database = sqlite3.connect(tmp_path / "db.sqlite")
    dumped = "\n".join(database.iterdump())
    database.close()
    assert token not in dumped and token[12:] not in dumped  # only the listed prefix is kept
    assert AccessStore(app.state.services.store).authenticate(token).user == "sato"
    assert AccessStore(app.state.services.store).authenticate(token + "x") is None


def test_revoked_expired_and_disabled_tokens_stop_working(app):
    people = AccessStore(app.state.services.store)
    revoked, disabled = token_for(app, "a", "qa"), token_for(app, "c", "qa")
    people.add_user("b", "qa")
    expired = people.create_token("b", "test", expires_days=1e-9)[0]  # 86 µs: gone by the request
    people.revoke_token(people.list_tokens("a")[0]["id"])
    people.disable_user("c")
    for token in (revoked, expired, disabled):
        with as_user(app, token) as http:
            assert http.get("/v1/calls").status_code == 401
    with pytest.raises(AccessError, match="disabled"):
        people.create_token("c")


def test_once_a_user_exists_the_dev_api_closes_to_anyone_without_a_token(app):
    with as_user(app, None) as http:
        assert http.get("/v1/calls").status_code == 200  # dev mode, nobody configured: open
        assert http.get("/v1/me").json()["kind"] == "anonymous"
    token_for(app, "sato", "supervisor")
    with as_user(app, None) as http:
        assert http.get("/v1/calls").status_code == 401
        assert http.get("/v1/console/config").json()["auth_required"] is True


def test_each_role_gets_only_its_own_powers(app):
    supervisor_, qa, admin_ = (token_for(app, n, r) for n, r in (("sup", "supervisor"), ("qa", "qa"), ("adm", "admin")))
    with as_user(app, supervisor_) as http:
        assert http.get("/v1/alerts").status_code == 200
        assert http.get("/v1/calls/north/evidence.zip").status_code == 200
        assert http.get("/v1/calls/north/training.zip").status_code == 403
        assert http.get("/v1/audit").status_code == 403
        assert http.get("/v1/users").status_code == 403
    with as_user(app, qa) as http:
        assert http.get("/v1/calls/north").status_code == 200
        assert http.get("/v1/calls/north/recording.wav").status_code == 200
        assert http.get("/v1/calls/north/training.zip").status_code == 200
        assert http.get("/v1/alerts").status_code == 403
        assert http.get("/v1/calls/north/evidence.zip").status_code == 403
        alert_id = app.state.services.store.list_alerts("north")[0]["id"]
        assert http.post(f"/v1/alerts/{alert_id}/actions", json={"action": "acknowledge"}).status_code == 403
        with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect("/v1/supervisor/ws") as ws:
            ws.send_json({"type": "auth", "token": qa})
            ws.receive_json()
        assert refused.value.code == 1008
    with as_user(app, admin_) as http:
        assert http.get("/v1/audit").status_code == 200
        assert {u["name"] for u in http.get("/v1/users").json()} == {"sup", "qa", "adm"}


def test_a_scoped_supervisor_never_sees_another_tenants_or_teams_calls(app):
    north = token_for(app, "kato", "supervisor", "acme", "north")
    acme = token_for(app, "ito", "supervisor", "acme")
    with as_user(app, north) as http:
        listed = http.get("/v1/calls")
        assert [c["id"] for c in listed.json()] == ["north"] and listed.headers["X-Total-Count"] == "1"
        assert http.get("/v1/calls", params={"phone": GLOBEX["from"]}).json() == []
        for call_id in ("south", "globex"):  # the same 404 as an unknown call: ids cannot be probed
            for path in ("", "/recording.wav", "/loudness", "/evidence.zip"):
                response = http.get(f"/v1/calls/{call_id}{path}")
                assert response.status_code == 404, (call_id, path)
        assert {a["call_id"] for a in http.get("/v1/alerts").json()} == {"north"}
        globex_alert = app.state.services.store.list_alerts("globex")[0]["id"]
        assert http.post(f"/v1/alerts/{globex_alert}/actions", json={"action": "false_alarm"}).status_code == 404
        sources = {row["ad_source"] for row in http.get("/v1/reports/ad-sources").json()["rows"]}
        assert sources == {"google"}
        assert {r["caller_number"] for r in http.get("/v1/reports/callers").json()["rows"]} == {ACME_NORTH["from"]}
    with as_user(app, acme) as http:
        assert sorted(c["id"] for c in http.get("/v1/calls").json()) == ["north", "south"]


def test_the_feed_carries_only_the_scope_s_calls(app):
    north = token_for(app, "kato", "supervisor", "acme", "north")
    bus = app.state.services.bus
    with as_user(app, None) as http, http.websocket_connect("/v1/supervisor/ws") as ws:
        ws.send_json({"type": "auth", "token": north})  # first-message auth: no token in the URL
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["you"]["name"] == "kato"
        events = [{"type": "transcript.final", "call_id": c, "text": f"from {c}"} for c in ("globex", "south", "north")]
        events += [{"type": "webhook.failed", "target": "ops"},  # server-wide: not for a scoped user
                   {"type": "call.ended", "call_id": "north"}]
        for event in events:
            http.portal.call(bus.publish, event)  # on the app's own event loop
        assert ws.receive_json() == {"type": "transcript.final", "call_id": "north", "text": "from north"}
        assert ws.receive_json()["type"] == "call.ended"
        ws.close()


def test_the_feed_refuses_a_missing_or_wrong_token(app):
    token_for(app, "kato", "supervisor")
    with as_user(app, None) as http:
        for first in ({"type": "auth", "token": "sst_wrong"}, {"type": "hello"}):
            with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect("/v1/supervisor/ws") as ws:
                ws.send_json(first)
                ws.receive_json()
            assert refused.value.code == 1008


def test_playback_and_exports_are_audited_and_only_admins_read_the_audit(app):
    qa, sup = token_for(app, "yamada", "qa"), token_for(app, "sato", "supervisor")
    admin_ = token_for(app, "boss", "admin")
    with as_user(app, qa) as http:
        assert http.get("/v1/calls/north/recording.wav", params={"track": "caller"}).status_code == 200
        assert http.get("/v1/calls/south/training.zip").status_code == 200
    with as_user(app, sup) as http:
        assert http.get("/v1/calls/globex/evidence.zip", params={"by": "Sato <b>"}).status_code == 200
        assert http.get("/v1/reports/callers", params={"format": "csv"}).status_code == 200
        assert http.get("/v1/calls/north").status_code == 200  # reading a transcript is not an export
    with as_user(app, admin_) as http:
        response = http.get("/v1/audit")
        entries = response.json()
    assert response.headers["X-Total-Count"] == "4"
    assert [(e["actor"], e["role"], e["action"], e["call_id"]) for e in reversed(entries)] == [
        ("yamada", "qa", "recording.play", "north"),
        ("yamada", "qa", "export.training", "south"),
        ("sato", "supervisor", "export.evidence", "globex"),
        ("sato", "supervisor", "export.report", None),
    ]
    assert entries[-1]["detail"] == {"tracks": ["caller"]} and entries[-1]["at"] and entries[-1]["client"]


def test_actions_are_recorded_under_the_token_s_own_user_not_a_claimed_name(app):
    token = token_for(app, "kato", "supervisor")
    alert_id = app.state.services.store.list_alerts("north")[0]["id"]
    with as_user(app, token) as http:
        body = http.post(f"/v1/alerts/{alert_id}/actions", json={"action": "escalate", "by": "the boss"}).json()
    assert body["acknowledged_by"] == "kato"
    assert [a["by"] for a in app.state.services.store.list_actions("north")] == ["kato"]


def test_admins_manage_users_and_tokens_over_the_api_and_each_change_is_audited(app):
    admin_ = token_for(app, "boss", "admin")
    with as_user(app, admin_) as http:
        assert http.post("/v1/users", json={"name": "new", "role": "qa"}).status_code == 201
        assert http.post("/v1/users", json={"name": "new", "role": "qa"}).status_code == 409
        assert http.post("/v1/users", json={"name": "x", "role": "root"}).status_code == 422
        created = http.post("/v1/users/new/tokens", json={"label": "laptop"}).json()
        assert http.post("/v1/users/nobody/tokens", json={}).status_code == 404
        listed = http.get("/v1/tokens", params={"user": "new"}).json()
        assert "token" not in listed[0] and listed[0]["prefix"] == created["token"][:12]
        with as_user(app, created["token"]) as newcomer:
            assert newcomer.get("/v1/me").json()["role"] == "qa"
            assert http.delete(f"/v1/tokens/{created['id']}").status_code == 200
            assert newcomer.get("/v1/me").status_code == 401
        actions = [e["action"] for e in http.get("/v1/audit").json()]
    assert actions == ["token.revoke", "token.create", "user.add"]


def test_the_cli_adds_users_and_prints_a_token_that_works(app, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STREAM_SERVER_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert cli.main(["users", "add", "tanaka", "--role", "supervisor", "--tenant", "acme"]) == 0
    assert cli.main(["tokens", "create", "tanaka", "--label", "console"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    with as_user(app, token) as http:
        assert sorted(c["id"] for c in http.get("/v1/calls").json()) == ["north", "south"]
    with pytest.raises(SystemExit, match="exists"):
        cli.main(["users", "add", "tanaka", "--role", "qa"])
    entries, _ = AccessStore(app.state.services.store).audit_entries()
    assert [e["action"] for e in entries] == ["token.create", "user.add"] and entries[0]["actor"].startswith("cli")


def test_production_mode_closes_the_api_and_unconfigured_carriers(tmp_path):
    app = build_app(tmp_path, mode="production", vonage_token="v-secret")
    with as_user(app, None) as http:
        assert http.get("/v1/calls").status_code == 401  # no token, no user: closed, not open
        assert http.get("/v1/console/config").json()["auth_required"] is True
        with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect("/v1/media/twilio") as ws:
            ws.receive_text()
        assert refused.value.code == 1008 and "not configured" in refused.value.reason
        with pytest.raises(WebSocketDisconnect) as wrong, http.websocket_connect("/v1/media/vonage") as ws:
            ws.receive_text()
        assert wrong.value.code == 1008 and wrong.value.reason == "invalid token"
    assert app.state.active_calls == {}
    app.state.services.store.close()


def test_dev_mode_will_not_listen_beyond_loopback_while_anything_is_open():
    assert exposure.refusal(Settings(host="127.0.0.1"), has_users=False) is None
    refused = exposure.refusal(Settings(host="0.0.0.0"), has_users=True)
    assert refused and "0.0.0.0" in refused and "/v1/media/twilio" in refused and "REST API" not in refused
    closed = Settings(host="0.0.0.0", api_token="t", twilio_auth_token="a", telnyx_stream_token="b", vonage_token="c",
                      audiohook_api_key="d", stream_token="e")
    assert exposure.refusal(closed, has_users=False) is None
    assert exposure.refusal(Settings(host="0.0.0.0", mode="production"), has_users=False) is None
    audiosocket_any = Settings(mode="production", audiosocket_port=9092, audiosocket_allow="*")
    assert "AUDIOSOCKET_ALLOW" in exposure.refusal(audiosocket_any, has_users=True)
    with pytest.raises(SystemExit, match="refuses to listen on 0.0.0.0"):
        cli.main(["serve", "--host", "0.0.0.0", "--port", "18761", "--data-dir", "/tmp/never-started"])
