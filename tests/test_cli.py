"""The command line as a user runs it."""

import json
import subprocess
import sys

from fixture_calls import load_call


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stream_server.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout,
    )


def test_classify_text_prints_one_json_object_per_line():
    lines = ["You are a useless idiot.", "I would like a refund, please.", "殺すぞ、覚えておけよ", "", "ありがとうございました"]
    result = run_cli("classify-text", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == [line for line in lines if line]  # blank lines skipped
    for record in records:
        assert set(record) == {"text", "abusive", "score", "scores"}
        assert {"insult", "threat"} <= set(record["scores"])
        assert record["score"] == max(record["scores"].values())
    assert [r["abusive"] for r in records] == [True, False, True, False]


def test_analyze_prints_the_scored_transcript_with_alerts():
    call = load_call("en_abusive")
    result = run_cli("analyze", str(call.caller_path), "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) >= len(call.utterances("caller")) - 1
    assert all(f["track"] == "caller" for f in finals)
    assert "idiot" in " ".join(f["text"].lower() for f in finals)
    alerts = [e for e in events if e["type"] == "alert"]
    first_abuse = call.utterances("caller", abusive=True)[0]
    assert any(a["start"] < first_abuse["end"] and first_abuse["start"] < a["end"] for a in alerts)


def test_analyze_rejects_a_file_that_is_not_audio(tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    result = run_cli("analyze", str(bogus))
    assert result.returncode != 0
    assert "not a readable audio file" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_reports_a_refused_connection_without_a_traceback():
    call = load_call("en_calm")
    result = run_cli("simulate", str(call.caller_path), "--url", "ws://127.0.0.1:9/v1/media/twilio")
    assert result.returncode == 1
    assert "error" in json.loads(result.stdout.splitlines()[-1])


def test_models_lists_the_offline_models():
    result = run_cli("models")
    assert result.returncode == 0
    names = {json.loads(line)["name"]: json.loads(line) for line in result.stdout.splitlines()}
    assert names["base"]["installed"] and names["tiny.en"]["installed"]


def test_classify_text_uses_the_servers_alert_threshold_override():
    import os

    env = dict(os.environ, STREAM_SERVER_ALERT_THRESHOLD="0.999999")
    result = subprocess.run(
        [sys.executable, "-m", "stream_server.cli", "classify-text"],
        input="I would like a refund, please.\n", capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["abusive"] is False
    env["STREAM_SERVER_ALERT_THRESHOLD"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "stream_server.cli", "classify-text"],
        input="I would like a refund, please.\n", capture_output=True, text=True, timeout=120, env=env,
    )
    assert json.loads(result.stdout)["abusive"] is True  # every score is >= 0
