"""Webhook targets (STREAM_SERVER_WEBHOOKS): where alert notifications go, and which alerts.

An incoming-webhook URL is itself a credential (whoever holds a Slack or Teams webhook URL
can post to that channel), so the URL and the signing secret are kept as `SecretStr`: they
never show in a repr, a log line or a start-up error. Only `host` is ever displayed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from .alert import SEVERITIES, AbuseCategory

WebhookFormat = Literal["slack", "teams", "json"]
Severity = Literal["low", "medium", "high", "critical"]

_HIDDEN = ("url", "secret")


class WebhookTarget(BaseModel):
    """One receiver: a Slack or Teams incoming webhook, or any HTTPS endpoint taking signed JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Goes into the X-Stream-Server-Delivery header and logs: kept to header-safe characters.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Unique name, shown in logs.")
    url: SecretStr = Field(description="http(s) URL the alert is POSTed to; a secret (never logged).")
    format: WebhookFormat = Field(description="slack, teams or json (signed with `secret`).")
    secret: SecretStr | None = Field(None, validate_default=True, description="HMAC-SHA256 key; required for json.")
    min_severity: Severity = Field("medium", description="Alerts below this severity are not sent.")
    categories: tuple[str, ...] = Field((), description="Only these alert categories; empty = all.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr, info: ValidationInfo) -> SecretStr:
        parts = urlsplit(url.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook {info.data.get('name', '?')!r}: url must be http:// or https:// with a host")
        return url

    @field_validator("secret")
    @classmethod
    def _secret_for_json(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("format") == "json" and not (secret and secret.get_secret_value()):
            raise ValueError(f"webhook {info.data.get('name', '?')!r}: format json needs a secret (the HMAC key)")
        return secret

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, categories: tuple[str, ...]) -> tuple[str, ...]:
        known = {str(c) for c in AbuseCategory}
        unknown = sorted(set(categories) - known)
        if unknown:
            raise ValueError(f"unknown alert categories {unknown}; known: {sorted(known)}")
        return categories

    @property
    def host(self) -> str:
        """What may be shown of the URL: host and port, no user info, path or query."""
        parts = urlsplit(self.url.get_secret_value())
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host

    def wants(self, alert: dict[str, Any]) -> bool:
        """Whether an `alert` event passes this target's routing rule."""
        severity = alert.get("severity")
        if severity not in SEVERITIES or SEVERITIES.index(severity) < SEVERITIES.index(self.min_severity):
            return False
        return not self.categories or alert.get("category") in self.categories

    def public(self) -> dict[str, Any]:
        """The target as GET /v1/webhooks shows it: no URL path, query or secret."""
        return {"name": self.name, "format": self.format, "host": self.host,
                "min_severity": self.min_severity, "categories": list(self.categories)}


def _hide_secrets(value: Any) -> Any:
    """Wrap each target's url and secret before validation, so that a validation error (which
    prints its input) shows `SecretStr('**********')` rather than the webhook URL."""
    if not isinstance(value, list):
        return value
    return [
        {k: SecretStr(v) if k in _HIDDEN and isinstance(v, str) else v for k, v in item.items()}
        if isinstance(item, dict) else item
        for item in value
    ]


def _unique_names(targets: list[WebhookTarget]) -> list[WebhookTarget]:
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"webhook names must be unique (they key deliveries): {duplicates}")
    return targets


# The type of Settings.webhooks: a JSON list of targets. The last validator listed runs first,
# so every later error (the name check's too) sees the masked input.
WebhookTargets = Annotated[list[WebhookTarget], AfterValidator(_unique_names), BeforeValidator(_hide_secrets)]
