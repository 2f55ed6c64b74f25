#!/usr/bin/env python3
"""Write models/EVALUATION.md: the text model on its held-out split and natural sets, on ASR
transcripts of synthesised held-out utterances, and the voice (shouting) model.

Run from the repository root after the models are built (``make models`` runs it last)::

    .venv/bin/python models/evaluate.py            # reuse models/data/asr_eval/transcripts.csv
    .venv/bin/python models/evaluate.py --asr      # re-synthesise and re-transcribe (~10 min, 2 cores)

The ASR part: from the corpus's held-out **test** split (lexemes or frames training never saw),
clean template rows only, per language up to PER_CATEGORY abusive rows per category and
NEGATIVES hard negatives (complaints, escalations, benign trigger words, the v2 categories'
look-alikes), chosen by a fixed hash of the row id. Each is spoken by a TTS voice (espeak-ng for
English, pyopenjtalk-plus for Japanese; voice, pitch and speed varied per row), put through the
telephone channel the fixtures use (8 kHz, 300-3400 Hz band-pass, G.711 mu-law), decoded back to
16 kHz and transcribed by the server's own ASR engine (faster-whisper base int8, beam 5, the
call's language given, as after the first confident detection). The transcripts are stored with
their labels in transcripts.csv so that a retrained text model is re-scored without ASR.
Needs the ``train`` extra, espeak-ng and pyopenjtalk-plus only with --asr.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_server.classifiers.text import TextAbuseClassifier, default_model_path


def _training_module():
    """models/train_text_abuse.py: the categories and the hard-negative rule come from there."""
    spec = importlib.util.spec_from_file_location("train_text_abuse", REPO / "models" / "train_text_abuse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_TRAINING = _training_module()
CATEGORIES = _TRAINING.CATEGORIES
is_hard_negative = _TRAINING.is_hard_negative

CORPUS = REPO / "models" / "data" / "text_abuse_v2" / "corpus.csv"
TRANSCRIPTS = REPO / "models" / "data" / "asr_eval" / "transcripts.csv"
VOICE_EVAL = REPO / "models" / "voice_shouting_eval.json"
VOICE_META = REPO / "models" / "voice_shouting_v1.json"
OUT = REPO / "models" / "EVALUATION.md"
PER_CATEGORY = 14
NEGATIVES = 70
EN_VOICES = [("en-us", 45, 160), ("en-gb", 35, 150), ("en-us+m3", 40, 165), ("en-gb+f2", 55, 155),
             ("en-us+f3", 60, 170), ("en-gb+m2", 30, 145)]
JA_VOICES = [(-5.0, 0.9), (-2.0, 1.0), (0.0, 1.05), (2.0, 0.95), (-4.0, 1.1)]
TARGETS = {"f1": 0.90, "hard_negative_fpr": 0.03, "asr_recall": 0.80}


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def held_out_sample() -> list[dict]:
    """Clean template test rows: per language, PER_CATEGORY per category + NEGATIVES hard negatives."""
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test" and r["variant"] == "clean"
                and r["source"] == "template"]
    rows.sort(key=lambda r: _hash(r["id"]))
    chosen: dict[str, dict] = {}
    for lang in ("en", "ja"):
        mine = [r for r in rows if r["lang"] == lang]
        for cat in CATEGORIES:
            # Rows whose only label is this category first, so each category is measured on itself.
            own = [r for r in mine if r[cat] == "1" and sum(r[c] == "1" for c in CATEGORIES) == 1]
            for r in own[:PER_CATEGORY]:
                chosen[r["id"]] = r
        hard = [r for r in mine if is_hard_negative(r)]
        for r in hard[:NEGATIVES]:
            chosen[r["id"]] = r
    return list(chosen.values())


def _fixtures_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", REPO / "scripts" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up here
    spec.loader.exec_module(module)
    return module


def telephone_audio(fx, row: dict) -> np.ndarray:
    """TTS -> 8 kHz band-pass -> mu-law -> 16 kHz float32, as the server receives a Twilio call."""
    import soxr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    h = _hash(row["id"])
    if row["lang"] == "en":
        voice, pitch, speed = EN_VOICES[h % len(EN_VOICES)]
        x, sr = fx.tts_en(row["text"], {"voice": voice, "pitch": pitch, "speed": speed})
    else:
        half_tone, speed = JA_VOICES[h % len(JA_VOICES)]
        x, sr = fx.tts_ja(row["text"], {"half_tone": half_tone, "speed": speed})
    x = fx.trim(fx.telephone_band(soxr.resample(x, sr, fx.RATE, quality="VHQ")))
    x = x * 10.0 ** ((fx.LEVEL_CALLER - fx.active_level_db(x)) / 20.0)
    pcm = audioop.ulaw2lin(fx.to_ulaw(x), 2)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    pad = np.zeros(int(0.3 * 16000), dtype=np.float32)  # the VAD's pre-roll and hang-over
    return np.concatenate([pad, soxr.resample(audio, fx.RATE, 16000), pad]).astype(np.float32)


def transcribe(rows: list[dict]) -> list[dict]:
    from stream_server.asr.engine import AsrEngine, AsrOptions
    from stream_server.config import Settings

    fx = _fixtures_module()
    engine = AsrEngine(AsrOptions(model="base", cpu_threads=2), Settings().resolved_model_cache_dir)
    engine.warm_up()
    out, t0 = [], time.time()
    for lang in ("en", "ja"):
        mine = [r for r in rows if r["lang"] == lang]
        for i in range(0, len(mine), 4):
            batch = mine[i : i + 4]
            audios = [telephone_audio(fx, r) for r in batch]
            results = engine.transcribe_batch(audios, [lang] * len(batch))
            for r, res in zip(batch, results, strict=True):
                out.append({"id": r["id"], "lang": lang, **{c: r[c] for c in CATEGORIES}, "kind": r["kind"],
                            "text": r["text"], "asr_text": res.text if res else ""})
            print(f"  {len(out)}/{len(rows)} transcribed ({time.time() - t0:.0f} s)", flush=True)
    return out


def write_transcripts(rows: list[dict]) -> None:
    TRANSCRIPTS.parent.mkdir(parents=True, exist_ok=True)
    with TRANSCRIPTS.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["id", "lang", *CATEGORIES, "kind", "text", "asr_text"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_transcripts() -> list[dict]:
    with TRANSCRIPTS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def asr_metrics(rows: list[dict], clf: TextAbuseClassifier) -> dict:
    """Per language and category: recall on the ASR text (and on the clean text it came from),
    false alarms on the hard negatives."""
    t = clf.thresholds
    asr_scores = clf.score_batch([r["asr_text"] for r in rows])
    clean_scores = clf.score_batch([r["text"] for r in rows])
    out: dict = {}
    for lang in ("en", "ja"):
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        pos = [i for i in idx if any(rows[i][c] == "1" for c in CATEGORIES)]
        neg = [i for i in idx if i not in pos]

        def any_flag(scores: dict[str, float]) -> bool:
            return any(scores[c] >= t[c] for c in CATEGORIES)

        per_cat = {}
        for c in CATEGORIES:
            mine = [i for i in pos if rows[i][c] == "1"]
            if mine:
                per_cat[c] = {
                    "n": len(mine),
                    "recall_category_asr": float(np.mean([asr_scores[i][c] >= t[c] for i in mine])),
                    "recall_any_asr": float(np.mean([any_flag(asr_scores[i]) for i in mine])),
                    "recall_category_clean": float(np.mean([clean_scores[i][c] >= t[c] for i in mine])),
                }
        tp = sum(any_flag(asr_scores[i]) for i in pos)
        fp = sum(any_flag(asr_scores[i]) for i in neg)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(pos) if pos else 0.0
        out[lang] = {
            "abusive": len(pos), "hard_negatives": len(neg),
            "recall_any_asr": recall, "precision_any_asr": precision,
            "f1_any_asr": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "recall_any_clean": float(np.mean([any_flag(clean_scores[i]) for i in pos])) if pos else 0.0,
            "false_alarm_asr": fp / len(neg) if neg else 0.0,
            "categories": per_cat,
            "misses": [(rows[i]["text"], rows[i]["asr_text"]) for i in pos if not any_flag(asr_scores[i])][:8],
            "false_alarms": [(rows[i]["text"], rows[i]["asr_text"]) for i in neg if any_flag(asr_scores[i])][:8],
        }
    return out


def _ok(value: float, target: float, higher: bool = True) -> str:
    return "✅" if (value >= target if higher else value <= target) else "❌ (below target)" if higher else "❌ (above target)"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(meta: dict, asr: dict, voice_eval: dict | None, voice_meta: dict | None, command: str) -> str:
    test = meta["metrics"]["test"]
    natural = meta["metrics"]["natural"]
    lines = [
        "# Evaluation: text abuse model and shouting model",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} (do not edit by hand).",
        f"Text model: `models/{meta['model']}.onnx` {meta['version']} (corpus sha256 "
        f"`{meta['training_data']['sha256'][:12]}…`); thresholds per category: "
        + ", ".join(f"{c} {v}" for c, v in meta["thresholds"].items()) + ".",
        "",
        "## Targets",
        "",
        "| target | language | measured | |",
        "|---|---|---|---|",
    ]
    for lang in ("en", "ja"):
        f1 = test["abusive_vs_not"][lang]["f1"]
        lines.append(f"| abusive-vs-not F1 on the held-out split ≥ {TARGETS['f1']} | {lang} | {f1:.3f} | {_ok(f1, TARGETS['f1'])} |")
    for lang in ("en", "ja"):
        fpr = test["abusive_vs_not"][lang]["false_alarm_hard_negatives"]
        lines.append(f"| false-positive rate on held-out hard negatives ≤ {TARGETS['hard_negative_fpr']:.0%} | {lang} | "
                     f"{fpr:.2%} | {_ok(fpr, TARGETS['hard_negative_fpr'], higher=False)} |")
    for lang in ("en", "ja"):
        rec = asr[lang]["recall_any_asr"]
        lines.append(f"| recall on ASR transcripts of synthesised held-out utterances ≥ {TARGETS['asr_recall']} | {lang} | "
                     f"{rec:.3f} | {_ok(rec, TARGETS['asr_recall'])} |")
    lines += [
        "",
        "## 1. Held-out text split",
        "",
        ("Test rows use a lexeme or a carrier frame that training never saw (`holdout` column of the "
         "corpus); half of them are ASR-like corruptions of the other half (`variant=asr`)."),
        "",
        "| language | abusive | not abusive | precision | recall | F1 | FPR hard negatives | FPR all negatives |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lang in ("en", "ja", "all"):
        v = test["abusive_vs_not"][lang]
        lines.append(f"| {lang} | {v['abusive']} | {v['not_abusive']} | {v['precision']:.3f} | {v['recall']:.3f} | "
                     f"{v['f1']:.3f} | {v['false_alarm_hard_negatives']:.2%} (n={v['hard_negatives']}) | "
                     f"{v['false_alarm_all_negatives']:.2%} |")
    lines += ["", "Per category (the category's own flag):", "",
              "| language | category | positives | precision | recall | F1 | AUC |", "|---|---|---|---|---|---|---|"]
    for lang in ("en", "ja"):
        for c in CATEGORIES:
            m = test["by_language"][lang][c]
            auc = f"{m['auc']:.3f}" if m["auc"] is not None else "–"
            lines.append(f"| {lang} | {c} | {m['positives']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {auc} |")
    lines += ["", ("Operating points: the shipped thresholds (first row) against thresholds that also hold "
              "template-validation hard negatives to a false-alarm cap per category:"), "",
              "| val hard-negative cap | EN F1 | EN recall | EN FPR hard | JA F1 | JA recall | JA FPR hard |",
              "|---|---|---|---|---|---|---|"]
    for point in test.get("operating_points", []):
        cap = point["val_hard_negative_false_alarm_max"]
        en, ja = point["test"]["en"], point["test"]["ja"]
        lines.append(f"| {'none (shipped)' if cap is None else f'{cap:.1%}'} | {en['f1']:.3f} | {en['recall']:.3f} | "
                     f"{en['false_alarm_hard_negatives']:.2%} | {ja['f1']:.3f} | {ja['recall']:.3f} | "
                     f"{ja['false_alarm_hard_negatives']:.2%} |")
    lines += ["", "Clean vs ASR-corrupted text (all languages, any category):", ""]
    for variant, group in test["by_variant"].items():
        recalls = ", ".join(f"{c} {m['recall']:.3f}" for c, m in group.items())
        lines.append(f"- `{variant}`: recall {recalls}")
    lines += ["", "False-alarm rate (any category) on held-out negatives, by kind:", ""]
    for kind, v in test["false_alarm_rate_by_negative_kind"].items():
        lines.append(f"- `{kind}`: {v['rate']:.2%} (n={v['n']})")
    lines += [
        "",
        "## 2. Hand-written natural sentences (never trained on)",
        "",
        ("Different wording from every template: a check that the model generalises beyond its "
         "generator. `dev` negatives set the thresholds; the `check` sets were never used for a choice."),
        "",
        "| set | language | n | result |",
        "|---|---|---|---|",
    ]
    for name, rep in natural.items():
        for lang, r in rep.items():
            if "recall_any" in r:
                per = ", ".join(f"{c} {r[f'recall_{c}']:.2f}/{r[f'positives_{c}']}" for c in CATEGORIES
                                if r.get(f"positives_{c}"))
                lines.append(f"| {name} | {lang} | {r['n']} | recall (any) {r['recall_any']:.3f}; per category: {per} |")
            else:
                lines.append(f"| {name} | {lang} | {r['n']} | false alarms (any) {r['false_alarm_any']:.2%} |")
    lines += [
        "",
        "## 3. ASR transcripts of synthesised held-out utterances",
        "",
        ("Held-out test rows spoken by TTS, sent through the telephone channel (8 kHz G.711 μ-law) and "
         "transcribed by the server's ASR engine (faster-whisper base, int8, beam 5). Recall counts an "
         "abusive row as caught when any category fires (what pages a supervisor); the category "
         "columns show whether its own category fired."),
        "",
        "| language | abusive | hard negatives | recall (ASR text) | recall (clean text) | precision | F1 | false alarms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lang in ("en", "ja"):
        a = asr[lang]
        lines.append(f"| {lang} | {a['abusive']} | {a['hard_negatives']} | {a['recall_any_asr']:.3f} | "
                     f"{a['recall_any_clean']:.3f} | {a['precision_any_asr']:.3f} | {a['f1_any_asr']:.3f} | "
                     f"{a['false_alarm_asr']:.2%} |")
    lines += ["", "| language | category | n | own category (ASR) | any category (ASR) | own category (clean) |",
              "|---|---|---|---|---|---|"]
    for lang in ("en", "ja"):
        for c, m in asr[lang]["categories"].items():
            lines.append(f"| {lang} | {c} | {m['n']} | {m['recall_category_asr']:.3f} | {m['recall_any_asr']:.3f} | "
                         f"{m['recall_category_clean']:.3f} |")
    for lang in ("en", "ja"):
        if asr[lang]["misses"]:
            lines += ["", f"Missed ({lang}, first few: written → heard):", ""]
            lines += [f"- {_md_escape(t)} → {_md_escape(h) or '(nothing)'}" for t, h in asr[lang]["misses"]]
        if asr[lang]["false_alarms"]:
            lines += ["", f"False alarms ({lang}: written → heard):", ""]
            lines += [f"- {_md_escape(t)} → {_md_escape(h)}" for t, h in asr[lang]["false_alarms"]]
    lines += ["", "## 4. Voice model (`shouting`)", ""]
    if voice_eval is None:
        lines.append("`models/voice_shouting_eval.json` not found: build the voice model first.")
    else:
        lines += [("Held-out synthetic audio (speakers and sentences training never saw); figures from "
                   "`models/voice_shouting_eval.json`, written by `models/train_voice_shouting.py`. "
                   "Synthetic only: see the model card for what that limits."), ""]
        lines += _voice_lines(voice_eval)
        if voice_meta:
            lines += ["", f"Threshold: {voice_meta.get('threshold')}."]
    lines.append("")
    return "\n".join(lines)


def _voice_lines(data: dict) -> list[str]:
    """Tables from the voice eval JSON (flat '<level>.<slice>.<stat>' keys, see its _schema)."""
    def cell(key: str) -> str:
        value = data.get(key)
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    slices = sorted({k.split(".")[1] for k in data if k.startswith("segment.") and k.endswith(".f1")},
                    key=lambda s: (s != "all", s))
    out = ["| slice | segments: n | precision | recall | F1 | 1.5 s windows: precision | recall | utterance flagged by any window: precision | recall |",
           "|---|---|---|---|---|---|---|---|---|"]
    for sl in slices:
        out.append(f"| {sl} | {cell(f'segment.{sl}.n')} | {cell(f'segment.{sl}.precision')} | "
                   f"{cell(f'segment.{sl}.recall')} | {cell(f'segment.{sl}.f1')} | "
                   f"{cell(f'window.{sl}.precision')} | {cell(f'window.{sl}.recall')} | "
                   f"{cell(f'window_any.{sl}.precision')} | {cell(f'window_any.{sl}.recall')} |")
    kinds = sorted({k.split(".")[2] for k in data if ".false_alarm." in k or ".recall." in k})
    out += ["", "| hard negative (false alarms) or shout kind (recall) | segments | windows | utterances (any window) |",
            "|---|---|---|---|"]
    for kind in kinds:
        stat = "false_alarm" if any(f".false_alarm.{kind}." in k for k in data) else "recall"
        out.append(f"| {stat.replace('_', ' ')}: {kind} | {cell(f'segment.{stat}.{kind}.rate')} | "
                   f"{cell(f'window.{stat}.{kind}.rate')} | {cell(f'window_any.{stat}.{kind}.rate')} |")
    out += ["", (f"Latency on one core: {cell('latency.segment_3s.median_ms')} ms median per 3 s segment "
                f"(p95 {cell('latency.segment_3s.p95_ms')}), {cell('latency.window_1_5s.median_ms')} ms per "
                f"1.5 s window. Pitch tracker vs `librosa.yin`: within one semitone on "
                f"{cell('yin_vs_librosa.within_1_st')} of {cell('yin_vs_librosa.frames')} voiced frames.")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asr", action="store_true", help="re-synthesise and re-transcribe the held-out sample")
    args = parser.parse_args()
    model = default_model_path()
    meta = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    if args.asr or not TRANSCRIPTS.exists():
        rows = held_out_sample()
        print(f"synthesising and transcribing {len(rows)} held-out utterances")
        write_transcripts(transcribe(rows))
    clf = TextAbuseClassifier(model)
    asr = asr_metrics(read_transcripts(), clf)
    voice_eval = json.loads(VOICE_EVAL.read_text(encoding="utf-8")) if VOICE_EVAL.exists() else None
    voice_meta = json.loads(VOICE_META.read_text(encoding="utf-8")) if VOICE_META.exists() else None
    command = ".venv/bin/python models/evaluate.py" + (" --asr" if args.asr else "")
    OUT.write_text(render(meta, asr, voice_eval, voice_meta, command), encoding="utf-8")
    for lang in ("en", "ja"):
        a = asr[lang]
        print(f"{lang}: ASR recall {a['recall_any_asr']:.3f} (clean {a['recall_any_clean']:.3f}), "
              f"false alarms {a['false_alarm_asr']:.2%}")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
