"""The evidence and training ZIPs of one stored call.

Evidence (for a complaint, the police, a lawyer): the recordings byte-for-byte as stored, so
their hashes match the seal taken when the call ended, with the scored transcript, the alerts
and what supervisors did about them:

    recording/caller.wav, recording/agent.wav   the stored tracks, unchanged
    transcript.json   the call, its segments with scores, its alerts with status
    transcript.html   the same as a printable document (English / Japanese labels)
    actions.json      supervisor actions on the call's alerts
    manifest.json     format, call, who exported it and when, SHA-256 and size of every
                      file above, and the seal taken at call end
    manifest.sig      HMAC-SHA256 of manifest.json's bytes under the server's evidence key

Training (for improving the models): redacted recordings and transcript (training.py), a
redactions.json of what was removed where, and the same manifest and signature.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from typing import IO, Any

from ..store.recordings import RecordingStore
from .integrity import sign
from .report import transcript_html
from .training import redact_call, redactions_json, silenced_wav

FORMAT = "stream_server-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RECORDING_DIR = "recording/"
_CHUNK = 1 << 16


class ExportError(Exception):
    """This call cannot be exported (yet); the message says why."""


def exportable_tracks(call: dict[str, Any], recordings: RecordingStore) -> list[str]:
    """The call's recorded tracks, or ExportError: a call still running has no final recording."""
    if call.get("status") == "active":
        raise ExportError(f"call {call['id']!r} is still in progress: export it once it has ended")
    tracks = recordings.tracks(call["id"])
    if not tracks:
        raise ExportError(f"call {call['id']!r} has no recordings")
    return tracks


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


class _PackageWriter:
    """Writes members into a ZIP and keeps the SHA-256 and size of each for the manifest."""

    def __init__(self, out: IO[bytes], exported_at: datetime) -> None:
        self.zip = zipfile.ZipFile(out, "w")
        self.files: dict[str, dict[str, Any]] = {}
        self._date_time = exported_at.timetuple()[:6]

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        return info

    def add(self, name: str, data: bytes, compress: bool = True) -> None:
        self.zip.writestr(self._info(name, compress), data)
        self.files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def add_file(self, name: str, path: Any) -> None:
        """A file copied in chunks (recordings run to tens of megabytes), hashed as written."""
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as src, self.zip.open(self._info(name, compress=False), "w") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        self.files[name] = {"sha256": digest.hexdigest(), "bytes": size}

    def finish(self, manifest: dict[str, Any], key: str) -> dict[str, Any]:
        """Write manifest.json (with the files so far) and its signature; close the ZIP."""
        manifest = {**manifest, "files": dict(self.files)}
        body = _json_bytes(manifest)
        self.zip.writestr(self._info(MANIFEST, True), body)
        self.zip.writestr(self._info(SIGNATURE, False), sign(key, body) + "\n")
        self.zip.close()
        return manifest


def _manifest(kind: str, call: dict[str, Any], exported_at: datetime, exported_by: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        "call_id": call["id"],
        "exported_at": exported_at.isoformat(),
        "exported_by": exported_by,
        "redacted": kind == "training",
    }


def write_evidence_package(
    out: IO[bytes], call: dict[str, Any], recordings: RecordingStore, key: str, exported_by: str
) -> dict[str, Any]:
    """Write the evidence ZIP of `call` (CallStore.get_call) to `out`; returns its manifest.
    Raises ExportError for a call without recordings or still in progress."""
    tracks = exportable_tracks(call, recordings)
    exported_at = datetime.now(UTC)
    manifest = _manifest("evidence", call, exported_at, exported_by)
    writer = _PackageWriter(out, exported_at)
    for track in tracks:
        writer.add_file(f"{RECORDING_DIR}{track}.wav", recordings.path(call["id"], track))
    summary = {k: v for k, v in call.items() if k not in ("segments", "alerts", "actions")}
    writer.add("transcript.json", _json_bytes({"call": summary, "segments": call.get("segments", []),
                                               "alerts": call.get("alerts", [])}))
    writer.add("transcript.html", transcript_html(call, manifest).encode("utf-8"))
    writer.add("actions.json", _json_bytes(call.get("actions", [])))
    return writer.finish({**manifest, "sealed": call.get("evidence")}, key)


def write_training_package(
    out: IO[bytes], call: dict[str, Any], recordings: RecordingStore, key: str, exported_by: str
) -> dict[str, Any]:
    """Write the redacted training ZIP of `call` to `out`; returns its manifest. The recordings
    in it are edited copies, so the seal taken at call end does not apply (`redacted: true`)."""
    tracks = exportable_tracks(call, recordings)
    exported_at = datetime.now(UTC)
    transcript, redactions = redact_call(call)
    writer = _PackageWriter(out, exported_at)
    for track in tracks:
        spans = [(r.start, r.end) for r in redactions if r.track == track]
        writer.add(f"{RECORDING_DIR}{track}.wav", silenced_wav(recordings.path(call["id"], track), spans),
                   compress=False)
    writer.add("transcript.json", _json_bytes(transcript))
    writer.add("redactions.json", _json_bytes(redactions_json(redactions)))
    return writer.finish({**_manifest("training", call, exported_at, exported_by), "sealed": None}, key)
