"""Per-call alert policy: which scored utterances become alerts.

One outburst is one alert: a category that alerted stays quiet for `cooldown_s` of audio
time after the alert's end, so a partial transcript and its final, or three insults in
one breath, don't page a supervisor three times. Abuse that comes back after the cooldown
alerts again, one severity step higher each time it repeats (repeated abuse in a call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .alert import BASE_SEVERITY, Alert, raise_severity


@dataclass(frozen=True)
class AlertPolicyOptions:
    thresholds: dict[str, float] = field(default_factory=dict)  # per category; from the model
    default_threshold: float = 0.5
    cooldown_s: float = 30.0
    high_confidence: float = 0.9  # scores above this raise severity one step
    alert_tracks: tuple[str, ...] = ("caller",)  # the agent is the one being protected
    min_text_chars: int = 2  # "a", "ん" alone are ASR debris, not abuse
    # An interim transcript is the start of an utterance still being spoken, and its last
    # words are the least stable ("Hi, I would like..." came out as "I will"). Fragments this
    # short wait for their final, which follows within about a second.
    min_partial_words: int = 3
    # ...and must be confident: the v1 text model scores some fragments ("I will like to",
    # 0.66 threat) over threshold. Below this, the final decides.
    partial_min_score: float = 0.9

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.default_threshold)

    def is_abusive(self, scores: dict[str, float]) -> bool:
        """Any category at or over its threshold: the segment's `abusive` flag."""
        return any(score >= self.threshold(category) for category, score in scores.items())


def word_count(text: str) -> int:
    """Words of space-separated text; for text without spaces (Japanese), characters / 2, about
    the length of a Japanese word."""
    words = text.split()
    return len(words) if len(words) > 1 else len(text.strip()) // 2


@dataclass
class _CategoryState:
    last_end: float = float("-inf")
    count: int = 0


class AlertPolicy:
    """Decides for one call; create one per CallSession."""

    def __init__(self, call_id: str, metadata: dict[str, str], options: AlertPolicyOptions) -> None:
        self.call_id = call_id
        self.metadata = dict(metadata)
        self.options = options
        self._state: dict[str, _CategoryState] = {}

    def evaluate(
        self, scores: dict[str, float], text: str, start: float, end: float, track: str = "caller",
        partial: bool = False,
    ) -> list[Alert]:
        """Alerts for one scored utterance (partial or final); empty when none is due."""
        o = self.options
        if track not in o.alert_tracks or len(text.strip()) < o.min_text_chars:
            return []
        if partial and word_count(text) < o.min_partial_words:
            return []
        alerts = []
        for category, score in scores.items():
            if score < o.threshold(category) or (partial and score < o.partial_min_score):
                continue
            state = self._state.setdefault(category, _CategoryState())
            if start < state.last_end + o.cooldown_s:
                state.last_end = max(state.last_end, end)  # the same outburst goes on
                continue
            severity = BASE_SEVERITY.get(category, "medium")
            if score >= o.high_confidence:
                severity = raise_severity(severity)
            severity = raise_severity(severity, state.count)
            state.count += 1
            state.last_end = end
            alerts.append(
                Alert(
                    call_id=self.call_id,
                    category=category,
                    severity=severity,
                    score=score,
                    text=text,
                    start=start,
                    end=end,
                    metadata=self.metadata,
                    track=track,
                )
            )
        return alerts
