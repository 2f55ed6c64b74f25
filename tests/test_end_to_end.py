"""A real server, real sockets, real Whisper and the real ONNX classifier, fixture calls in.

Every call is streamed at real-time pace by `stream-server simulate`; a supervisor socket
listens throughout. The two abusive calls run together first (two live calls keep the
2-core machine near capacity, the realistic case for alert latency and partials), then
the four calm/frustrated calls and a dropped call together (deliberate overload: agent
transcription is deferred, nothing may be lost), then a coercion (土下座), a threat and a
shouting-only call together.
"""

import asyncio
import io
import json
import wave

import pytest
from fixture_calls import (
    ALL_CALL_NAMES,
    CALL_NAMES,
    NEW_CALL_NAMES,
    load_call,
    overlaps,
    simulate_args,
)
from live_server import run_calls

from stream_server.classifiers.text import TextAbuseClassifier, default_model_path

DROP_AFTER = 12.0


@pytest.fixture(scope="module")
def runs(live_server):
    abusive = {name: simulate_args(name) for name in ("en_abusive", "ja_abusive")}
    later = {name: simulate_args(name) for name in LATER_CALLS}
    others = {name: simulate_args(name) for name in CALL_NAMES if name not in abusive and name not in later}
    others["dropped"] = simulate_args("en_abusive", "--drop-after", str(DROP_AFTER))
    return {**asyncio.run(run_calls(live_server, abusive)), **asyncio.run(run_calls(live_server, others)),
            **asyncio.run(run_calls(live_server, later))}


LATER_CALLS = NEW_CALL_NAMES  # ja_coercion, en_threat, en_shouting
WORD_CATEGORIES = {"insult", "threat", "exposure", "coercion", "discrimination", "sexual", "profanity"}


# Lines whose abusive word Whisper base does not hear in the synthetic voice: 土下座 comes out
# as 溶けた in every cut tried (tests/fixtures/calls/README.md). The caller is also shouting
# there, so the line must still page someone, by voice; the call's other coercion line must
# alert as coercion.
LOST_BY_ASR = {"床に頭をつけて、土下座しろ。"}


@pytest.mark.parametrize("name", ["en_abusive", "ja_abusive", "ja_coercion", "en_threat"])
def test_abusive_call_alerts_on_the_abusive_utterance(runs, name):
    run, call = runs[name], load_call(name)
    alerts = run.of_type("alert")
    text_alerts = [a for a in alerts if a["rule"] in ("text", "text+voice")]
    assert text_alerts, f"no alert; transcript: {[e['text'] for e in run.of_type('transcript.final')]}"
    abusive = call.utterances("caller", abusive=True)
    for alert in text_alerts:
        assert alert["call_id"] == run.call_id
        assert alert["category"] in WORD_CATEGORIES
        assert alert["severity"] in ("low", "medium", "high", "critical")
        assert 0.0 <= alert["score"] <= 1.0 and alert["text"]
        assert alert["metadata"]["utm_source"] == call.metadata["utm_source"]
        assert alert["metadata"]["tracking_number"] == call.metadata["tracking_number"]
        assert alert["metadata"]["from"] == call.metadata["from"]
        # Alerts point at abuse, never at the calm lines around it.
        assert any(overlaps(alert["start"], alert["end"], u["start"], u["end"]) for u in abusive), alert
    # Every abusive line is covered: an alert of its category overlaps it, or it falls in the
    # cooldown (30 s) of an earlier alert of that category (one outburst, one alert).
    for u in abusive:
        lost = u["text"] in LOST_BY_ASR
        covered = [
            a for a in (alerts if lost else text_alerts)
            if (lost or a["category"] in u["categories"])
            and (overlaps(a["start"], a["end"], u["start"], u["end"]) or a["end"] <= u["start"] < a["end"] + 30.0)
        ]
        assert covered, (u["text"], [(a["category"], a["start"], a["end"], a["text"]) for a in alerts])
    for category in {c for u in abusive for c in u["categories"]}:
        assert category in {a["category"] for a in text_alerts}, (category, text_alerts)
    # Raised voice in these calls belongs to the abusive lines: never a shouting alert elsewhere.
    for alert in alerts:
        if alert["category"] == "shouting":
            assert any(overlaps(alert["start"], alert["end"], u["start"], u["end"]) for u in abusive), alert


