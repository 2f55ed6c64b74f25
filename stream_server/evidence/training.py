"""What a training export keeps of a call, and which audio it silences.

Text: every segment's and alert's transcript with personal data replaced by tags
(redaction.py); of the call itself only ad-source tags, language, durations and scores: no
caller or tracking number, no agent, no supervisor names or notes, no timestamps.

Audio: segments carry no word timestamps, so the whole time span of every segment (or alert)
whose text held personal data is silenced on that speaker's track, padded by PAD_S on both
sides. That is conservative (the rest of the sentence goes too), and it cannot reach what ASR
missed: speech never transcribed, or a number heard as words, stays in the audio.
"""

from __future__ import annotations

import io
import math
import re
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .redaction import find_personal_data, redact_text

# Around each silenced segment: the VAD's utterance bounds are 20 ms frames of 16 kHz audio,
# the recording is the carrier's rate; a little margin covers the resampler's delay.
PAD_S = 0.1

_CALL_FIELDS = ("id", "carrier", "tracks", "language", "status", "end_reason", "duration", "max_score",
                "alert_count")
_SEGMENT_FIELDS = ("track", "start", "end", "language", "scores", "max_score", "abusive", "loudness_dbfs",
                   "loudness_delta_db")
_ALERT_FIELDS = ("id", "category", "severity", "score", "start", "end", "track", "rule", "status")
_AD_TAG_KEYS = frozenset({"ad_source", "source", "campaign"})


@dataclass(frozen=True)
class Redaction:
    """Audio silenced on `track` from `start` to `end` (seconds) because the transcript there
    held personal data of `kind`; never the value itself."""

    track: str
    start: float
    end: float
    kind: str
    source: str  # "segment" or "alert": whose text it was found in


def _harmless(value: Any) -> bool:
    """A metadata value that may leave: no personal data, no phone-like digit run."""
    text = str(value)
    return not find_personal_data(text) and len(re.sub(r"\D", "", text)) < 7


def _ad_tags(call: dict[str, Any]) -> dict[str, str]:
    return {
        key: value
        for key, value in (call.get("metadata") or {}).items()
        if (key.startswith("utm_") or key in _AD_TAG_KEYS) and _harmless(value)
    }


def redact_call(call: dict[str, Any]) -> tuple[dict[str, Any], list[Redaction]]:
    """A stored call (CallStore.get_call) → the training transcript.json and the redactions."""
    duration = call.get("duration")
    redactions: list[Redaction] = []

    def redacted(item: dict[str, Any], source: str) -> str:
        text, findings = redact_text(item.get("text") or "")
        start = max(0.0, item["start"] - PAD_S)
        end = item["end"] + PAD_S if duration is None else min(duration, item["end"] + PAD_S)
        for kind in dict.fromkeys(f.kind for f in findings):  # one entry per kind, in order
            redactions.append(Redaction(item["track"], round(start, 3), round(end, 3), kind, source))
        return text

    summary = {key: call.get(key) for key in _CALL_FIELDS}
    summary["ad_source"] = call.get("ad_source") if _harmless(call.get("ad_source") or "") else None
    summary["campaign"] = call.get("campaign") if _harmless(call.get("campaign") or "") else None
    summary["ad_tags"] = _ad_tags(call)
    segments = [
        {**{k: s.get(k) for k in _SEGMENT_FIELDS}, "text": redacted(s, "segment")} for s in call.get("segments", [])
    ]
    alerts = [{**{k: a.get(k) for k in _ALERT_FIELDS}, "text": redacted(a, "alert")} for a in call.get("alerts", [])]
    transcript = {"call": summary, "segments": segments, "alerts": alerts}
    return transcript, redactions


def redactions_json(redactions: list[Redaction]) -> list[dict[str, Any]]:
    return [asdict(r) for r in redactions]


def silenced_wav(path: Path, spans: list[tuple[float, float]]) -> bytes:
    """The WAV at `path` (mono 16-bit, as TrackRecorder writes) with every (start, end) span
    in seconds set to digital silence; every other sample as it was."""
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = wav.readframes(wav.getnframes())
    if params.sampwidth != 2 or params.nchannels != 1:
        raise ValueError(f"{path.name}: expected mono 16-bit PCM, got {params.nchannels} channels, "
                         f"{params.sampwidth * 8}-bit")
    samples = np.frombuffer(frames, dtype="<i2").copy()
    for start, end in spans:
        first = max(0, math.floor(start * params.framerate))
        last = min(len(samples), math.ceil(end * params.framerate))
        samples[first:last] = 0
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(params.framerate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
