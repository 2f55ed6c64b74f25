"""The obvious way, kept as the benchmark's yardstick: ``WhisperModel.transcribe()`` once per
VAD utterance, one utterance at a time, with the library's defaults.

Selected with ``STREAM_SERVER_ASR_PIPELINE=baseline``.  Every call's utterances still pass
through the same VAD, classifier and alert policy; only transcription differs from
``AsrEngine``: a 30 s padded window per utterance, faster-whisper's temperature fallback
(up to six decodes), language detection among all 99 languages, no batching and no
interim transcripts.  ``benchmarks/capacity.py`` runs it in the same invocation as the
fast path so every figure can be read as a ratio.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .engine import SAMPLE_RATE, AsrOptions, Transcription
from .models import resolve_model

log = logging.getLogger(__name__)


class TranscribeBaseline:
    """Same interface as ``AsrEngine`` (``warm_up``, ``transcribe``, ``transcribe_batch``)."""

    multilingual = True

    def __init__(self, options: AsrOptions, cache_dir: Path) -> None:
        from faster_whisper import WhisperModel

        self.options = options
        self._model = WhisperModel(
            resolve_model(options.model, Path(cache_dir)),
            device=options.device,
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
        )
        self.multilingual = self._model.model.is_multilingual

    def warm_up(self) -> None:
        self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, *, partial: bool = False
    ) -> Transcription | None:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        segments, info = self._model.transcribe(audio, language=language, beam_size=self.options.beam_size)
        segments = list(segments)  # the generator does the decoding
        text = "".join(s.text for s in segments).strip()
        if not text:
            return None
        return Transcription(
            text=text,
            language=info.language,
            language_probability=float(info.language_probability),
            avg_logprob=float(np.mean([s.avg_logprob for s in segments])),
            no_speech_prob=float(max(s.no_speech_prob for s in segments)),
            duration=audio.size / SAMPLE_RATE,
        )

    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        languages: Sequence[str | None],
        *,
        partial: bool = False,
        draft: bool = False,
    ) -> list[Transcription | None]:
        return [self.transcribe(a, lang, partial=partial) for a, lang in zip(audios, languages)]
