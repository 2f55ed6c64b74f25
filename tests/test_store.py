"""Calls, segments and alerts, on SQLite (the default) and on a real PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from databases import KINDS, store_url

from stream_server.alerts.alert import Alert
from stream_server.media.events import CallStarted
from stream_server.store.repository import CallFilter, CallStore

META = {"from": "+81312345678", "utm_source": "google", "utm_campaign": "spring", "tracking_number": "+81120000001"}


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    s = CallStore(store_url(request.param, tmp_path))
    yield s
    s.close()


def test_call_lifecycle_with_segments_and_alerts(store):
    store.create_call("c1", "twilio", ["caller", "agent"], META, "CA1", "MZ1")
    store.add_segment("c1", "caller", 1.0, 2.0, "hello", "en", {"insult": 0.1}, False)
    store.add_segment("c1", "caller", 3.0, 4.5, "you idiot", "en", {"insult": 0.9}, True, -20.0, 6.0)
    store.add_segment("c1", "agent", 2.0, 3.0, "idiot check", "en", {"insult": 0.95}, True)
    alert = Alert("c1", "insult", "medium", 0.9, "you idiot", 3.0, 4.5, META)
    store.add_alert(alert)
    store.end_call("c1", "completed", 12.5, abnormal=False, stats={"bad_messages": 0})

    call = store.get_call("c1")
    assert call["metadata"] == META
    assert (call["caller_number"], call["ad_source"], call["campaign"]) == ("+81312345678", "google", "spring")
    assert call["status"] == "ended" and call["duration"] == 12.5 and call["end_reason"] == "completed"
    assert call["max_score"] == 0.9  # the agent's words don't make a call abusive
    assert [s["text"] for s in call["segments"]] == ["hello", "idiot check", "you idiot"]
    assert call["alerts"][0]["id"] == alert.id and call["alerts"][0]["metadata"] == META
    assert call["alert_count"] == 1


def test_carrier_strings_longer_than_their_columns_are_bounded_not_refused(store):
    """PostgreSQL refuses a value over a VARCHAR's length (and NUL anywhere): a refused insert
    would lose the call, so the store bounds what the carrier sent."""
    started = CallStarted("telnyx", ("caller",), {"from": "+81" + "1" * 200, "utm_campaign": "c\x00" * 300},
                          "v3:" + "x" * 500, "s" * 500)
    store.create_call("c1", started.carrier, ["caller"], started.metadata, started.carrier_call_id, started.stream_id)
    call = store.get_call("c1")
    assert call["carrier_call_id"] == ("v3:" + "x" * 500)[:128] and call["stream_id"] == "s" * 128
    assert call["caller_number"] == ("+81" + "1" * 200)[:64] and call["campaign"] == "c" * 256


def test_abnormal_end_is_interrupted(store):
    store.create_call("c1", "twilio", ["caller"], META)
    store.end_call("c1", "disconnected", 3.0, abnormal=True)
    assert store.get_call("c1")["status"] == "interrupted"


def test_filters(store):
    store.create_call("a", "twilio", ["caller"], META)
    store.create_call("b", "twilio", ["caller"], {"from": "+819000", "utm_source": "yahoo"})
    store.add_segment("a", "caller", 0, 1, "idiot", "en", {"insult": 0.8}, True)
    ids = lambda **kw: sorted(c["id"] for c in store.list_calls(CallFilter(**kw)))
    assert ids() == ["a", "b"]
    assert ids(phone="+819000") == ["b"]
    assert ids(ad_source="google") == ["a"]
    assert ids(min_score=0.5) == ["a"]
    assert ids(campaign="spring") == ["a"]
    assert ids(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert ids(until=datetime.now(UTC) + timedelta(hours=1)) == ["a", "b"]
    assert ids(status="active") == ["a", "b"]
    assert len(store.list_calls(CallFilter(limit=1))) == 1


def test_acknowledge_records_the_first_acknowledger(store):
    store.create_call("c1", "twilio", ["caller"], META)
    alert = Alert("c1", "threat", "high", 0.8, "I will hurt you", 1.0, 2.0, META)
    store.add_alert(alert)
    assert store.list_alerts(acknowledged=False)[0]["id"] == alert.id
    first = store.acknowledge_alert(alert.id, "sato")
    second = store.acknowledge_alert(alert.id, "tanaka")
    assert first["acknowledged_by"] == second["acknowledged_by"] == "sato"
    assert store.list_alerts(acknowledged=False) == []
    assert store.acknowledge_alert("nope", "x") is None


def test_supervisor_actions_are_kept_with_who_when_and_note(store):
    store.create_call("c1", "twilio", ["caller"], {**META, "agent": "agent-suzuki"})
    threat = Alert("c1", "threat", "high", 0.8, "I will hurt you", 1.0, 2.0, META)
    insult = Alert("c1", "insult", "medium", 0.7, "you idiot", 3.0, 4.0, META)
    store.add_alert(threat)
    store.add_alert(insult)
    store.act_on_alert(threat.id, "acknowledge", "sato")
    escalated = store.act_on_alert(threat.id, "escalate", "sato", "caller named the agent's home town")
    dismissed = store.act_on_alert(insult.id, "false_alarm", "tanaka")

    assert escalated["status"] == "escalated" and escalated["acknowledged_by"] == "sato"
    assert dismissed["status"] == "false_alarm" and dismissed["acknowledged_by"] == "tanaka"
    assert [a["id"] for a in store.list_alerts(status="escalated")] == [threat.id]
    call = store.get_call("c1")
    assert call["agent"] == "agent-suzuki"
    assert [(a["alert_id"], a["action"], a["by"], a["note"]) for a in call["actions"]] == [
        (threat.id, "acknowledge", "sato", ""),
        (threat.id, "escalate", "sato", "caller named the agent's home town"),
        (insult.id, "false_alarm", "tanaka", ""),
    ]
    assert all(datetime.fromisoformat(a["at"]).tzinfo is not None for a in call["actions"])
    with pytest.raises(ValueError, match="unknown action"):
        store.act_on_alert(threat.id, "delete", "mallory")


def test_repeat_caller_count_and_startup_recovery(store):
    for i in range(3):
        store.create_call(f"c{i}", "twilio", ["caller"], META)
    assert store.count_recent_calls("+81312345678", 24) == 3
    assert sorted(store.mark_unfinished_calls_interrupted()) == ["c0", "c1", "c2"]
    assert store.get_call("c0")["end_reason"] == "server_restart"


def test_a_restarting_node_marks_only_its_own_unfinished_calls_interrupted(store):
    """Two ingest nodes share the database: a restart of one must not end the other's live calls."""
    other = CallStore(str(store.engine.url.render_as_string(hide_password=False)), node="ingest-b")
    try:
        mine = CallStore(str(store.engine.url.render_as_string(hide_password=False)), node="ingest-a")
        mine.create_call("a1", "twilio", ["caller"], META)
        other.create_call("b1", "twilio", ["caller"], META)
        assert mine.mark_unfinished_calls_interrupted() == ["a1"]
        mine.close()
        assert store.get_call("a1")["status"] == "interrupted" and store.get_call("b1")["status"] == "active"
    finally:
        other.close()
