"""The process-wide Whisper engine: one model shared by every call.

``AsrEngine.transcribe`` takes one VAD utterance and returns its text or ``None``.  Whisper,
given silence, noise or a click, confidently writes text that was never said ("Thank you for
watching", 「ご視聴ありがとうございました」, or one phrase eight times).  Supervisors get alerts
from this text, so the engine errs on the side of returning ``None``:

1. gate: too short or too quiet audio is never decoded;
2. decode: no prompt from earlier text, no timestamps, a token cap proportional to the audio's
   length, and a small temperature-fallback budget (the library default retries up to five
   times and costs seconds on exactly the noisy segments that produce garbage);
3. accept: drop results Whisper itself thinks are non-speech, collapse repetition loops and
   drop stock hallucination phrases.

The encoder input is built in one place (``_encoder_input``) so a trimmed-window fast path
(MODELS.md: ~3x faster on short utterances) can be added behind the same method later.
Not thread-safe by design: one worker thread calls it (the scheduler serialises work).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import resolve_model

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_MAX_NEW_TOKENS = 224  # Whisper's decoder context is 448 positions; CTranslate2 allows half


@dataclass(frozen=True)
class AsrOptions:
    model: str = "base"  # built-in name (see models.py), faster-whisper name or directory
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 2
    beam_size: int = 5  # finals
    partial_beam_size: int = 1  # interim hypotheses: greedy
    best_of: int = 3  # candidates per sampled (temperature > 0) retry
    # Finals: one sampled retry at 0.4 when the first decode hit the token cap, looks
    # repetitive or is unsure.  Partials never retry.  The library default (0.0..1.0 in 0.2
    # steps, up to 6 decodes of up to 448 tokens) took 10 s on a 0.4 s noise blip here.
    temperatures: tuple[float, ...] = (0.0, 0.4)
    allowed_languages: tuple[str, ...] = ("ja", "en")  # auto-detect picks among these only
    # Gate before decoding.
    min_duration_s: float = 0.3
    min_level_dbfs: float = -50.0  # level of the loudest 10% of 20 ms frames
    # Token cap: base + per second of audio.  The fixtures' lines need <= 7 tokens/s (en and
    # ja); 15/s leaves room for fast talkers and ASR errors, and bounds a loop on a blip.
    max_tokens_base: int = 10
    max_tokens_per_s: float = 15.0
    # Acceptance (Whisper's own thresholds; see _accept).
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    min_avg_logprob: float = -1.5  # below this the text is a guess whatever no_speech says
    loop_no_speech_threshold: float = 0.3  # repetition loops are dropped above this
    seed: int = 0  # sampling seed for temperature > 0 retries: same audio, same text


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str
    language_probability: float  # among allowed_languages (renormalised), 1.0 if given
    avg_logprob: float
    no_speech_prob: float
    duration: float  # seconds of audio given


@dataclass(frozen=True)
class _Decoded:
    text: str
    tokens: int
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    capped: bool  # stopped at the token cap, not at end-of-text


class AsrEngine:
    """One Whisper model for the whole process; call ``warm_up`` once at start."""

    def __init__(self, options: AsrOptions, cache_dir: Path) -> None:
        # Imported here so that importing stream_server.asr stays cheap.
        import ctranslate2
        from faster_whisper import WhisperModel

        self.options = options
        self.model_path = resolve_model(options.model, Path(cache_dir))
        t0 = time.perf_counter()
        self._model = WhisperModel(
            self.model_path,
            device=options.device,
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
        )
        ctranslate2.set_random_seed(options.seed)
        log.info("loaded whisper %s from %s in %.1fs", options.model, self.model_path,
                 time.perf_counter() - t0)
        self._multilingual = self._model.model.is_multilingual
        self._tokenizers: dict[str, object] = {}
        self._suppress: tuple[int, ...] | None = None

    @property
    def multilingual(self) -> bool:
        return self._multilingual

    def warm_up(self) -> None:
        """Run one full decode: the first one in a process pays seconds of allocation/JIT."""
        rng = np.random.default_rng(0)
        audio = (0.01 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
        t0 = time.perf_counter()
        enc = self._encode(audio)
        lang, _ = self._pick_language(enc, None)
        self._decode(enc, lang, 1.0, partial=False)
        log.info("asr warm-up took %.2fs", time.perf_counter() - t0)

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, *, partial: bool = False
    ) -> Transcription | None:
        """Transcribe one utterance (float32 mono 16 kHz in [-1, 1]); None if no credible speech.

        ``language=None`` auto-detects among ``allowed_languages``.  ``partial=True`` is for
        interim hypotheses: greedy, no fallback.
        """
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = audio.size / SAMPLE_RATE
        o = self.options
        if duration > 30.0:  # one Whisper window; the VAD cuts utterances at 15 s
            log.warning("asr got %.1fs of audio; only the first 30 s are transcribed", duration)
        if duration < o.min_duration_s or active_level_dbfs(audio) < o.min_level_dbfs:
            return None
        enc = self._encode(audio)
        lang, lang_prob = self._pick_language(enc, language)
        dec = self._decode(enc, lang, duration, partial=partial)
        text = self._accept(dec)
        if text is None:
            log.debug("asr rejected %.2fs: %r (lp %.2f, ns %.2f, cr %.2f, capped %s)", duration,
                      dec.text, dec.avg_logprob, dec.no_speech_prob, dec.compression_ratio, dec.capped)
            return None
        return Transcription(
            text=text,
            language=lang,
            language_probability=lang_prob,
            avg_logprob=dec.avg_logprob,
            no_speech_prob=dec.no_speech_prob,
            duration=duration,
        )

    # --- steps ---------------------------------------------------------------------------

    def _encoder_input(self, features: np.ndarray) -> np.ndarray:
        """Mel frames the encoder sees.  Whisper is trained on 30 s windows, so pad to 3000
        frames; the trimmed fast path (MODELS.md) would cut here instead."""
        from faster_whisper.audio import pad_or_trim

        return pad_or_trim(features, self._model.feature_extractor.nb_max_frames)

    def _encode(self, audio: np.ndarray):
        features = self._model.feature_extractor(audio)
        return self._model.encode(self._encoder_input(features))

    def _pick_language(self, enc, language: str | None) -> tuple[str, float]:
        """Language to decode with, and its probability among the allowed ones.

        Reuses the encoder output (WhisperModel.transcribe(language=None) encodes twice), and
        restricts the choice: on short telephone audio Whisper's top guess wanders to zh, ko,
        nn..., which would also make it transcribe in the wrong script.
        """
        if not self._multilingual:
            return "en", 1.0
        if language is not None:
            return language, 1.0
        allowed = self.options.allowed_languages
        probs = {tok[2:-2]: p for tok, p in self._model.model.detect_language(enc)[0]}
        if not allowed:
            best = max(probs, key=probs.__getitem__)
            return best, float(probs[best])
        scores = {lang: probs.get(lang, 0.0) for lang in allowed}
        best = max(scores, key=scores.__getitem__)
        total = sum(scores.values())
        return best, float(scores[best] / total) if total > 0 else 1.0 / len(allowed)

    def _tokenizer(self, language: str):
        tok = self._tokenizers.get(language)
        if tok is None:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            tok = Tokenizer(self._model.hf_tokenizer, self._multilingual, task="transcribe",
                            language=language)
            self._tokenizers[language] = tok
            if self._suppress is None:  # same ids for every language
                self._suppress = tuple(get_suppressed_tokens(tok, [-1]))
        return tok

    def _decode(self, enc, language: str, duration: float, *, partial: bool) -> _Decoded:
        """Greedy/beam decode with a budgeted temperature fallback (finals only)."""
        o = self.options
        tok = self._tokenizer(language)
        prompt = [*tok.sot_sequence, tok.no_timestamps]  # no previous text: no carried loops
        max_new = min(int(o.max_tokens_base + o.max_tokens_per_s * duration), _MAX_NEW_TOKENS)
        # CTranslate2 (4.8) generates at most min(max_length / 2, max_length - len(prompt))
        # tokens (OpenNMT/CTranslate2#1856), so faster-whisper's len(prompt) + max_new_tokens
        # yields about half the tokens asked for.  Ask for enough and count "capped" ourselves.
        max_length = min(self._model.max_length, max(2 * max_new, len(prompt) + max_new))
        temperatures = (0.0,) if partial else (o.temperatures or (0.0,))
        beam = o.partial_beam_size if partial else o.beam_size

        tries: list[_Decoded] = []
        for temperature in temperatures:
            if temperature > 0:
                kw = dict(beam_size=1, num_hypotheses=o.best_of, sampling_topk=0,
                          sampling_temperature=temperature)
            else:
                kw = dict(beam_size=beam)
            res = self._model.model.generate(
                enc, [prompt], max_length=max_length, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True,
                suppress_tokens=list(self._suppress or ()), **kw,
            )[0]
            ids = res.sequences_ids[0]
            # Same normalisation as faster-whisper (length_penalty 1): score is per token.
            avg_logprob = res.scores[0] * len(ids) / (len(ids) + 1)
            # A cap can cut a multi-byte character in half: drop the replacement char.
            text = tok.decode(ids).replace("\ufffd", "").strip()
            dec = _Decoded(text, len(ids), float(avg_logprob), float(res.no_speech_prob),
                           compression_ratio(text), temperature, len(ids) >= max_new)
            if dec.no_speech_prob > o.no_speech_threshold and dec.avg_logprob < o.log_prob_threshold:
                return dec  # Whisper says silence: a retry would only invent text
            if not (dec.capped or dec.compression_ratio > o.compression_ratio_threshold
                    or dec.avg_logprob < o.log_prob_threshold):
                return dec
            tries.append(dec)
        # Every try looked bad: prefer one that ended by itself, is not repetitive, is surest.
        return max(tries, key=lambda d: (not d.capped,
                                         d.compression_ratio <= o.compression_ratio_threshold,
                                         d.avg_logprob))

    def _accept(self, dec: _Decoded) -> str | None:
        o = self.options
        if not dec.text:
            return None
        if dec.no_speech_prob > o.no_speech_threshold and dec.avg_logprob < o.log_prob_threshold:
            return None  # Whisper's own silence rule
        if dec.avg_logprob < o.min_avg_logprob:
            return None
        text, repeats = collapse_repeats(dec.text)
        if repeats >= 3 and (dec.capped or dec.no_speech_prob > o.loop_no_speech_threshold):
            return None  # a loop plus any doubt: the decoder is making it up
        if is_stock_hallucination(text):
            return None
        return text or None


# --- text filters (pure; unit-tested) ----------------------------------------------------------

# Phrases Whisper writes on silence/noise because they end so many subtitled videos.  Rejected
# only when the whole output is made of them; kept small so real speech is never dropped.
HALLUCINATION_PHRASES: tuple[str, ...] = (
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "like and subscribe",
    "ご視聴ありがとうございました",
    "最後までご視聴いただきありがとうございました",
    "チャンネル登録よろしくお願いします",
    "チャンネル登録お願いします",
    "チャンネル登録",
    "お疲れ様でした",
    "字幕",
)
# Credit lines ("Subtitles by the Amara.org community", 「字幕:…」) whatever follows them.
HALLUCINATION_PREFIXES = re.compile(
    r"^(?:(?:subtitles?|captions?|transcription|translated)\s+by\b|字幕\s*(?:by|:|：|作成|制作|提供))",
    re.IGNORECASE,
)

# A phrase repeated 3+ times back to back, separated by nothing but spaces/punctuation.  Two
# patterns: space-delimited scripts repeat whole words ("Thank you. Thank you. Thank you.") and
# must not be cut inside a word ("bananana"); Japanese has no spaces, so a run of non-ASCII
# characters may repeat anywhere (「ふざけるなふざけるなふざけるな」).
_REPEAT_WORDS = re.compile(r"\b(\w(?:.{0,58}?\w)?)\b(?:\W*?\b\1\b){2,}", re.IGNORECASE | re.DOTALL)
_REPEAT_CJK = re.compile(r"([^\x00-\x7f\s、。，．！？・…]{1,60}?)(?:[\s、。，．！？・…]*\1){2,}")
_PUNCT_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def collapse_repeats(text: str) -> tuple[str, int]:
    """Collapse runs of 3+ identical phrases to one; return (text, longest run, 1 if none).

    Whisper's decoder loops (「はい。はい。はい。…」, "Thank you. Thank you. …") on noise and
    short bursts.  A caller who really repeats himself loses only the emphasis.  Units
    without a letter (digits: "555 555 555") are left alone.
    """
    longest = 1

    def repl(m: re.Match[str]) -> str:
        nonlocal longest
        unit = m.group(1)
        if not any(c.isalpha() for c in unit):
            return m.group(0)
        longest = max(longest, len(re.findall(re.escape(unit), m.group(0), re.IGNORECASE)))
        return unit

    out = _REPEAT_CJK.sub(repl, _REPEAT_WORDS.sub(repl, text))
    return out.strip(), longest


def _normalise(text: str) -> str:
    return _PUNCT_SPACE.sub("", unicodedata.normalize("NFKC", text).casefold())


_NORMALISED_PHRASES = sorted({_normalise(p) for p in HALLUCINATION_PHRASES}, key=len, reverse=True)


def is_stock_hallucination(text: str) -> bool:
    """True when ``text`` is nothing but stock video-ending/credit phrases."""
    stripped = text.strip()
    if HALLUCINATION_PREFIXES.match(stripped):
        return True
    rest = _normalise(stripped)
    if not rest:
        return True  # punctuation only
    for phrase in _NORMALISED_PHRASES:
        rest = rest.replace(phrase, "")
    return not rest


def compression_ratio(text: str) -> float:
    """gzip ratio as in Whisper: > 2.4 means repetitive text."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def active_level_dbfs(audio: np.ndarray, frame: int = 320) -> float:
    """Level of the loudest 10% of 20 ms frames: speech level, not diluted by pauses."""
    n = audio.size // frame
    if n == 0:
        power = float(np.mean(audio.astype(np.float64) ** 2)) if audio.size else 0.0
        return 10.0 * np.log10(max(power, 1e-12))
    power = np.mean(audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    return float(10.0 * np.log10(max(float(np.percentile(power, 90)), 1e-12)))
