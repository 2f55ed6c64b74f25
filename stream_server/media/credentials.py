"""Shared-secret checks for carriers that sign nothing (Telnyx, Vonage, jambonz) and the API.

One place compares secrets, in constant time and on bytes: a presented token is attacker
text and may hold anything, lone surrogates included, so it must never raise.
"""

from __future__ import annotations

import base64
import binascii
import hmac


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def secret_matches(expected: str, presented: str | None) -> bool:
    """Constant-time: does `presented` equal `expected`? None (nothing presented) never does."""
    return presented is not None and hmac.compare_digest(_utf8(expected), _utf8(presented))


def bearer_value(authorization: str | None) -> str | None:
    """`Authorization: Bearer <token>` → the token; None for any other header."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def basic_password(authorization: str | None) -> str | None:
    """`Authorization: Basic base64(user:password)` → the password; None when not that form."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def any_secret_matches(expected: str, presented: list[str | None]) -> bool:
    """True when one of the presented credentials (empty ones skipped) is the secret."""
    return any(secret_matches(expected, p) for p in presented if p)
