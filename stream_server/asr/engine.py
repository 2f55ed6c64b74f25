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

Two things make it fast enough for dozens of calls per two cores (benchmarks/RESULTS.md):

- **trimmed window**: Whisper pads every input to 30 s, so a 1.5 s insult costs as much
  encoder time as 30 s of speech.  The encoder runs on the utterance plus a margin instead
  (``window_pad_s``, at least ``min_window_s``); the error-rate effect is measured by
  ``benchmarks/asr_window.py``.
- **batches**: ``transcribe_batch`` encodes and decodes utterances of several calls in one
  model call (padded to the longest).

Up to ``AsrOptions.workers`` threads may call ``transcribe_batch`` at once (CTranslate2
runs one model replica per worker; the weights are shared).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import zlib
from collections.abc import Sequence
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
    cpu_threads: int = 2  # per worker
    workers: int = 1  # concurrent transcribe_batch calls the model accepts
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
    # Acceptance (Whisper's thresholds, but see _accept). Whisper's no-speech 0.6 let a 0.9 s
    # line blip through as "Oh." (no-speech 0.51, logprob -1.40) on an AMD EPYC; no fixture
    # utterance decodes below logprob -0.85, so unsure text at no-speech > 0.4 is dropped.
    no_speech_threshold: float = 0.4
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    min_avg_logprob: float = -1.5  # below this the text is a guess whatever no_speech says
    loop_no_speech_threshold: float = 0.3  # repetition loops are dropped above this
    seed: int = 0  # sampling seed for temperature > 0 retries: same audio, same text
    # Encoder window: utterance + pad, at least min_window_s; trim_window=False is Whisper's
    # fixed 30 s window (3-4x the encoder time on short phrases).
    trim_window: bool = True
    window_pad_s: float = 1.0
    # Windows come in whole steps. The encoder's convolution keeps a prepared kernel per input
    # length on each model worker and never drops them: with a window per 20 ms of speech (~1000
    # lengths) the process grew ~190 KB per batch on 2 workers, ~84 MB in the 30-minute soak.
    # 1 s steps: 21 lengths, no growth, at most 1 s more silence for the encoder.
    window_step_s: float = 1.0
    # Shorter windows cost accuracy and are fragile: at 5-6 s Whisper base rejects or garbles
    # raised-voice English insults it gets right at 7-10 s (tests/test_asr_engine.py).
    min_window_s: float = 10.0
    # Draft decodes (agent-track finals: QA reads them later, no alert waits on them).
    draft_min_window_s: float = 5.0
    draft_beam_size: int = 1


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
            num_workers=options.workers,
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
        """Run full decodes, single and batched: the first ones in a process pay seconds of
        allocation."""
        rng = np.random.default_rng(0)
        audio = (0.01 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
        t0 = time.perf_counter()
        for batch in (1, 2):
            enc = self._encode([audio] * batch)
            langs = [lang for lang, _ in self._pick_languages(enc, [None] * batch)]
            self._decode(enc, langs, [1.0] * batch, partial=False, beam=self.options.beam_size)
        log.info("asr warm-up took %.2fs", time.perf_counter() - t0)

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, *, partial: bool = False
    ) -> Transcription | None:
        """Transcribe one utterance (float32 mono 16 kHz in [-1, 1]); None if no credible speech.

        ``language=None`` auto-detects among ``allowed_languages``.  ``partial=True`` is for
        interim hypotheses: greedy, no fallback.
        """
        return self.transcribe_batch([audio], [language], partial=partial)[0]

    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        languages: Sequence[str | None],
        *,
        partial: bool = False,
        draft: bool = False,
    ) -> list[Transcription | None]:
        """``transcribe`` for several utterances in one encoder and one decoder call.

        ``draft=True`` trades some accuracy for about half the cost (a shorter minimum window,
        greedy): for work nobody waits on, such as the agent's side under load.
        """
        o = self.options
        results: list[Transcription | None] = [None] * len(audios)
        clips: list[np.ndarray] = []
        index: list[int] = []
        for i, audio in enumerate(audios):
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            duration = audio.size / SAMPLE_RATE
            if duration > 30.0:  # one Whisper window; the VAD cuts utterances at 15 s
                log.warning("asr got %.1fs of audio; only the first 30 s are transcribed", duration)
            if duration < o.min_duration_s or active_level_dbfs(audio) < o.min_level_dbfs:
                continue
            clips.append(audio)
            index.append(i)
        if not clips:
            return results
        durations = [clip.size / SAMPLE_RATE for clip in clips]
        enc = self._encode(clips, o.draft_min_window_s if draft else o.min_window_s)
        picked = self._pick_languages(enc, [languages[i] for i in index])
        beam = o.partial_beam_size if partial else o.draft_beam_size if draft else o.beam_size
        decoded = self._decode(enc, [lang for lang, _ in picked], durations, partial=partial, beam=beam)
        for i, duration, (lang, lang_prob), dec in zip(index, durations, picked, decoded):
            text = self._accept(dec)
            if text is None:
                log.debug("asr rejected %.2fs: %r (lp %.2f, ns %.2f, cr %.2f, capped %s)", duration,
                          dec.text, dec.avg_logprob, dec.no_speech_prob, dec.compression_ratio,
                          dec.capped)
                continue
            results[i] = Transcription(
                text=text,
                language=lang,
                language_probability=lang_prob,
                avg_logprob=dec.avg_logprob,
                no_speech_prob=dec.no_speech_prob,
                duration=duration,
            )
        return results

    # --- steps ---------------------------------------------------------------------------

    def window_frames(self, duration: float, min_window_s: float | None = None) -> int:
        """Mel frames (10 ms each) the encoder sees for an utterance of ``duration`` seconds."""
        full = self._model.feature_extractor.nb_max_frames
        o = self.options
        if not o.trim_window:
            return full
        shortest = o.min_window_s if min_window_s is None else min_window_s
        frames = int(np.ceil(max(duration + o.window_pad_s, shortest) * 100))
        step = max(2, round(o.window_step_s * 100))
        frames = -(-frames // step) * step
        return min(full, frames + frames % 2)  # the encoder's conv stride is 2

    def _encode(self, clips: Sequence[np.ndarray], min_window_s: float | None = None):
        """One encoder call for the batch; inputs are padded to the longest window."""
        frames = max(self.window_frames(clip.size / SAMPLE_RATE, min_window_s) for clip in clips)
        samples = frames * self._model.feature_extractor.hop_length
        # Pad with digital silence before the mel transform, as Whisper's own log_mel_spectrogram
        # does (faster-whisper pads the mel frames with zeros instead); measured in RESULTS.md.
        features = [
            self._model.feature_extractor(np.pad(clip[:samples], (0, samples - min(clip.size, samples))),
                                          padding=0)[:, :frames]
            for clip in clips
        ]
        return self._model.encode(np.stack(features))

    def _pick_languages(self, enc, languages: Sequence[str | None]) -> list[tuple[str, float]]:
        """Language to decode each item with, and its probability among the allowed ones.

        Reuses the encoder output (WhisperModel.transcribe(language=None) encodes twice), and
        restricts the choice: on short telephone audio Whisper's top guess wanders to zh, ko,
        nn..., which would also make it transcribe in the wrong script.
        """
        if not self._multilingual:
            return [("en", 1.0)] * len(languages)
        if all(lang is not None for lang in languages):
            return [(lang, 1.0) for lang in languages]
        detected = self._model.model.detect_language(enc)
        return [
            (lang, 1.0) if lang is not None else self._restrict({t[2:-2]: p for t, p in found})
            for lang, found in zip(languages, detected)
        ]

    def _restrict(self, probs: dict[str, float]) -> tuple[str, float]:
        allowed = self.options.allowed_languages
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

    def _decode(self, enc, languages: Sequence[str], durations: Sequence[float], *,
                partial: bool, beam: int) -> list[_Decoded]:
        """Beam (greedy for partials) decode of the batch; finals that look bad get a budgeted
        temperature-fallback retry, re-decoded together."""
        o = self.options
        temperatures = (0.0,) if partial else (o.temperatures or (0.0,))
        todo = list(range(len(languages)))
        tries: list[list[_Decoded]] = [[] for _ in languages]
        best: list[_Decoded | None] = [None] * len(languages)
        for temperature in temperatures:
            if not todo:
                break
            sub = enc if len(todo) == len(languages) else _select(enc, todo)
            decoded = self._generate(sub, [languages[i] for i in todo], [durations[i] for i in todo],
                                     temperature, beam)
            retry = []
            for i, dec in zip(todo, decoded):
                silent = dec.no_speech_prob > o.no_speech_threshold and dec.avg_logprob < o.log_prob_threshold
                doubtful = (dec.capped or dec.compression_ratio > o.compression_ratio_threshold
                            or dec.avg_logprob < o.log_prob_threshold)
                if silent or not doubtful:  # silence: a retry would only invent text
                    best[i] = dec
                else:
                    tries[i].append(dec)
                    retry.append(i)
            todo = retry
        for i in todo:  # every try looked bad: prefer one that ended by itself, not repetitive, surest
            best[i] = max(tries[i], key=lambda d: (not d.capped,
                                                   d.compression_ratio <= o.compression_ratio_threshold,
                                                   d.avg_logprob))
        return best  # type: ignore[return-value]

    def _generate(self, enc, languages: Sequence[str], durations: Sequence[float], temperature: float,
                  beam: int) -> list[_Decoded]:
        o = self.options
        tokenizers = [self._tokenizer(lang) for lang in languages]
        prompts = [[*tok.sot_sequence, tok.no_timestamps] for tok in tokenizers]  # no carried loops
        caps = [min(int(o.max_tokens_base + o.max_tokens_per_s * d), _MAX_NEW_TOKENS) for d in durations]
        # CTranslate2 (4.8) generates at most min(max_length / 2, max_length - len(prompt))
        # tokens (OpenNMT/CTranslate2#1856), so faster-whisper's len(prompt) + max_new_tokens
        # yields about half the tokens asked for.  Ask for enough; each item is cut to its own
        # cap below (a batch shares one max_length).
        longest = max(caps)
        max_length = min(self._model.max_length, max(2 * longest, len(prompts[0]) + longest))
        if temperature > 0:
            kw = {"beam_size": 1, "num_hypotheses": o.best_of, "sampling_topk": 0,
                  "sampling_temperature": temperature}
        else:
            kw = {"beam_size": beam}
        results = self._model.model.generate(
            enc, prompts, max_length=max_length, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=list(self._suppress or ()), **kw,
        )
        out = []
        for res, tok, cap in zip(results, tokenizers, caps):
            ids = res.sequences_ids[0][:cap]
            # Same normalisation as faster-whisper (length_penalty 1): score is per token.
            avg_logprob = res.scores[0] * len(ids) / (len(ids) + 1)
            # A cap can cut a multi-byte character in half: drop the replacement char.
            text = tok.decode(ids).replace("\ufffd", "").strip()
            out.append(_Decoded(text, len(ids), float(avg_logprob), float(res.no_speech_prob),
                                compression_ratio(text), temperature, len(ids) >= cap))
        return out

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
        text = undouble(text)
        if is_stock_hallucination(text):
            return None
        return text or None


def _select(enc, rows: Sequence[int]):
    """Rows of an encoder output (a CTranslate2 StorageView) as a new StorageView."""
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(enc)[list(rows)]))


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


_DOUBLED = re.compile(r"(\S.*?)[\s、。，．！？,.!?]*\1[\s、。，．！？,.!?]*", re.DOTALL)


def undouble(text: str, min_chars: int = 6) -> str:
    """A whole output that is one phrase twice ("You are a useless idiot. You are a useless
    idiot.") becomes the phrase once.

    On a trimmed window the decoder, having written the utterance, often starts over on the
    silent padding instead of ending.  Phrases under ``min_chars`` letters ("No, no") are
    left alone: people do say those twice.
    """
    stripped = text.strip()
    m = _DOUBLED.fullmatch(stripped)
    if not m or len(_normalise(m.group(1))) < min_chars:
        return text
    phrase, last = m.group(1).strip(), stripped[-1]
    return phrase if last.isalnum() or phrase.endswith(last) else phrase + last  # keep the final "."


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
