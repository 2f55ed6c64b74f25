"""Whisper encoder window and batching: error rate and time per utterance on the fixture calls.

Every utterance of every fixture call (tests/fixtures/calls, both tracks, en and ja) is cut
from its 8 kHz μ-law track by the ground truth, from start − 0.3 s to end + 0.2 s as the VAD
segmenter keeps it, resampled to 16 kHz and transcribed with the call's language given, by one
loaded ``AsrEngine`` (the default model: Whisper base, int8, 2 threads). Two measurements:

1. Encoder window, batch 1, beam 5 (finals): Whisper's fixed 30 s window
   (``trim_window=False``) against the trimmed window (utterance + ``window_pad_s``, at least
   ``min_window_s``) for min_window_s = 3, 5, 6, 7, 8, 10 s. Reports English WER, Japanese CER,
   mean wall seconds per utterance and how many utterances' text differs from the 30 s result.
2. Batching at the default window (min 10 s): ``transcribe_batch`` on consecutive utterances,
   batch sizes 1, 2, 4, 8, for beam 5 (finals) and beam 1 (greedy, as partials decode).
   Reports mean s/utterance, speed-up against batch 1 and whether the texts are identical to
   batch 1's.
3. Conditioning on earlier text (default window, batch 1, beam 5): each utterance decoded with
   the same call and track's earlier transcripts as Whisper's previous-text prompt (what
   ``transcribe(condition_on_previous_text=True)`` does offline) against no prompt (the server).

Scoring (benchmarks/scoring.py, jiwer): NFKC, casefold, punctuation turned into spaces; Japanese
then has every space removed and is scored per character. A rejected utterance (None) counts as empty
text.

    .venv/bin/python benchmarks/asr_window.py            # full run, ~6 min (Intel Xeon) to ~10 min (AMD EPYC) on 2 cores
    .venv/bin/python benchmarks/asr_window.py --quick    # windows 30/10, batches 1/8 only

Results replace the ``asr_window`` section of benchmarks/RESULTS.md (``--no-write``: print only).
Needs the ``bench`` extra (jiwer).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from fixture_calls import CALL_NAMES, load_call  # tests/fixture_calls.py

from benchmarks.report import cpu_model, update_section
from benchmarks.scoring import error_rate
from stream_server.asr.engine import AsrEngine, AsrOptions
from stream_server.media.codecs import pcm16_to_float

RATE = 16000
PRE_ROLL, TAIL = 0.3, 0.2  # what the VAD segmenter keeps around an utterance
WINDOWS = (30, 3, 5, 6, 7, 8, 10)  # 30 = Whisper's fixed window (trim_window=False)
BATCHES = (1, 2, 4, 8)
QUICK_WINDOWS, QUICK_BATCHES = (30, 10), (1, 8)


@dataclass(frozen=True)
class Item:
    call: str
    track: str
    language: str
    text: str  # ground truth
    audio: np.ndarray


def load_items() -> list[Item]:
    items = []
    for name in CALL_NAMES:
        call = load_call(name)
        for track in ("caller", "agent"):
            audio = soxr.resample(pcm16_to_float(call.pcm16(track)), 8000, RATE).astype(np.float32)
            for u in call.utterances(track):
                start, end = max(0, int((u["start"] - PRE_ROLL) * RATE)), int((u["end"] + TAIL) * RATE)
                items.append(Item(name, track, call.truth["language"], u["text"], audio[start:end]))
    return items


def error_rates(items: list[Item], hyps: list[str]) -> dict[str, float]:
    """en: WER, ja: CER over all utterances of that language (corpus-level, benchmarks/scoring.py)."""
    out = {}
    for language in ("en", "ja"):
        pairs = [(it.text, h) for it, h in zip(items, hyps) if it.language == language]
        out[language] = error_rate([r for r, _ in pairs], [h for _, h in pairs], language)
    return out


@dataclass
class Run:
    label: str
    hyps: list[str]
    seconds: float  # wall time of the whole pass
    rejected: int

    def per_utt(self) -> float:
        return self.seconds / len(self.hyps)


def run_pass(engine: AsrEngine, items: list[Item], batch: int, label: str,
             progress: Callable[[str], None]) -> Run:
    hyps: list[str] = []
    rejected = 0
    t0 = time.perf_counter()
    for k in range(0, len(items), batch):
        chunk = items[k : k + batch]
        results = engine.transcribe_batch([it.audio for it in chunk], [it.language for it in chunk])
        rejected += sum(r is None for r in results)
        hyps += [r.text if r else "" for r in results]
    run = Run(label, hyps, time.perf_counter() - t0, rejected)
    progress(f"{label}: {run.per_utt():.3f} s/utt, " + ", ".join(
        f"{k} {v:.3f}" for k, v in error_rates(items, hyps).items()))
    return run


def measure(engine: AsrEngine, items: list[Item], windows: tuple[int, ...], batches: tuple[int, ...],
            progress: Callable[[str], None]) -> tuple[dict[int, Run], dict[tuple[int, int], Run]]:
    base = engine.options
    window_runs: dict[int, Run] = {}
    for w in windows:
        if w == 30:
            engine.options = dataclasses.replace(base, trim_window=False, beam_size=5)
        else:
            engine.options = dataclasses.replace(base, trim_window=True, min_window_s=float(w), beam_size=5)
        window_runs[w] = run_pass(engine, items, 1, f"window {w} s", progress)
    batch_runs: dict[tuple[int, int], Run] = {}
    for beam in (5, 1):
        engine.options = dataclasses.replace(base, trim_window=True, min_window_s=10.0, beam_size=beam)
        for b in batches:
            batch_runs[beam, b] = run_pass(engine, items, b, f"beam {beam} batch {b}", progress)
    engine.options = base
    return window_runs, batch_runs


def time_split(engine: AsrEngine, items: list[Item]) -> list[tuple[str, int, float, float]]:
    """(decode kind, batch, ms per utterance in features + encoder, ms in the decoder).

    Calls the engine's private steps on purpose: this is a profile of them."""
    o = engine.options
    kinds = [("30 s window, beam 5", 30.0, 5, 1), ("caller final: 10 s window, beam 5", o.min_window_s, 5, 1),
             ("caller final: 10 s window, beam 5", o.min_window_s, 5, 4),
             ("agent draft: 5 s window, greedy", o.draft_min_window_s, o.draft_beam_size, 1),
             ("agent draft: 5 s window, greedy", o.draft_min_window_s, o.draft_beam_size, 2)]
    rows = []
    for label, window, beam, batch in kinds:
        encode_s = decode_s = 0.0
        for k in range(0, len(items), batch):
            chunk = items[k : k + batch]
            t0 = time.perf_counter()
            enc = engine._encode([it.audio for it in chunk], window)
            t1 = time.perf_counter()
            engine._generate(enc, [it.language for it in chunk], [it.audio.size / RATE for it in chunk], 0.0, beam)
            encode_s, decode_s = encode_s + t1 - t0, decode_s + time.perf_counter() - t1
        rows.append((label, batch, 1000 * encode_s / len(items), 1000 * decode_s / len(items)))
    return rows


