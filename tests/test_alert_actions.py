"""Supervisor actions over HTTP: `POST /v1/alerts/{id}/actions` stores who did what and when,
publishes `alert.action` on the bus for every open console, and refuses what it cannot do with
a clear status. A small app with the real alerts router, a real SQLite store and the real
in-process bus (no ASR model)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stream_server.alerts.alert import Alert
from stream_server.api import alerts, console
from stream_server.bus.memory import MemoryBus
from stream_server.config import Settings
from stream_server.store.repository import CallStore

TOKEN = "actions-token"
META = {"from": "+81312345678", "utm_source": "google"}


@pytest.fixture
def app(tmp_path):
    store = CallStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    app = FastAPI()
    app.include_router(alerts.router)
    app.include_router(console.router)
    app.state.settings = Settings(api_token=TOKEN, data_dir=tmp_path, timezone="Europe/London", ui_language="en")
    app.state.services = SimpleNamespace(store=store, bus=MemoryBus())
    store.create_call("c1", "twilio", ["caller"], META)
    yield app
    store.close()


def client(app: FastAPI, token: str | None = TOKEN) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"} if token else {})


def raise_alert(app: FastAPI, category: str = "threat") -> Alert:
    alert = Alert("c1", category, "high", 0.9, "I will find you", 3.0, 4.0, META)
    app.state.services.store.add_alert(alert)
    return alert


def test_each_action_is_stored_with_who_and_published(app):
    alert = raise_alert(app)
    with app.state.services.bus.subscribe() as feed, client(app) as http:
        response = http.post(f"/v1/alerts/{alert.id}/actions",
                             json={"action": "escalate", "by": "sato", "note": "threat to the agent's family"})
        assert response.status_code == 200
        assert response.json()["status"] == "escalated" and response.json()["acknowledged_by"] == "sato"
        event = feed.queue.get_nowait()
    assert event == {"type": "alert.action", "call_id": "c1", "alert_id": alert.id, "action": "escalate",
                     "status": "escalated", "by": "sato", "note": "threat to the agent's family"}
    [action] = app.state.services.store.list_actions("c1")
    assert (action["action"], action["by"], action["note"]) == ("escalate", "sato", "threat to the agent's family")


def test_open_alerts_can_be_listed_by_status(app):
    handled, waiting = raise_alert(app), raise_alert(app, "insult")
    with client(app) as http:
        http.post(f"/v1/alerts/{handled.id}/actions", json={"action": "false_alarm", "by": "tanaka"})
        assert [a["id"] for a in http.get("/v1/alerts", params={"status": "open"}).json()] == [waiting.id]
        assert [a["id"] for a in http.get("/v1/alerts", params={"status": "false_alarm"}).json()] == [handled.id]


def test_the_old_acknowledge_route_is_an_action_too(app):
    alert = raise_alert(app)
    with client(app) as http:
        assert http.post(f"/v1/alerts/{alert.id}/ack", json={"by": "suzuki"}).json()["status"] == "acknowledged"
    assert [a["action"] for a in app.state.services.store.list_actions("c1")] == ["acknowledge"]


def test_what_cannot_be_done_is_refused_clearly(app):
    alert = raise_alert(app)
    with client(app) as http:
        missing = http.post("/v1/alerts/nope/actions", json={"action": "acknowledge", "by": "x"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        unknown = http.post(f"/v1/alerts/{alert.id}/actions", json={"action": "delete", "by": "x"})
        assert unknown.status_code == 422
        too_long = http.post(f"/v1/alerts/{alert.id}/actions", json={"action": "escalate", "by": "x" * 129})
        assert too_long.status_code == 422
    with client(app, token="wrong") as http:
        assert http.post(f"/v1/alerts/{alert.id}/actions", json={"action": "acknowledge"}).status_code == 401
    assert app.state.services.store.list_actions("c1") == []  # nothing refused was stored


def test_console_config_tells_the_pages_language_zone_and_rules(app):
    with client(app, token=None) as http:  # the sign-in page needs it before it has a token
        config = http.get("/v1/console/config").json()
    assert config["language"] == "en" and config["timezone"] == "Europe/London" and config["auth_required"] is True
    assert config["prolonged_call_minutes"] == 30.0 and "repeat_caller" in config["categories"]


def test_an_unknown_time_zone_is_refused_at_start():
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Tokio'"):
        Settings(timezone="Asia/Tokio")
