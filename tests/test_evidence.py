"""Evidence and training exports, end to end: real server, real Whisper, real fixture calls.

Two calls are streamed once for the module: `en_abusive` (alerts, one acknowledged by a
supervisor) and `en_phone` (the caller says their phone number). Their exports are downloaded
over the API and checked with `stream-server verify` run as a user would run it.
"""

import asyncio
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import wave
import zipfile

import numpy as np
import pytest
from fixture_calls import load_call, overlaps, simulate_args
from live_server import run_calls

AGENT_NAME = "<i>Emma</i> & co"  # caller-side metadata: the HTML must show it, not render it
SUPERVISOR = "supervisor-<b>sato</b>"
EVIDENCE_FILES = {"recording/caller.wav", "recording/agent.wav", "transcript.json", "transcript.html",
                  "actions.json", "manifest.json", "manifest.sig"}


@pytest.fixture(scope="module")
def calls(live_server):
    runs = asyncio.run(run_calls(live_server, {
        "en_abusive": simulate_args("en_abusive", "--param", f"agent={AGENT_NAME}"),
        "en_phone": simulate_args("en_phone"),
    }))
    abusive = runs["en_abusive"]
    assert abusive.of_type("alert"), [e["text"] for e in abusive.of_type("transcript.final")]
    with live_server.client() as http:
        acked = http.post(f"/v1/alerts/{abusive.of_type('alert')[0]['id']}/ack", json={"by": SUPERVISOR})
        assert acked.status_code == 200, acked.text
    return {name: run.call_id for name, run in runs.items()}


