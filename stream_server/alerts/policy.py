"""Per-call alert policy: which scored utterances become alerts.

One outburst is one alert: a category that alerted stays quiet for `cooldown_s` of audio
time after the alert's end, so a partial transcript and its final, or three insults in
one breath, don't page a supervisor three times. Abuse that comes back after the cooldown
alerts again, one severity step higher each time it repeats (repeated abuse in a call).

Words and voice are fused here: an abusive utterance said in a raised voice alerts once, for
its word category, one severity step higher (rule "text+voice"); raised voice alone alerts as
`shouting` (rule "voice"), also mid-utterance from the voice model's sliding window. Swearing
in an utterance that is already an insult or a threat is part of that alert, not a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .alert import BASE_SEVERITY, SEVERITIES, AbuseCategory, Alert, raise_severity

SHOUTING = str(AbuseCategory.SHOUTING)
PROFANITY = str(AbuseCategory.PROFANITY)


@dataclass(frozen=True)
class AlertPolicyOptions:
    thresholds: dict[str, float] = field(default_factory=dict)  # per category; from the models
    default_threshold: float = 0.5
    severities: dict[str, str] = field(default_factory=dict)  # per category; else BASE_SEVERITY
    cooldown_s: float = 30.0
    high_confidence: float = 0.9  # scores above this raise severity one step
    alert_tracks: tuple[str, ...] = ("caller",)  # the agent is the one being protected
    min_text_chars: int = 2  # "a", "ん" alone are ASR debris, not abuse
    # An interim transcript is the start of an utterance still being spoken, and its last
    # words are the least stable ("Hi, I would like..." came out as "I will"). Fragments this
    # short wait for their final, which follows within about a second.
    min_partial_words: int = 3
    # ...and must be confident: the text model scores some fragments over threshold that the
    # whole sentence does not reach. Below this, the final decides.
    partial_min_score: float = 0.9

    def __post_init__(self) -> None:
        for category, severity in self.severities.items():
            if severity not in SEVERITIES:
                raise ValueError(f"severity for {category!r} must be one of {SEVERITIES}, not {severity!r}")

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.default_threshold)

    def severity(self, category: str) -> str:
        """Base severity of a category before confidence, voice and repetition raise it."""
        return self.severities.get(category) or BASE_SEVERITY.get(category, "medium")

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
        """Alerts for one scored utterance (partial or final); empty when none is due.

        `scores` holds the text model's categories and, for a final, the voice model's
        `shouting` probability."""
        o = self.options
        if track not in o.alert_tracks:
            return []
        shouting = scores.get(SHOUTING)
        loud = shouting is not None and shouting >= o.threshold(SHOUTING)
        words = self._word_categories(scores, text, partial)
        if not words:
            return self.evaluate_voice(shouting, text, start, end, track) if loud else []
        if loud:  # the raised voice is part of this outburst: no separate shouting alert
            self._alert(SHOUTING, shouting, text, start, end, track, "voice", quiet=True)
        rule = "text+voice" if loud else "text"
        alerts = [self._alert(c, s, text, start, end, track, rule, extra_steps=int(loud))
                  for c, s in words.items()]
        return [a for a in alerts if a is not None]

    def evaluate_voice(
        self, shouting: float | None, text: str, start: float, end: float, track: str = "caller",
        window: bool = False, own_baseline: bool = True,
    ) -> list[Alert]:
        """A raised-voice score on its own: a finished utterance without abusive words, or the
        sliding window of one still being spoken (`window`, text "").

        A window alerts only against the caller's own baseline: before the caller has said two
        things, a 1.5 s window is judged against a population average, and on held-out audio
        half of the utterances flagged that way were calm (models/EVALUATION.md, voice,
        baseline_prior). The finished utterance still decides then."""
        if track not in self.options.alert_tracks or shouting is None:
            return []
        if window and not own_baseline:
            return []
        if shouting < self.options.threshold(SHOUTING):
            return []
        alert = self._alert(SHOUTING, shouting, text, start, end, track, "voice")
        return [alert] if alert else []

    def _word_categories(self, scores: dict[str, float], text: str, partial: bool) -> dict[str, float]:
        o = self.options
        if len(text.strip()) < o.min_text_chars or (partial and word_count(text) < o.min_partial_words):
            return {}
        fired = {
            c: s for c, s in scores.items()
            if c != SHOUTING and s >= o.threshold(c) and not (partial and s < o.partial_min_score)
        }
        if PROFANITY in fired and len(fired) > 1:
            del fired[PROFANITY]  # "you fucking idiot" is an insult; the swearing is in its text
        return fired

    def _alert(
        self, category: str, score: float, text: str, start: float, end: float, track: str, rule: str,
        extra_steps: int = 0, quiet: bool = False,
    ) -> Alert | None:
        """The alert for `category`, or None inside its cooldown (the same outburst going on).
        `quiet`: only record the outburst (so it does not alert again right after)."""
        o = self.options
        state = self._state.setdefault(category, _CategoryState())
        if start < state.last_end + o.cooldown_s:
            state.last_end = max(state.last_end, end)
            return None
        if quiet:
            state.last_end = end
            return None
        severity = o.severity(category)
        steps = extra_steps + (score >= o.high_confidence) + state.count
        severity = raise_severity(severity, steps)
        state.count += 1
        state.last_end = end
        return Alert(
            call_id=self.call_id,
            category=category,
            severity=severity,
            score=score,
            text=text,
            start=start,
            end=end,
            metadata=self.metadata,
            track=track,
            rule=rule,
        )
