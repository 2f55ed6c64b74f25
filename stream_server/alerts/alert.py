"""The Alert a supervisor receives, and the categories it can carry."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class AbuseCategory(StrEnum):
    # Utterance-level, from the classifiers (MHLW customer-harassment manual terms).
    INSULT = "insult"  # 侮辱・暴言
    THREAT = "threat"  # 脅迫
    EXPOSURE = "exposure"  # 晒し・個人情報要求
    COERCION = "coercion"  # 土下座・過剰要求
    DISCRIMINATION = "discrimination"
    SEXUAL = "sexual"
    PROFANITY = "profanity"
    SHOUTING = "shouting"  # 威圧的な言動 (voice)
    # Call-level, from alerts.rules.
    PROLONGED_CALL = "prolonged"  # 拘束
    REPEAT_CALLER = "repeat_caller"  # 継続的・執拗


SEVERITIES = ("low", "medium", "high", "critical")

BASE_SEVERITY: dict[str, str] = {
    AbuseCategory.THREAT: "high",
    AbuseCategory.EXPOSURE: "high",
    AbuseCategory.INSULT: "medium",
    AbuseCategory.COERCION: "medium",
    AbuseCategory.DISCRIMINATION: "medium",
    AbuseCategory.SEXUAL: "medium",
    AbuseCategory.SHOUTING: "medium",
    AbuseCategory.PROFANITY: "low",
    AbuseCategory.PROLONGED_CALL: "medium",
    AbuseCategory.REPEAT_CALLER: "medium",
}


def raise_severity(severity: str, steps: int = 1) -> str:
    index = min(SEVERITIES.index(severity) + steps, len(SEVERITIES) - 1)
    return SEVERITIES[index]


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Alert:
    call_id: str
    category: str
    severity: str
    score: float
    text: str
    start: float  # audio seconds from call start
    end: float
    metadata: dict[str, str]  # the call's metadata as received: ad-source tags travel with it
    track: str = "caller"
    rule: str = "text"  # which mechanism raised it: "text", "voice" or a call rule's name
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)

    def to_event(self) -> dict[str, Any]:
        """JSON body of the supervisor feed's `alert` event."""
        body = asdict(self)
        body["created_at"] = self.created_at.isoformat()
        body["score"] = round(self.score, 4)
        return body