class _PromptedModel:
    """Wraps the CTranslate2 model so that every ``generate`` starts from a previous-text prompt
    (<|startofprev|> + the last 100 tokens of earlier transcripts). Benchmark-only: the server
    does not prompt, and this measures why."""

    def __init__(self, model, prefix: list[int]) -> None:
        self._model, self._prefix = model, prefix

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def generate(self, features, prompts, *, max_length: int, **kw):
        return self._model.generate(features, [self._prefix + p for p in prompts],
                                    max_length=min(448, max_length + len(self._prefix)), **kw)


def prompt_effect(engine: AsrEngine, items: list[Item], progress: Callable[[str], None]) -> dict[str, list[str]]:
    """Texts per item without and with the previous-text prompt (same call and track)."""
    out: dict[str, list[str]] = {"no prompt (server)": [], "previous text": []}
    model = engine._model.model
    for label, prompted in (("no prompt (server)", False), ("previous text", True)):
        earlier: dict[tuple[str, str], str] = {}
        for it in items:
            before = earlier.get((it.call, it.track), "")
            if prompted and before:
                tok = engine._tokenizer(it.language)
                engine._model.model = _PromptedModel(model, [tok.sot_prev, *tok.encode(" " + before)[-100:]])
            try:
                result = engine.transcribe_batch([it.audio], [it.language])[0]
            finally:
                engine._model.model = model
            text = result.text if result else ""
            out[label].append(text)
            earlier[it.call, it.track] = f"{before} {text}".strip()
        progress(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in error_rates(items, out[label]).items()))
    return out


def render_prompt_effect(items: list[Item], runs: dict[str, list[str]]) -> str:
    lines = ["### Conditioning on the call's earlier text (min 10 s window, batch 1, beam 5)", "",
             "| prompt | caller en WER | caller ja CER | agent en WER | agent ja CER |", "|---|---|---|---|---|"]
    for label, hyps in runs.items():
        rates = {track: error_rates([it for it in items if it.track == track],
                                    [h for it, h in zip(items, hyps) if it.track == track])
                 for track in ("caller", "agent")}
        lines.append(f"| {label} | {rates['caller']['en']:.3f} | {rates['caller']['ja']:.3f} | "
                     f"{rates['agent']['en']:.3f} | {rates['agent']['ja']:.3f} |")
    plain, prompted = runs.values()
    changed = [(it, a, b) for it, a, b in zip(items, plain, prompted) if a != b and it.track == "caller"]
    if changed:
        lines += ["", "Caller utterances the prompt changes:", "", "| call | truth | no prompt | previous text |",
                  "|---|---|---|---|"]
        lines += [f"| {it.call} | {it.text} | {a or '(none)'} | {b or '(none)'} |" for it, a, b in changed]
    return "\n".join(lines + [""])


