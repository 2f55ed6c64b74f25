"""What a webhook receiver gets for an alert: Slack, Microsoft Teams or signed JSON.

All three say the same: category and severity, the offending sentence, the caller's number,
the ad source and campaign that brought the call, when in the call it was said, and (with
STREAM_SERVER_CONSOLE_URL) a link to the call in the console. The sentence and the metadata
come from the caller's side, so neither may be read as markup by the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

SIGNATURE_HEADER = "X-Stream-Server-Signature"
DELIVERY_HEADER = "X-Stream-Server-Delivery"
EVENT_HEADER = "X-Stream-Server-Event"

MAX_SENTENCE_CHARS = 2000  # Slack refuses section text over 3000 characters
MAX_FIELD_CHARS = 200


@dataclass(frozen=True)
class AlertMessage:
    """An alert event read for people: every value plain text, nothing escaped yet."""

    title: str  # "Threat alert · high"
    severity: str
    sentence: str
    caller: str
    ad_source: str
    campaign: str
    tracking_number: str
    call_time: str  # "1:07" into the call
    call_id: str
    rule: str
    score: float
    link: str | None

    def facts(self) -> list[tuple[str, str]]:
        """Label → value for the details shown under the sentence; unknown ones left out."""
        facts = [("Caller", self.caller), ("Time in call", self.call_time), ("Ad source", self.ad_source),
                 ("Campaign", self.campaign), ("Tracking number", self.tracking_number)]
        return [(label, value) for label, value in facts if value]


def call_time(seconds: float) -> str:
    """Seconds from the start of the call as m:ss (h:mm:ss past an hour)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def call_link(console_url: str | None, call_id: str) -> str | None:
    return f"{console_url.rstrip('/')}/calls/{quote(call_id, safe='')}" if console_url else None


def alert_message(alert: dict[str, Any], console_url: str | None = None) -> AlertMessage:
    """The human-readable parts of an `alert` event (see Alert.to_event)."""
    metadata = alert.get("metadata") or {}

    def meta(*keys: str) -> str:
        value = next((str(metadata[k]) for k in keys if metadata.get(k)), "")
        return one_line(value)[:MAX_FIELD_CHARS]

    category = str(alert.get("category", "alert")).replace("_", " ").capitalize()
    severity = str(alert.get("severity", ""))
    return AlertMessage(
        title=f"{category} alert · {severity}",
        severity=severity,
        sentence=one_line(str(alert.get("text") or ""))[:MAX_SENTENCE_CHARS],
        caller=meta("from", "caller"),
        ad_source=meta("utm_source", "ad_source"),
        campaign=meta("utm_campaign", "campaign"),
        tracking_number=meta("tracking_number"),
        call_time=call_time(float(alert.get("start") or 0.0)),
        call_id=str(alert.get("call_id", "")),
        rule=str(alert.get("rule", "")),
        score=float(alert.get("score") or 0.0),
        link=call_link(console_url, str(alert.get("call_id", ""))),
    )


def one_line(text: str) -> str:
    # A newline would end a Slack quote and let the rest of the text be read as formatting.
    return " ".join(text.split())


def slack_escape(text: str) -> str:
    """Slack's required escaping: `<!channel>` or `<https://evil|bank>` in a caller's words
    must stay text, not become a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: AlertMessage) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification) and Block Kit blocks."""
    sentence = slack_escape(message.sentence) or "_no transcript_"
    fallback = f"{message.title}: “{slack_escape(message.sentence)}”"
    if message.caller:
        fallback += f" (caller {slack_escape(message.caller)})"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f">{sentence}"}},
    ]
    if message.facts():
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(value)}"} for label, value in message.facts()
        ]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(
        f"Call {message.call_id} · rule {message.rule} · score {message.score:.2f}")}]})
    if message.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open call"}, "url": message.link}]})
    return {"text": fallback, "blocks": blocks}


def _plain(text: str, **style: Any) -> dict[str, Any]:
    # A TextRun is never parsed as Markdown (a TextBlock is): a caller's "[click](https://...)"
    # stays text.
    return {"type": "TextRun", "text": text, **style}


def teams_body(message: AlertMessage) -> dict[str, Any]:
    """A Microsoft Teams incoming-webhook (Workflows) message carrying an Adaptive Card 1.4."""
    body: list[dict[str, Any]] = [
        {"type": "RichTextBlock", "inlines": [_plain(message.title, weight="Bolder", size="Medium",
                                                     color="Attention")]},
        {"type": "RichTextBlock", "inlines": [_plain(message.sentence or "(no transcript)", italic=True)]},
    ]
    body += [{"type": "RichTextBlock", "spacing": "None",
              "inlines": [_plain(f"{label}: ", weight="Bolder"), _plain(value)]} for label, value in message.facts()]
    body.append({"type": "RichTextBlock", "inlines": [_plain(
        f"Call {message.call_id} · rule {message.rule} · score {message.score:.2f}", isSubtle=True, size="Small")]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open call", "url": message.link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def json_body(alert: dict[str, Any], console_url: str | None = None) -> dict[str, Any]:
    """The generic body: the alert event as the supervisor feed has it (less its `type`)."""
    body: dict[str, Any] = {"type": "alert", "alert": {k: v for k, v in alert.items() if k != "type"}}
    link = call_link(console_url, str(alert.get("call_id", "")))
    if link:
        body["link"] = link
    return body


def render(fmt: str, alert: dict[str, Any], console_url: str | None = None) -> bytes:
    """The request body for a target of format `fmt`, as the bytes that are signed and sent."""
    if fmt == "json":
        body = json_body(alert, console_url)
    else:
        message = alert_message(alert, console_url)
        body = slack_body(message) if fmt == "slack" else teams_body(message)
    # ASCII JSON: any text (even a lone surrogate from a transcript) encodes.
    return json.dumps(body, separators=(",", ":")).encode("ascii")


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Stream-Server-Signature value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`.

    The timestamp is signed with the body so that a captured request cannot be replayed later
    than the receiver's tolerance."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_signature(secret: str, header: str | None, body: bytes | str, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """For receivers: whether `header` (X-Stream-Server-Signature) signs the raw `body` with
    `secret` and was made within `tolerance_s` of now. Several `v1=` (a key being rotated) may
    be given; one matching is enough. Compares in constant time."""
    if not header:
        return False
    raw = body.encode() if isinstance(body, str) else body
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, raw, timestamp).partition(",v1=")[2]
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header is anyone's input.
    return any(hmac.compare_digest(expected.encode(), c.encode("utf-8", "replace")) for c in candidates)
