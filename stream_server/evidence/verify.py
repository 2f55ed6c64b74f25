"""Check an evidence or training export against its manifest, its signature and the seal.

Three layers, each catching what the one before cannot:

- every file's SHA-256 and size against manifest.json (a changed, missing or added file);
- the recordings against the seal taken when the call ended, which the manifest carries
  (a recording swapped before export); not for redacted (training) exports, whose
  recordings are edited copies;
- manifest.sig, HMAC-SHA256 under the server's evidence key (a manifest rewritten to match
  changed files). Only with the key: without it the result says it was not checked.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .integrity import signature_matches
from .package import FORMAT, MANIFEST, RECORDING_DIR, SIGNATURE

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file of the export."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"FAILED {self.path}: {self.message}"


@dataclass
class VerifyResult:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not checked, and why
    files_checked: int = 0  # manifest entries that matched
    signature_checked: bool = False
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.ok:
            return f"{len(self.problems)} problem(s): the export does not match its manifest, seal or signature"
        return f"OK: {self.files_checked} files match the manifest; " + "; ".join(self.notes)


def _short(digest: str) -> str:
    return f"{digest[:12]}…"


def _hash_member(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(name) as f:  # raises BadZipFile on a CRC error: bytes changed in place
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_files(archive: zipfile.ZipFile, files: dict[str, Any], result: VerifyResult) -> dict[str, str]:
    """Each manifest entry against the ZIP; returns the actual hash of each member read."""
    actual: dict[str, str] = {}
    names = archive.namelist()
    for name, count in Counter(names).items():
        if count > 1:
            result.problems.append(Problem(name, f"appears {count} times in the ZIP"))
    for name in names:
        if name not in files and name not in (MANIFEST, SIGNATURE):
            result.problems.append(Problem(name, "unexpected file: not in the manifest"))
    for name, expected in files.items():
        if name not in names:
            result.problems.append(Problem(name, "missing from the export"))
            continue
        if not isinstance(expected, dict):
            result.problems.append(Problem(name, "malformed manifest entry"))
            continue
        try:
            digest, size = _hash_member(archive, name)
        except (zipfile.BadZipFile, OSError) as exc:
            result.problems.append(Problem(name, f"damaged inside the ZIP ({exc})"))
            continue
        actual[name] = digest
        if digest != expected.get("sha256"):
            result.problems.append(Problem(
                name, f"sha256 mismatch (manifest {_short(str(expected.get('sha256')))}, file {_short(digest)})"))
        elif size != expected.get("bytes"):
            result.problems.append(
                Problem(name, f"size mismatch (manifest {expected.get('bytes')}, file {size} bytes)"))
        else:
            result.files_checked += 1
    return actual


def _check_seal(manifest: dict[str, Any], names: list[str], actual: dict[str, str], result: VerifyResult) -> None:
    if manifest.get("redacted"):
        result.notes.append("redacted export: its recordings are edited copies, so the seal taken at call end "
                            "does not apply")
        return
    sealed = manifest.get("sealed")
    if not isinstance(sealed, dict) or not isinstance(sealed.get("files"), dict) or not sealed["files"]:
        result.notes.append("the recordings were not sealed at call end (the call did not end normally, or "
                            "predates sealing): only the manifest's hashes vouch for them")
        return
    before = len(result.problems)
    recordings = {n for n in names if n.startswith(RECORDING_DIR)}
    for file_name, digest in sealed["files"].items():
        path = RECORDING_DIR + file_name
        recordings.discard(path)
        if path not in names:
            result.problems.append(Problem(path, "sealed at call end but missing from the export"))
        elif path in actual and actual[path] != digest:
            result.problems.append(Problem(path, "differs from the hash sealed at call end "
                                                 f"(sealed {_short(digest)}, file {_short(actual[path])})"))
    for path in sorted(recordings):
        result.problems.append(Problem(path, "not among the recordings sealed at call end"))
    if len(result.problems) == before:
        result.notes.append(f"the recordings match the seal taken at call end ({sealed.get('sealed_at')})")


def _check_signature(archive: zipfile.ZipFile, body: bytes, key: str | None, result: VerifyResult) -> None:
    if key is None:
        result.notes.append("signature not checked: no key (pass --key-file or set STREAM_SERVER_EVIDENCE_KEY)")
        return
    result.signature_checked = True
    if SIGNATURE not in archive.namelist():
        result.problems.append(Problem(SIGNATURE, "missing: the manifest is not signed"))
        return
    signature = archive.read(SIGNATURE).decode("ascii", "replace")
    if not signature_matches(key, body, signature):
        result.problems.append(Problem(SIGNATURE, "bad signature: manifest.json was changed, or signed with "
                                                  "another key"))
    else:
        result.notes.append("the manifest's signature is valid")


def verify_package(path: Path, key: str | None = None) -> VerifyResult:
    """Check the export at `path`; `key`: the evidence key, or None to skip the signature."""
    result = VerifyResult()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(Problem(str(path), f"not a readable ZIP file ({exc})"))
        return result
    with archive:
        if MANIFEST not in archive.namelist():
            result.problems.append(Problem(MANIFEST, "missing: not a stream_server export"))
            return result
        try:
            body = archive.read(MANIFEST)
            manifest = json.loads(body)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            result.problems.append(Problem(MANIFEST, f"unreadable ({exc})"))
            return result
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            shown = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            result.problems.append(Problem(MANIFEST, f"unknown format {shown!r}, expected {FORMAT!r}"))
            return result
        result.manifest = manifest
        files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        actual = _check_files(archive, files, result)
        _check_seal(manifest, archive.namelist(), actual, result)
        _check_signature(archive, body, key, result)
    return result
