"""Hashes and the signing key of evidence exports.

Each recording is hashed when its call ends (the seal stored with the call); each export
lists the SHA-256 of every file it holds in manifest.json and signs those bytes with
HMAC-SHA256 (manifest.sig), so a changed file, a changed manifest or a forged one shows.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE_NAME = "evidence.key"
_CHUNK = 1 << 16


class EvidenceKeyError(RuntimeError):
    """The signing key file exists but cannot be used."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (a long call's WAV is tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sign(key: str, data: bytes) -> str:
    """Hex HMAC-SHA256 of `data` under `key` (the key's text, UTF-8)."""
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def signature_matches(key: str, data: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, data), signature.strip())


def read_key_file(path: Path) -> str:
    """The key kept in `path` (surrounding whitespace ignored)."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceKeyError(f"cannot read the evidence key {path}: {exc}") from None
    if not key:
        raise EvidenceKeyError(f"the evidence key file {path} is empty")
    return key


def load_or_create_key(data_dir: Path) -> str:
    """The key in `<data_dir>/evidence.key`, created (random, mode 0600) on first use.

    Written to a temporary file and hard-linked into place, so two gateway nodes sharing the
    data directory that export at the same moment end up with one key, never a half-written one.
    """
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return read_key_file(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{KEY_FILE_NAME}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return read_key_file(path)


def evidence_key(configured: str | None, data_dir: Path) -> str:
    """STREAM_SERVER_EVIDENCE_KEY when set, else the data directory's own key."""
    return configured if configured else load_or_create_key(data_dir)
