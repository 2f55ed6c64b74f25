"""Tokens and phone numbers never reach a log line in clear (STREAM_SERVER_LOG_MASK, default on).

Installed as the log record factory, so every logger is covered, uvicorn's access log included
(it prints request URLs: `?token=` on the supervisor feed, `?phone=` on a search). A phone
number keeps its last four digits, enough to tell two callers apart when reading a log.
"""

from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = (
    (re.compile(r"([?&](?:token|access_token|api_key|key|signature)=)[^&\s\"']+", re.IGNORECASE), r"\1***"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 ***"),
    (re.compile(r"\bsst_[A-Za-z0-9_-]{6,}"), "sst_***"),
)
# E.164 (+81..., or %2B81... in a URL) and Japanese national numbers (0312345678, 090-1234-5678).
_PHONE = re.compile(r"(?:\+|%2B)\d[\d -]{6,16}\d|\b0\d{1,4}-\d{1,4}-\d{3,4}\b|\b0\d{9,10}\b", re.IGNORECASE)


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    keep = set(digits[-4:])
    if text[:3].upper() == "%2B":
        keep |= {1, 2}  # the 2 and B of %2B are not the number's digits
    return "".join(ch if i in keep or not ch.isdigit() else "*" for i, ch in enumerate(text))


def mask(text: str) -> str:
    """`text` with credentials replaced by *** and phone numbers by *** but their last 4 digits."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return _PHONE.sub(_mask_phone, text)


def _masked(arg: object) -> object:
    """A log argument with its secrets masked; numbers, and objects with nothing to mask, as they are."""
    if isinstance(arg, int | float) or arg is None:
        return arg
    text = str(arg)
    masked = mask(text)
    return masked if masked != text or isinstance(arg, str) else arg


def install() -> None:
    """Mask every log record created from now on, whichever logger and handler it goes to."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_secrets", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # Message and arguments are masked one by one, not merged into one string: formatters
        # such as uvicorn's access log read record.args themselves.
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        return record

    factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