def test_shouting_without_abusive_words_alerts_as_shouting_only(runs):
    """The caller never says an abusive word; the voice model (raised voice against the caller's
    own calm lines) must page the supervisor, and the words must not."""
    run, call = runs["en_shouting"], load_call("en_shouting")
    alerts = run.of_type("alert")
    heard = [(e["text"], e["scores"].get("shouting")) for e in run.of_type("transcript.final") if e["track"] == "caller"]
    assert alerts, f"no alert; caller lines and shouting scores: {heard}"
    shouted = call.utterances("caller", abusive=True)
    assert all(set(u["categories"]) == {"shouting"} for u in shouted)
    # The words as spoken never alert (the classifier, on the script) ...
    scripted = {u["text"] for u in call.utterances("caller")}
    classifier = TextAbuseClassifier(default_model_path())
    thresholds = classifier.thresholds
    for text in scripted:
        over = {c: p for c, p in classifier.score(text).items() if p >= thresholds[c]}
        assert not over, (text, over)
    # ... so a word alert here can only come from Whisper mishearing a shouted line (seen once on
    # CI hardware); it must then quote words the caller did not say, and the voice still alerts.
    voice_alerts = [a for a in alerts if a["rule"] == "voice"]
    for alert in alerts:
        if alert["rule"] != "voice":
            assert alert["text"] not in scripted, (alert, heard)
            print(f"ASR misheard a shouted line as {alert['text']!r} ({alert['category']})")
            continue
        assert (alert["category"], alert["track"]) == ("shouting", "caller"), alert
        assert any(overlaps(alert["start"], alert["end"], u["start"], u["end"]) for u in shouted), (alert, heard)
    alerts = voice_alerts
    assert alerts, f"no voice alert; caller lines and shouting scores: {heard}"
    first = shouted[0]
    assert any(overlaps(a["start"], a["end"], first["start"], first["end"]) for a in alerts), (first, alerts)
    # Every final carries the voice score next to the word scores, for the evidence record.
    assert all("shouting" in e["scores"] for e in run.of_type("transcript.final") if e["track"] == "caller")


@pytest.mark.parametrize("name", ["en_calm", "en_frustrated", "ja_calm", "ja_frustrated"])
def test_calm_and_polite_but_frustrated_calls_raise_no_alert(runs, name):
    run = runs[name]
    assert run.ended["status"] == "ended"
    finals = run.of_type("transcript.final")
    assert finals, "the call was transcribed"
    assert run.of_type("alert") == [], [(a["category"], a["text"]) for a in run.of_type("alert")]


@pytest.mark.parametrize("name", ALL_CALL_NAMES)
def test_every_event_is_for_its_call_and_transcripts_carry_audio_time(runs, name):
    run, call = runs[name], load_call(name)
    assert [e["type"] for e in run.events][0] == "call.started"
    assert run.events[-1]["type"] == "call.ended"
    assert all(e["call_id"] == run.call_id for e in run.events)
    started = run.of_type("call.started")[0]
    assert started["tracks"] == ["caller", "agent"] and started["carrier"] == "twilio"
    for final in run.of_type("transcript.final"):
        assert final["track"] in ("caller", "agent")
        truth = call.utterances(final["track"])
        assert any(overlaps(final["start"], final["end"], u["start"], u["end"]) for u in truth), final


def test_agent_track_is_transcribed_too(runs):
    finals = runs["en_calm"].of_type("transcript.final")
    assert {"caller", "agent"} <= {f["track"] for f in finals}


def test_partials_arrive_while_the_caller_is_still_speaking(runs):
    partials = [(name, p) for name in ("en_abusive", "ja_abusive") for p in runs[name].of_type("transcript.partial")]
    assert partials, "no transcript.partial at all"
    assert all(p["track"] == "caller" and p["text"] for _, p in partials)
    for name, partial in partials:  # each partial precedes the final of its utterance
        run = runs[name]
        later = run.events[run.events.index(partial) :]
        finals = [e for e in later if e["type"] == "transcript.final" and e["start"] == partial["start"]]
        assert finals and finals[0]["end"] >= partial["end"], partial