def download(server, call_id, kind, tmp_path, **params):
    with server.client() as http:
        response = http.get(f"/v1/calls/{call_id}/{kind}.zip", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="call-{call_id}-{kind}.zip"'
    path = tmp_path / f"{kind}.zip"
    path.write_bytes(response.content)
    return path


def verify(path, key_file=None):
    """`stream-server verify` as a user runs it; (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if k != "STREAM_SERVER_EVIDENCE_KEY"}
    args = [sys.executable, "-m", "stream_server.cli", "verify", str(path)]
    args += ["--key-file", str(key_file)] if key_file else []
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    return done.returncode, done.stdout + done.stderr


def rewrite(path, out, changes):
    """A copy of the ZIP at `path` with members replaced: {name: new bytes}."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, changes.get(info.filename, src.read(info.filename)))
    return out


def flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def samples(wav_bytes: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def recording(server, call_id, track):
    return server.data_dir / "recordings" / call_id / f"{track}.wav"


@pytest.fixture(scope="module")
def evidence(live_server, calls, tmp_path_factory):
    return download(live_server, calls["en_abusive"], "evidence", tmp_path_factory.mktemp("evidence"),
                    by="supervisor-sato")


@pytest.fixture
def key_file(live_server):
    return live_server.data_dir / "evidence.key"


def test_seal_taken_at_call_end_matches_the_recordings_on_disk(live_server, calls):
    with live_server.client() as http:
        for call_id in calls.values():
            call = http.get(f"/v1/calls/{call_id}").json()
            assert call["status"] == "ended" and call["evidence"]["sealed_at"]
            assert call["evidence"]["files"] == {
                f"{track}.wav": hashlib.sha256(recording(live_server, call_id, track).read_bytes()).hexdigest()
                for track in ("caller", "agent")
            }


def test_evidence_export_holds_the_stored_call_and_verifies(live_server, calls, evidence, key_file):
    call_id = calls["en_abusive"]
    with live_server.client() as http:
        call = http.get(f"/v1/calls/{call_id}").json()
    with zipfile.ZipFile(evidence) as z:
        assert set(z.namelist()) == EVIDENCE_FILES
        for track in ("caller", "agent"):  # byte for byte what was recorded
            assert z.read(f"recording/{track}.wav") == recording(live_server, call_id, track).read_bytes()
        manifest = json.loads(z.read("manifest.json"))
        transcript = json.loads(z.read("transcript.json"))
        actions = json.loads(z.read("actions.json"))
    assert manifest["format"] == "stream_server-evidence/1" and manifest["call_id"] == call_id
    assert manifest["exported_by"] == "supervisor-sato (via api-token)"
    assert manifest["sealed"] == call["evidence"] and not manifest["redacted"]
    assert set(manifest["files"]) == EVIDENCE_FILES - {"manifest.json", "manifest.sig"}
    assert transcript["segments"] == call["segments"] and transcript["call"]["id"] == call_id
    assert {(a["id"], a["status"]) for a in transcript["alerts"]} == {(a["id"], a["status"]) for a in call["alerts"]}
    assert "acknowledged" in {a["status"] for a in transcript["alerts"]}
    assert [(a["action"], a["by"]) for a in actions] == [("acknowledge", SUPERVISOR)]

    code, out = verify(evidence, key_file)
    assert code == 0, out
    assert out.startswith("OK: 5 files match the manifest") and "signature is valid" in out, out
    assert "match the seal taken at call end" in out, out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # created by the server, private


def test_transcript_html_is_bilingual_marks_abuse_and_escapes_what_callers_control(evidence, calls, live_server):
    with zipfile.ZipFile(evidence) as z:
        html = z.read("transcript.html").decode("utf-8")
        transcript = json.loads(z.read("transcript.json"))
    assert "Caller / 発信者" in html and "Agent / 担当者" in html and "Alerts / アラート" in html
    assert "yahoo" in html and "mobile_plan_brand" in html  # ad source and campaign
    flagged = sum(s["abusive"] for s in transcript["segments"])
    assert flagged and html.count('<tr class="flagged">') == flagged
    assert "Acknowledged / 確認済み" in html
    for text in (AGENT_NAME, SUPERVISOR):
        assert text not in html
    assert "&lt;i&gt;Emma&lt;/i&gt; &amp; co" in html and "supervisor-&lt;b&gt;sato&lt;/b&gt;" in html


def test_verify_names_a_changed_recording(evidence, tmp_path, key_file):
    with zipfile.ZipFile(evidence) as z:
        changed = flip_a_byte(z.read("recording/caller.wav"))
    code, out = verify(rewrite(evidence, tmp_path / "x.zip", {"recording/caller.wav": changed}), key_file)
    assert code == 1, out
    assert "FAILED recording/caller.wav: sha256 mismatch (manifest " in out, out
    assert "FAILED recording/caller.wav: differs from the hash sealed at call end" in out, out
    assert not re.search(r"FAILED (?!recording/caller\.wav)", out), out  # nothing else is blamed


def test_verify_names_a_changed_transcript(evidence, tmp_path, key_file):
    with zipfile.ZipFile(evidence) as z:
        changed = z.read("transcript.json").replace(b'"abusive": true', b'"abusive": false', 1)
    code, out = verify(rewrite(evidence, tmp_path / "x.zip", {"transcript.json": changed}), key_file)
    assert code == 1, out
    assert re.findall(r"FAILED (\S+):", out) == ["transcript.json"], out


def test_a_manifest_rewritten_to_match_is_caught_by_the_seal_and_the_signature(evidence, tmp_path, key_file):
    with zipfile.ZipFile(evidence) as z:
        audio = flip_a_byte(z.read("recording/caller.wav"))
        manifest = json.loads(z.read("manifest.json"))
    manifest["files"]["recording/caller.wav"]["sha256"] = hashlib.sha256(audio).hexdigest()
    forged = rewrite(evidence, tmp_path / "x.zip", {"recording/caller.wav": audio,
                                                    "manifest.json": json.dumps(manifest).encode()})
    code, out = verify(forged, key_file)
    assert code == 1, out
    assert re.findall(r"FAILED (\S+):", out) == ["recording/caller.wav", "manifest.sig"], out
    assert "differs from the hash sealed at call end" in out and "bad signature" in out, out


def test_signature_needs_the_servers_key(evidence, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-key\n")
    code, out = verify(evidence, wrong)
    assert code == 1 and "FAILED manifest.sig: bad signature" in out, out
    code, out = verify(evidence)  # no key at all: checked as far as possible, and it says so
    assert code == 0 and "signature not checked" in out, out


def test_verify_refuses_what_is_not_an_export(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    code, out = verify(junk)
    assert code == 1 and "not a readable ZIP file" in out, out
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as z:
        z.writestr("notes.txt", "hello")
    code, out = verify(tmp_path / "plain.zip")
    assert code == 1 and "FAILED manifest.json: missing" in out, out


def test_training_export_redacts_the_spoken_phone_number(live_server, calls, tmp_path, key_file):
    call_id, truth = calls["en_phone"], load_call("en_phone")
    with live_server.client() as http:
        call = http.get(f"/v1/calls/{call_id}").json()
    spoken = [s for s in call["segments"] if s["track"] == "caller" and "5678" in s["text"]]
    assert spoken, f"Whisper did not write the number as digits: {[s['text'] for s in call['segments']]}"
    path = download(live_server, call_id, "training", tmp_path)
    with zipfile.ZipFile(path) as z:
        assert set(z.namelist()) == {"recording/caller.wav", "recording/agent.wav", "transcript.json",
                                     "redactions.json", "manifest.json", "manifest.sig"}
        raw = z.read("transcript.json").decode("utf-8")
        redactions = json.loads(z.read("redactions.json"))
        caller, agent = samples(z.read("recording/caller.wav")), samples(z.read("recording/agent.wav"))
    transcript = json.loads(raw)

    # Text: the number is a tag; no digit run and no caller or tracking number anywhere.
    texts = [s["text"] for s in transcript["segments"]] + [a["text"] for a in transcript["alerts"]]
    assert any("[PHONE]" in t for t in texts), texts
    assert not any(re.search(r"\d{3}", t) for t in texts), texts
    for number in (truth.metadata["from"], truth.metadata["tracking_number"]):
        assert number.lstrip("+") not in raw
    assert transcript["call"]["ad_tags"] == {"utm_source": "google", "utm_campaign": "billing_help_search"}

    # redactions.json: where and what kind, never the value; it covers the spoken number.
    assert redactions and all(set(r) == {"track", "start", "end", "kind", "source"} for r in redactions)
    phone = [r for r in redactions if r["kind"] == "PHONE" and r["track"] == "caller"]
    line = next(u for u in truth.utterances("caller") if "090" in u["text"])
    assert any(overlaps(r["start"], r["end"], line["start"], line["end"]) for r in phone), (phone, line)
    for segment in spoken:
        assert any(r["start"] <= segment["start"] and segment["end"] <= r["end"] for r in phone), segment

    # Audio: digital silence over each redacted span, where the recording has speech; the rest as recorded.
    original = samples(recording(live_server, call_id, "caller").read_bytes())
    assert len(caller) == len(original)
    silenced = np.zeros(len(original), dtype=bool)
    for r in (r for r in redactions if r["track"] == "caller"):
        silenced[int(r["start"] * 8000):int(np.ceil(r["end"] * 8000))] = True
    assert not caller[silenced].any()
    assert np.abs(original[silenced].astype(int)).max() > 1000  # there was speech there
    assert np.array_equal(caller[~silenced], original[~silenced])
    if not any(r["track"] == "agent" for r in redactions):
        assert np.array_equal(agent, samples(recording(live_server, call_id, "agent").read_bytes()))

    code, out = verify(path, key_file)
    assert code == 0 and "OK: 4 files match the manifest" in out and "redacted export" in out, out


def test_exports_need_a_token_and_a_known_call(live_server, calls):
    import httpx

    for kind in ("evidence", "training"):
        with live_server.client() as http:
            missing = http.get(f"/v1/calls/no-such-call/{kind}.zip")
        assert missing.status_code == 404 and "no-such-call" in missing.json()["detail"]
        anonymous = httpx.get(f"{live_server.http}/v1/calls/{calls['en_phone']}/{kind}.zip")
        assert anonymous.status_code == 401
