"""Error rates of transcripts against scripts: word error rate for English, character error
rate for Japanese (no spaces between words), after the same normalisation on both sides."""

from __future__ import annotations

import re
import unicodedata

import jiwer

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalise(text: str, language: str) -> str:
    """NFKC, case-folded, punctuation removed; Japanese also loses every space."""
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return _SPACE.sub("", text) if language == "ja" else _SPACE.sub(" ", text).strip()


def error_rate(references: list[str], hypotheses: list[str], language: str) -> float:
    """Corpus-level WER (en and other spaced scripts) or CER (ja) over aligned lists."""
    refs = [normalise(r, language) for r in references]
    hyps = [normalise(h, language) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]  # jiwer rejects empty references
    refs, hyps = [refs[i] for i in keep], [hyps[i] for i in keep]
    if not refs:
        return float("nan")
    return jiwer.cer(refs, hyps) if language == "ja" else jiwer.wer(refs, hyps)
