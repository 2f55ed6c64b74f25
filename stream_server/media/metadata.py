"""Call metadata from carrier-supplied key/value pairs, bounded.

Every carrier lets the caller's side attach parameters (Twilio `customParameters`, Telnyx
`custom_parameters`, Vonage headers, jambonz `metadata`, AudioHook `inputVariables`...). They end
up on every alert, so a hostile stream must not be able to bloat them.
"""

from __future__ import annotations

from typing import Any

MAX_PARAMETERS = 64
MAX_PARAMETER_CHARS = 1024
MAX_KEY_CHARS = 128
MAX_ID_CHARS = 128  # carrier call / stream ids: Twilio's are 34 characters, nobody's is near this


def clean_text(value: Any, max_chars: int) -> str:
    """Carrier-supplied value → text every store, log and JSON encoder accepts: at most
    `max_chars` characters, no NUL (PostgreSQL refuses it), no lone surrogates (UTF-8 cannot
    encode them; they become "?"). None → ""."""
    text = ("" if value is None else str(value))[:max_chars]
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def metadata_from_parameters(parameters: Any) -> dict[str, str]:
    """Carrier parameters → call metadata (ad-source tags, caller number...): at most
    MAX_PARAMETERS entries, keys and values as bounded strings (None → "")."""
    if not isinstance(parameters, dict):
        return {}
    metadata: dict[str, str] = {}
    for key, value in list(parameters.items())[:MAX_PARAMETERS]:
        metadata[clean_text(key, MAX_KEY_CHARS)] = clean_text(value, MAX_PARAMETER_CHARS)
    return metadata