def render(command: str, engine: AsrEngine, items: list[Item], window_runs: dict[int, Run],
           batch_runs: dict[tuple[int, int], Run]) -> str:
    o = engine.options
    n_en = sum(it.language == "en" for it in items)
    durations = [it.audio.size / RATE for it in items]
    lines = [
        "## ASR encoder window and batching (issue: performance)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}",
        (f"- Model: Whisper {o.model} ({o.compute_type}, {o.cpu_threads} threads, {o.device}), "
         f"window pad {o.window_pad_s} s; language given (the call's)"),
        (f"- Utterances: {len(items)} ({n_en} en, {len(items) - n_en} ja; both tracks of "
         f"{len(CALL_NAMES)} fixture calls), {min(durations):.1f}–{max(durations):.1f} s, "
         f"mean {np.mean(durations):.2f} s, cut at ground truth −{PRE_ROLL} s / +{TAIL} s"),
        "",
        ("How to read: en WER / ja CER after NFKC, casefold and punctuation removal (ja without "
         "spaces), lower is better; s/utt is the mean wall time per utterance (encode + decode + "
         "any fallback retry); \"differs\" counts utterances whose exact text is not the 30 s "
         "window's; a trimmed window is utterance + pad, at least min; rejected = no text returned."),
        "",
    ]
    if window_runs:
        ref = window_runs.get(30)
        lines += [
            "### Encoder window (batch 1, beam 5)",
            "",
            "| window | en WER | ja CER | s/utt | vs 30 s | differs from 30 s | rejected |",
            "|---|---|---|---|---|---|---|",
        ]
        for w, run in window_runs.items():
            rates = error_rates(items, run.hyps)
            label = "30 s fixed" if w == 30 else f"min {w} s"
            speed = f"{ref.per_utt() / run.per_utt():.2f}x" if ref else "—"
            differs = sum(a != b for a, b in zip(run.hyps, ref.hyps)) if ref else "—"
            lines.append(f"| {label} | {rates['en']:.3f} | {rates['ja']:.3f} | {run.per_utt():.3f} | "
                         f"{speed} | {differs} | {run.rejected} |")
        lines.append("")
        default = window_runs.get(10)
        if ref and default:
            changed = [(it, a, b) for it, a, b in zip(items, ref.hyps, default.hyps) if a != b]
            if changed:
                lines += ["Utterances where min 10 s and 30 s disagree:", "",
                          "| call/track | truth | 30 s | min 10 s |", "|---|---|---|---|"]
                lines += [f"| {it.call}/{it.track} | {it.text} | {a or '(none)'} | {b or '(none)'} |"
                          for it, a, b in changed]
                lines.append("")
    if batch_runs:
        lines += [
            "### Batching (min 10 s window)",
            "",
            "| beam | batch | s/utt | speed-up vs batch 1 | texts = batch 1 | en WER | ja CER |",
            "|---|---|---|---|---|---|---|",
        ]
        for (beam, b), run in batch_runs.items():
            one = batch_runs.get((beam, 1))
            rates = error_rates(items, run.hyps)
            if one is None:
                speed, same = "—", "—"
            else:
                speed = f"{one.per_utt() / run.per_utt():.2f}x"
                diff = sum(a != c for a, c in zip(run.hyps, one.hyps))
                same = "yes" if diff == 0 else f"no ({diff} differ)"
            name = "5 (finals)" if beam == 5 else "1 (greedy, partials)"
            lines.append(f"| {name} | {b} | {run.per_utt():.3f} | {speed} | {same} | "
                         f"{rates['en']:.3f} | {rates['ja']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="windows 30 and 10 s, batches 1 and 8 only")
    parser.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "stream_server",
                        help="model cache (default: %(default)s)")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/asr_window.py", *sys.argv[1:]])

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    items = load_items()
    engine = AsrEngine(AsrOptions(), args.cache_dir)
    engine.warm_up()
    windows, batches = (QUICK_WINDOWS, QUICK_BATCHES) if args.quick else (WINDOWS, BATCHES)
    # The first call at a new batch size pays allocation; keep it out of the timings.
    engine.transcribe_batch([it.audio for it in items[: max(batches)]],
                            [it.language for it in items[: max(batches)]])
    progress(f"{len(items)} utterances; model {engine.model_path}")
    window_runs, batch_runs = measure(engine, items, windows, batches, progress)
    section = render(command, engine, items, window_runs, batch_runs)
    split = time_split(engine, items)
    section += "\n".join([
        "", "Where one utterance's time goes (first decode only, no fallback; same engine and threads):", "",
        "| decode | batch | features + encoder (ms/utt) | decoder (ms/utt) |", "|---|---|---|---|",
        *(f"| {label} | {batch} | {enc:.0f} | {dec:.0f} |" for label, batch, enc, dec in split), "",
    ])
    if not args.quick:
        section += "\n" + render_prompt_effect(items, prompt_effect(engine, items, progress))
    print(section)
    if not args.no_write:
        update_section("asr_window", section)


if __name__ == "__main__":
    main()