def test_language_is_detected_per_call(live_server, runs):
    with live_server.client() as http:
        for name in ALL_CALL_NAMES:
            call = http.get(f"/v1/calls/{runs[name].call_id}").json()
            assert call["language"] == load_call(name).truth["language"], name


def test_call_segments_and_alerts_are_retrievable_over_rest(live_server, runs):
    run, call = runs["ja_abusive"], load_call("ja_abusive")
    with live_server.client() as http:
        detail = http.get(f"/v1/calls/{run.call_id}")
        assert detail.status_code == 200
        body = detail.json()
        assert body["id"] == run.call_id and body["metadata"]["utm_campaign"] == call.metadata["utm_campaign"]
        assert body["status"] == "ended" and body["end_reason"] == "completed"
        assert body["duration"] == pytest.approx(call.truth["duration"], abs=0.5)
        assert len(body["segments"]) == len(run.of_type("transcript.final"))
        assert all("insult" in s["scores"] and "threat" in s["scores"] for s in body["segments"])
        assert {a["id"] for a in body["alerts"]} == {a["id"] for a in run.of_type("alert")}
        assert body["max_score"] >= 0.5

        listed = http.get("/v1/calls", params={"phone": call.metadata["from"]}).json()
        assert run.call_id in [c["id"] for c in listed]
        by_source = http.get("/v1/calls", params={"ad_source": call.metadata["utm_source"], "min_score": 0.5}).json()
        assert run.call_id in [c["id"] for c in by_source]
        calm = runs["ja_calm"].call_id
        assert calm not in [c["id"] for c in http.get("/v1/calls", params={"min_score": 0.5}).json()]

        alerts = http.get("/v1/alerts", params={"call_id": run.call_id}).json()
        assert alerts and all(a["acknowledged_at"] is None for a in alerts)
        acked = http.post(f"/v1/alerts/{alerts[0]['id']}/ack", json={"by": "supervisor-sato"})
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "supervisor-sato"
        assert alerts[0]["id"] not in [a["id"] for a in http.get("/v1/alerts", params={"acknowledged": False}).json()]


def test_recording_has_both_tracks_for_the_whole_call(live_server, runs):
    run, call = runs["en_calm"], load_call("en_calm")
    with live_server.client() as http:
        response = http.get(f"/v1/calls/{run.call_id}/recording.wav")
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(response.content)) as wav:
            assert wav.getnchannels() == 2 and wav.getframerate() == 8000
            assert wav.getnframes() / 8000 == pytest.approx(call.truth["duration"], abs=0.1)
        caller_only = http.get(f"/v1/calls/{run.call_id}/recording.wav", params={"track": "caller"})
        with wave.open(io.BytesIO(caller_only.content)) as wav:
            assert wav.getnchannels() == 1
        assert http.get("/v1/calls/nope/recording.wav").status_code == 404


def test_dropped_socket_keeps_the_recording_and_marks_the_call_interrupted(live_server, runs):
    run = runs["dropped"]
    assert run.ended["status"] == "interrupted" and run.ended["reason"] == "disconnected"
    with live_server.client() as http:
        body = http.get(f"/v1/calls/{run.call_id}").json()
        assert body["status"] == "interrupted" and body["end_reason"] == "disconnected"
        response = http.get(f"/v1/calls/{run.call_id}/recording.wav", params={"track": "caller"})
    with wave.open(io.BytesIO(response.content)) as wav:
        assert wav.getnframes() / 8000 == pytest.approx(DROP_AFTER, abs=0.1)
    # What was said before the drop was still transcribed (the first abusive line is at ~11.5 s).
    assert run.of_type("transcript.final")


def test_simulate_reports_each_call(runs):
    out = json.loads(runs["en_calm"].simulate_output.strip().splitlines()[-1])
    assert out["completed"] is True and out["close_code"] == 1000
    dropped = json.loads(runs["dropped"].simulate_output.strip().splitlines()[-1])
    assert dropped["completed"] is False
