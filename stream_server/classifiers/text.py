"""Utterance-level text abuse scores (insult, threat) from the ONNX model under models/.

The model is a character n-gram TF-IDF + logistic regression trained by
``models/train_text_abuse.py``. It sees text only after :func:`normalize_text`, and an
utterance's score is the maximum over its :func:`scoring_units`; both live here so that
training (which picks thresholds through them) and serving share one definition and cannot
drift. This module imports numpy, onnxruntime and the standard library only: it must load in
the server without scikit-learn.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

from .onnx_model import load_onnx_model

MODEL_NAME = "text_abuse_v2"

NORMALIZATION = (
    "NFKC; lowercase; katakana folded to hiragana; apostrophes removed; every other "
    "punctuation, symbol, control or separator character except '*' becomes a space; runs of "
    "3+ identical characters cut to 2; spaces between two non-ASCII characters removed; "
    "whitespace collapsed; one space added at each end (empty text stays empty)."
)

# Katakana ァ..ヶ sit exactly 0x60 above hiragana ぁ..ゖ: folding makes バカ, ばか and the ASR's
# choice between them the same string. Apostrophes vanish so "you're" meets ASR's "youre".
_FOLD = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
_FOLD.update({ord(c): None for c in "'\u2018\u2019`\u00b4"})
_KEEP = {"*"}  # Whisper masks profanity as "f***": keep the mask as evidence.
_REPEATS = re.compile(r"(.)\1{2,}")
# Sentence ends after NFKC: 。 and … always, ! and ? always, "." only before a space or the end
# (so "3.5" and "e.g" stay whole).
_SENTENCE_END = re.compile(r"[。…]+|[!?]+|\.+(?=\s|$)")
# The graph's TF-IDF is dense (rows x ~32k n-grams, float32): cap rows per run to bound memory.
_CHUNK = 256
_CJK_GAP = re.compile(r"(?<=[^\x00-\x7f]) +(?=[^\x00-\x7f])")


def _is_break(ch: str) -> bool:
    return ch not in _KEEP and unicodedata.category(ch)[0] in "PSZC"


def normalize_text(text: str) -> str:
    """Map ASR output to the one surface form the model was trained on.

    Whisper's punctuation, casing, script (kanji/kana) and spacing vary between runs of the same
    words; folding them here keeps the n-grams stable. The padding spaces let character n-grams
    see word starts and ends. Returns "" for text with nothing left to score.
    """
    folded = unicodedata.normalize("NFKC", text).lower().translate(_FOLD)
    spaced = "".join(" " if _is_break(ch) else ch for ch in folded)
    spaced = _REPEATS.sub(r"\1\1", spaced)
    words = " ".join(spaced.split())
    words = _CJK_GAP.sub("", words)
    return f" {words} " if words else ""


def scoring_units(text: str) -> list[str]:
    """Normalised strings whose maximum score is the utterance's score.

    The model was trained on sentence-length utterances; inside a long ASR segment one abusive
    sentence is diluted by its neighbours (TF-IDF is length-normalised), so an utterance that
    holds several sentences is scored whole and per sentence. [] when nothing is left to score.
    """
    whole = normalize_text(text)
    if not whole:
        return []
    parts = [normalize_text(p) for p in _SENTENCE_END.split(unicodedata.normalize("NFKC", text))]
    parts = [p for p in parts if p and p != whole]
    return [whole, *dict.fromkeys(parts)]


def default_model_path() -> Path:
    """The repository's committed model: stream_server/classifiers/ -> ../../models/."""
    return Path(__file__).resolve().parents[2] / "models" / f"{MODEL_NAME}.onnx"


class TextAbuseClassifier:
    """Scores utterances with the ONNX model and the thresholds chosen for it in training.

    One session per process is enough: it is thread-safe, and one utterance costs well under a
    millisecond, so it runs single-threaded by default to leave the cores to ASR.
    """

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        self._session, self._meta = load_onnx_model(model_path, threads)
        self._input = self._session.get_inputs()[0].name
        self._output = self._meta["output"]["name"]
        self._categories = tuple(self._meta["categories"])
        self._thresholds = {c: float(self._meta["thresholds"][c]) for c in self._categories}

    @property
    def categories(self) -> tuple[str, ...]:
        """Output order of the model; names match alerts.AbuseCategory values."""
        return self._categories

    @property
    def thresholds(self) -> dict[str, float]:
        """Per-category decision thresholds picked on the validation split (see the .json)."""
        return dict(self._thresholds)

    @property
    def metadata(self) -> dict:
        """The model's sidecar JSON: version, data hash, metrics."""
        return self._meta

    def _run(self, units: list[str]) -> np.ndarray:
        feed = np.array(units, dtype=object).reshape(-1, 1)
        out = self._session.run([self._output], {self._input: feed})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(units), -1)

    def score(self, text: str, lang: str | None = None) -> dict[str, float]:
        """Probability per category for one utterance: the maximum over :func:`scoring_units`.

        ``lang`` is accepted so callers pass the ASR language today; v1 is a single bilingual
        character model and does not need it.
        """
        return self.score_batch([text], lang)[0]

    def score_batch(self, texts: list[str], lang: str | None = None) -> list[dict[str, float]]:
        """Like :meth:`score` for many utterances, batched into few session runs (cheaper)."""
        units = [scoring_units(t) for t in texts]
        flat = [u for unit in units for u in unit]
        probs = np.zeros((len(texts), len(self._categories)), dtype=np.float32)
        if flat:
            chunks = range(0, len(flat), _CHUNK)
            out = np.concatenate([self._run(flat[i : i + _CHUNK]) for i in chunks])
            start = 0
            for i, unit in enumerate(units):
                if unit:
                    probs[i] = out[start : start + len(unit)].max(axis=0)
                    start += len(unit)
        return [
            {c: float(p) for c, p in zip(self._categories, row, strict=True)} for row in probs
        ]
