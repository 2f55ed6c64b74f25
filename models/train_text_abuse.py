#!/usr/bin/env python3
"""Train the text abuse classifier (seven categories, English and Japanese) and export it to ONNX.

Run from the repository root (about 20 s on 2 cores)::

    .venv/bin/python models/train_text_abuse.py                 # regenerate corpus, train, export
    .venv/bin/python models/train_text_abuse.py --no-generate   # reuse models/data/text_abuse_v2/corpus.csv

Needs the ``train`` extra (scikit-learn==1.9.1, skl2onnx 1.20, onnx, pyopenjtalk-plus;
alt-profanity-check only for the optional English baseline) and, to regenerate the corpus,
``../shared/data/japanese-toxic-dataset/subset.csv`` (or ``--jtd``).

Steps: generate the corpus (models/data/text_abuse_v2/generate.py) -> normalise with
stream_server.classifiers.text.normalize_text and score utterances as the runtime does (max over
scoring_units: whole utterance and each sentence) -> load the hand-written natural sets
(natural_*.csv; asserted disjoint from the corpus) -> grid over n-gram range and C (1..32): per
candidate, per-category thresholds = lowest with <= 1% false alarms on the natural DEV negatives
and template-validation precision >= 0.9 (floor 0.5); score = mean validation recall there;
smallest C within one standard error of the best -> metrics on the held-out test split and the
natural CHECK sets (reported only) -> ONNX export (locale fix, sublinear-tf fix, parity check against scikit-learn on
the whole test split) -> models/text_abuse_v2.onnx and .json -> latency of the runtime wrapper.
Output is byte-identical between runs (the script pins PYTHONHASHSEED=0 for itself).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_server.classifiers.text import (
    MODEL_NAME,
    NORMALIZATION,
    TextAbuseClassifier,
    normalize_text,
    scoring_units,
)

VERSION = "2.1.0"  # 2.1: courtesies, Whisper noise lines and sentence openings as negatives
CATEGORIES = ("insult", "threat", "exposure", "coercion", "discrimination", "sexual", "profanity")
DATA_DIR = REPO / "models" / "data" / "text_abuse_v2"
CORPUS = DATA_DIR / "corpus.csv"
FIXTURES = REPO / "tests" / "fixtures" / "calls"
NATURAL_DEV = DATA_DIR / "natural_negatives_dev.csv"
NATURAL_CHECK = DATA_DIR / "natural_negatives_check.csv"
NATURAL_ABUSE = DATA_DIR / "natural_abuse_check.csv"
# v2: natural sentences for the five added categories (hard negatives for selection; abuse and
# negatives for the check).
NATURAL_V2_DEV = DATA_DIR / "natural_v2_dev_negatives.csv"
NATURAL_V2_CHECK = DATA_DIR / "natural_v2_check.csv"
NATURAL_FILES = (NATURAL_DEV, NATURAL_CHECK, NATURAL_ABUSE, NATURAL_V2_DEV, NATURAL_V2_CHECK)
# Negative kinds that imitate abuse (everything but plain call talk and web comments): the
# "hard negatives" of the false-positive target.
HARD_NEGATIVE_KINDS = ("complaint", "escalation", "benign_trigger", "kind_fill", "agent")
# Small C only: with C >= 32 the model memorises the templates (validation mAP keeps rising)
# while natural sentences get confident, wrong scores.
# (1, 3) and C 16/32 were in the grid up to the first v2 build and never chosen (v2: (1, 4), C 2
# every time); dropped to keep `make models` short on 2 cores.
GRID = [{"ngram_range": (1, 4), "C": c} for c in [1.0, 2.0, 4.0, 8.0]]
MIN_DF = 2
# Whisper outputs seen in the live pipeline ("I did." must stay quiet; 殺す庁 / コロス庁 are 殺すぞ
# mis-heard): printed as a check, deliberately kept out of the corpus.
LIVE_ASR = ["I did.", "殺す庁", "コロス庁"]
# Operating point per category: the lowest threshold at which (a) at most DEV_FA_MAX of the
# natural dev negatives raise that category and (b) template-validation precision is at least
# VAL_PRECISION_MIN; never below THRESHOLD_FLOOR. Lowest = the most template recall.
DEV_FA_MAX = 0.01
# Optionally (c): at most this share of the template-validation hard negatives (complaints,
# escalations, benign trigger words, kind fills, look-alikes of each category) raise it. Off for
# the shipped thresholds: at 0.5% the held-out threat recall fell from 0.70 to 0.48 (natural
# threats 0.85 -> 0.60) for 7.3% -> 2.3% false alarms on English template hard negatives; the
# trade-off is reported per operating point (OPERATING_POINTS) in the metrics.
VAL_HARD_FA_MAX: float | None = None
OPERATING_POINTS = (None, 0.02, 0.01, 0.005)
VAL_PRECISION_MIN = 0.90
THRESHOLD_FLOOR = 0.5
ONNX_OUTPUT = "probabilities"
# Opset 17 loads in every onnxruntime the project allows (>=1.18), not only the newest.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 1}


# --- data ------------------------------------------------------------------------------------

def generator():
    """models/data/text_abuse_v2/generate.py as a module (loaded once)."""
    name = "text_abuse_v2_generate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DATA_DIR / "generate.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


def generate_corpus(jtd: Path | None) -> None:
    module = generator()
    path = jtd or module.DEFAULT_JTD
    if not path.exists():
        sys.exit(f"japanese-toxic-dataset not found at {path}: pass --jtd or --no-generate")
    rows, dropped = module.generate(path)
    module.write_corpus(rows, CORPUS)
    print(f"generated {len(rows)} rows -> {CORPUS.relative_to(REPO)} (dropped {dropped})")


def load_corpus() -> tuple[dict[str, dict], str]:
    raw = CORPUS.read_bytes()
    with CORPUS.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    header = reader.fieldnames
    assert tuple(header[header.index("lang") + 1 : header.index("kind")]) == CATEGORIES, header
    splits: dict[str, dict] = {}
    for name in ("train", "val", "test", "sanity"):
        part = [r for r in rows if r["split"] == name]
        splits[name] = {
            "rows": part,
            "x": [normalize_text(r["text"]) for r in part],
            "units": [scoring_units(r["text"]) for r in part],
            "y": np.array([[int(r[c]) for c in CATEGORIES] for r in part], dtype=int).reshape(-1, len(CATEGORIES)),
            "hard": np.array([is_hard_negative(r) for r in part], dtype=bool),
        }
    return splits, hashlib.sha256(raw).hexdigest()


def is_hard_negative(row: dict) -> bool:
    """A negative built to look like abuse (the false-positive target's population)."""
    if any(row[c] == "1" for c in CATEGORIES):
        return False
    return row["kind"] in HARD_NEGATIVE_KINDS or row["kind"].endswith("_negative")


def read_natural(path: Path) -> list[dict]:
    """A hand-written natural set: CSV after '#' comment lines (provenance header)."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def fixture_texts() -> set[str]:
    return {normalize_text(u["text"]) for path in sorted(FIXTURES.glob("*.json"))
            for u in json.loads(path.read_text(encoding="utf-8"))["utterances"]}


def natural_labels(row: dict) -> list[int]:
    """A natural row's labels; files written before a category existed lack its column: 0, except
    profanity, which follows the corpus's lexical rule (generate.is_profane)."""
    labels = []
    for c in CATEGORIES:
        if c in row:
            labels.append(int(row[c]))
        elif c == "profanity" and "insult" in row:
            labels.append(int(generator().is_profane(row["text"], row["lang"])))
        else:
            labels.append(0)
    return labels


def load_natural(corpus: dict[str, dict]) -> dict[str, dict]:
    """The natural sets, asserted disjoint from every corpus row, the fixtures and each other.

    dev: negatives for selection (v1 + v2 files); check: negatives, reported only; abuse:
    abusive rows, reported only (the v2 check file holds both kinds)."""
    v2_check = read_natural(NATURAL_V2_CHECK)
    v2_abusive = [r for r in v2_check if any(natural_labels(r))]
    sets = {"dev": read_natural(NATURAL_DEV) + read_natural(NATURAL_V2_DEV),
            "check": read_natural(NATURAL_CHECK) + [r for r in v2_check if r not in v2_abusive],
            "abuse": read_natural(NATURAL_ABUSE) + v2_abusive}
    corpus_texts = {x for split in corpus.values() for x in split["x"]}
    fixtures = fixture_texts()
    seen: dict[str, str] = {}
    for name, rows in sets.items():
        for r in rows:
            norm = normalize_text(r["text"])
            assert norm, (name, r)
            assert norm not in corpus_texts, f"natural {name} row is in corpus.csv: {r['text']!r}"
            assert norm not in fixtures, f"natural {name} row is a fixture utterance: {r['text']!r}"
            assert norm not in seen, f"natural {name} row repeats natural {seen[norm]}: {r['text']!r}"
            seen[norm] = name
    out = {}
    for name, rows in sets.items():
        y = np.array([natural_labels(r) for r in rows], dtype=int).reshape(-1, len(CATEGORIES))
        out[name] = {"rows": rows, "lang": np.array([r["lang"] for r in rows]), "y": y,
                     "units": [scoring_units(r["text"]) for r in rows]}
    assert not out["dev"]["y"].any() and not out["check"]["y"].any()
    assert out["abuse"]["y"].any(axis=1).all()
    return out


# --- model -----------------------------------------------------------------------------------

def make_vectorizer(ngram_range: tuple[int, int]) -> TfidfVectorizer:
    # lowercase=False: normalize_text already lowercased, and a StringNormalizer in the graph
    # would bring back the locale trap for nothing.
    return TfidfVectorizer(analyzer="char", ngram_range=ngram_range, sublinear_tf=True,
                           min_df=MIN_DF, lowercase=False, dtype=np.float32)


# Positives weigh 8x. "balanced" weighs a category by its rarity (x20 for coercion, ~1% of rows),
# and the model then learnt generic call talk as coercion ("I want a refund." 0.78): at 8x the
# held-out F1 is the same (en 0.826 vs 0.828) with fewer false alarms on hard negatives (5.4% vs
# 7.5%); at 4x recall drops (natural abuse 0.61 vs 0.68).
POSITIVE_WEIGHT = 8.0


def make_classifier(C: float) -> OneVsRestClassifier:
    return OneVsRestClassifier(
        LogisticRegression(C=C, class_weight={0: 1.0, 1: POSITIVE_WEIGHT}, solver="liblinear",
                           max_iter=5000, random_state=0))


def pick_threshold(y_val: np.ndarray, p_val: np.ndarray, p_dev: np.ndarray,
                   hard_val: np.ndarray | None = None, hard_max: float | None = VAL_HARD_FA_MAX) -> float:
    """Lowest threshold (most template recall) with natural-dev false-alarm rate <= DEV_FA_MAX
    and template-validation precision >= VAL_PRECISION_MIN, at least THRESHOLD_FLOOR.

    The dev constraint is what keeps "What time do you close today?" quiet: template negatives
    share the generator's vocabulary, so a threshold tuned on them alone is too low for the
    sentences callers actually say. Candidates are midpoints between adjacent observed scores,
    so the threshold never sits exactly on a row."""
    allowed = int(np.floor(DEV_FA_MAX * len(p_dev)))
    candidates = np.unique(np.concatenate([p_val, p_dev, [THRESHOLD_FLOOR, 1.0]]))
    candidates = candidates[candidates >= THRESHOLD_FLOOR]
    mids = np.concatenate([[THRESHOLD_FLOOR], (candidates[:-1] + candidates[1:]) / 2])
    dev_sorted = np.sort(p_dev)
    for t in np.unique(mids):
        if len(p_dev) - np.searchsorted(dev_sorted, t, side="left") > allowed:
            continue
        if hard_val is not None and hard_max is not None and np.mean(p_val[hard_val] >= t) > hard_max:
            continue
        pred = p_val >= t
        if pred.sum() and (pred & (y_val == 1)).sum() / pred.sum() >= VAL_PRECISION_MIN:
            return float(t)
    return 0.99


def dev_false_alarm(p_dev: np.ndarray, t: float) -> float:
    return float(np.mean(p_dev >= t))


def category_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    pred = (p >= threshold).astype(int)
    prec, rec, f1, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    both = len(set(y.tolist())) == 2
    return {
        "precision": round(float(prec), 4), "recall": round(float(rec), 4), "f1": round(float(f1), 4),
        "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "ap": round(float(average_precision_score(y, p)), 4) if both else None,
        "positives": int(y.sum()), "n": len(y),
    }


def evaluate(split: dict, probs: np.ndarray, thresholds: dict[str, float]) -> dict:
    rows = split["rows"]
    y = split["y"]
    out: dict = {"overall": {}, "by_language": {}, "by_variant": {}}
    langs = np.array([r["lang"] for r in rows])
    variants = np.array([r["variant"] for r in rows])
    for j, cat in enumerate(CATEGORIES):
        t = thresholds[cat]
        out["overall"][cat] = category_metrics(y[:, j], probs[:, j], t)
        for lang in ("en", "ja"):
            m = langs == lang
            out["by_language"].setdefault(lang, {})[cat] = category_metrics(y[m, j], probs[m, j], t)
        for var in ("clean", "asr"):
            m = variants == var
            out["by_variant"].setdefault(var, {})[cat] = category_metrics(y[m, j], probs[m, j], t)
    flagged = any_flag(probs, thresholds)
    abusive = y.any(axis=1)

    def rate(mask: np.ndarray, name: str) -> dict:
        return {name: round(float(flagged[mask].mean()), 4), "n": int(mask.sum())}

    kinds = np.array([r["kind"] for r in rows])
    out["false_alarm_rate_by_negative_kind"] = {
        k: rate((kinds == k) & ~abusive, "rate") for k in sorted(set(kinds[~abusive]))}
    holdouts = np.array([r["holdout"] for r in rows])
    out["abuse_recall_by_holdout"] = {
        h: rate((holdouts == h) & abusive, "recall") for h in sorted(set(holdouts[abusive]))}
    hard = np.array([is_hard_negative(r) for r in rows])
    out["abusive_vs_not"] = {}
    for lang in ("en", "ja", "all"):
        m = np.ones(len(rows), bool) if lang == "all" else langs == lang
        prec, rec, f1, _ = precision_recall_fscore_support(abusive[m], flagged[m], average="binary",
                                                           zero_division=0)
        out["abusive_vs_not"][lang] = {
            "precision": round(float(prec), 4), "recall": round(float(rec), 4), "f1": round(float(f1), 4),
            "abusive": int(abusive[m].sum()), "not_abusive": int((~abusive[m]).sum()),
            "false_alarm_all_negatives": round(float(flagged[m & ~abusive].mean()), 4),
            "false_alarm_hard_negatives": round(float(flagged[m & hard].mean()), 4),
            "hard_negatives": int((m & hard).sum()),
        }
    return out


def any_flag(probs: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    return np.column_stack([probs[:, j] >= thresholds[c] for j, c in enumerate(CATEGORIES)]).any(axis=1)


def as_matrix(scores: list[dict[str, float]]) -> np.ndarray:
    return np.array([[s[c] for c in CATEGORIES] for s in scores]).reshape(-1, len(CATEGORIES))


# --- ONNX ------------------------------------------------------------------------------------

def fix_sublinear_tf(model: onnx.ModelProto) -> int:
    """skl2onnx 1.20 writes sublinear tf as log(1 + tf); scikit-learn computes 1 + log(tf) on the
    non-zero counts. Rewrite Add(tf, ones) -> Log into Where(tf > 0, 1 + Log(tf), 0)."""
    graph = model.graph
    init = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    fixed, nodes = 0, list(graph.node)
    for log in [n for n in nodes if n.op_type == "Log"]:
        add = producer.get(log.input[0])
        if add is None or add.op_type != "Add" or add.input[1] not in init:
            continue
        if not np.all(onnx.numpy_helper.to_array(init[add.input[1]]) == 1):
            continue
        tf, ones, out = add.input[0], add.input[1], log.output[0]
        zero = f"{out}_zero"
        graph.initializer.append(onnx.numpy_helper.from_array(np.zeros((), dtype=np.float32), zero))
        helper = onnx.helper
        replacement = [
            helper.make_node("Log", [tf], [f"{out}_logtf"], name=f"{out}_Log"),
            helper.make_node("Add", [f"{out}_logtf", ones], [f"{out}_1plus"], name=f"{out}_Add"),
            helper.make_node("Greater", [tf, zero], [f"{out}_nonzero"], name=f"{out}_Greater"),
            helper.make_node("Where", [f"{out}_nonzero", f"{out}_1plus", zero], [out], name=f"{out}_Where"),
        ]
        at = nodes.index(add)
        nodes = nodes[:at] + replacement + [n for n in nodes[at:] if n is not add and n is not log]
        fixed += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return fixed


def export_onnx(pipe: Pipeline) -> onnx.ModelProto:
    with warnings.catch_warnings():
        # "only tokenizer='word' is fully supported": char n-grams convert fine here, and the
        # parity check in main() proves it on every build.
        warnings.filterwarnings("ignore", message="The conversion of CountVectorizer")
        model = convert_sklearn(
            pipe, MODEL_NAME, initial_types=[("text", StringTensorType([None, 1]))],
            options={id(pipe.named_steps["clf"]): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
    for node in model.graph.node:  # en_US.UTF-8 is missing on many hosts; C.UTF-8 is not.
        if node.op_type == "StringNormalizer":
            for attr in node.attribute:
                if attr.name == "locale":
                    attr.s = b"C.UTF-8"
            if not any(a.name == "locale" for a in node.attribute):
                node.attribute.append(onnx.helper.make_attribute("locale", "C.UTF-8"))
    if pipe.named_steps["tfidf"].sublinear_tf and fix_sublinear_tf(model) != 1:
        raise RuntimeError("sublinear tf block not found in the converted graph")
    names = [o.name for o in model.graph.output]
    if ONNX_OUTPUT not in names:
        raise RuntimeError(f"expected an output named {ONNX_OUTPUT!r}, got {names}")
    model.doc_string = f"{MODEL_NAME} {VERSION}: char n-gram TF-IDF + logistic regression per category {CATEGORIES}"
    return model


def utterance_probs(predict, units: list[list[str]]) -> np.ndarray:
    """Score each utterance as the runtime does: max over its scoring units (0 if none)."""
    flat = [u for unit in units for u in unit]
    p = np.asarray(predict(flat)) if flat else np.zeros((0, len(CATEGORIES)))
    out = np.zeros((len(units), len(CATEGORIES)))
    start = 0
    for i, unit in enumerate(units):
        if unit:
            out[i] = p[start : start + len(unit)].max(axis=0)
            start += len(unit)
    return out


def onnx_probs(session: ort.InferenceSession, texts: list[str], chunk: int = 256) -> np.ndarray:
    """The ONNX TF-IDF is dense (rows x n-grams): run in chunks, or memory runs to gigabytes."""
    name = session.get_inputs()[0].name
    parts = [session.run([ONNX_OUTPUT], {name: np.array(texts[i : i + chunk], dtype=object).reshape(-1, 1)})[0]
             for i in range(0, len(texts), chunk)]
    return np.concatenate(parts)


# --- extra checks ----------------------------------------------------------------------------

def profanity_check_baseline(split: dict) -> dict | None:
    """alt-profanity-check (generic English offensive language) on the English test rows."""
    try:
        from profanity_check import predict_prob
    except Exception:  # noqa: BLE001  (optional dependency)
        return None
    idx = [i for i, r in enumerate(split["rows"]) if r["lang"] == "en"]
    p = predict_prob([split["rows"][i]["text"] for i in idx])
    y = split["y"][idx]
    return {c: round(float(roc_auc_score(y[:, j], p)), 4) for j, c in enumerate(CATEGORIES)
            if len(set(y[:, j].tolist())) == 2} | {
        "any": round(float(roc_auc_score(y.any(axis=1), p)), 4)}


def fixture_report(clf: TextAbuseClassifier) -> list[str]:
    lines = []
    for path in sorted(FIXTURES.glob("*.json")):
        for utt in json.loads(path.read_text(encoding="utf-8"))["utterances"]:
            scores = clf.score(utt["text"])
            got = {c for c, p in scores.items() if p >= clf.thresholds[c]}
            want = {c for c in utt.get("categories", []) if c in CATEGORIES}
            mark = "ok  " if got == want else "MISS" if want - got else "FA  "
            detail = " ".join(f"{c}={scores[c]:.2f}" for c in CATEGORIES)
            lines.append(f"  {mark} {path.stem:14s} {detail}  {utt['text']}  (labels: {sorted(utt.get('categories', []))})")
    return lines


def latency(clf: TextAbuseClassifier, texts: list[str]) -> dict:
    for t in texts[:50]:
        clf.score(t)
    single = []
    for t in texts:
        start = time.perf_counter()
        clf.score(t)
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(texts), 32):
        clf.score_batch(texts[i : i + 32])
    batched = (time.perf_counter() - start) / len(texts)
    return {"single_median_ms": 1000 * float(np.median(single)),
            "single_p95_ms": 1000 * float(np.percentile(single, 95)),
            "batch32_per_sentence_ms": 1000 * batched}


def natural_report(part: dict, probs: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Per language: false-alarm rate (negatives) or recall (abuse), any category and per category."""
    out = {}
    abusive = part["y"].any(axis=1)
    for lang in ("en", "ja", "all"):
        m = np.ones(len(probs), bool) if lang == "all" else part["lang"] == lang
        flags = np.column_stack([probs[m, j] >= thresholds[c] for j, c in enumerate(CATEGORIES)])
        if not abusive.any():
            out[lang] = {"n": int(m.sum()), "false_alarm_any": round(float(flags.any(axis=1).mean()), 4)} | {
                f"false_alarm_{c}": round(float(flags[:, j].mean()), 4) for j, c in enumerate(CATEGORIES)}
        else:
            y = part["y"][m]
            out[lang] = {"n": int(m.sum()), "recall_any": round(float(flags.any(axis=1).mean()), 4)} | {
                f"recall_{c}": (round(float(flags[y[:, j] == 1, j].mean()), 4) if y[:, j].any() else None)
                for j, c in enumerate(CATEGORIES)} | {
                f"positives_{c}": int(y[:, j].sum()) for j, c in enumerate(CATEGORIES)}
    return out


def print_natural(metrics: dict) -> None:
    titles = {"dev_negatives": "natural dev negatives (used for selection: constrained)",
              "check_negatives": "natural CHECK negatives (never used for a choice)",
              "abuse_check": "natural CHECK abuse (never used for a choice)"}
    for name, rep in metrics.items():
        print(f"\n== {titles[name]} ==")
        for lang, r in rep.items():
            if "recall_any" in r:
                per = "  ".join(f"{c} {r[f'recall_{c}']:.3f} (of {r[f'positives_{c}']})"
                                for c in CATEGORIES if r[f"positives_{c}"])
                print(f"  {lang:3s} n={r['n']:4d}  recall any {r['recall_any']:.3f}  {per}")
            else:
                print(f"  {lang:3s} n={r['n']:4d}  false alarms any {r['false_alarm_any']:.4f}  "
                      + "  ".join(f"{c} {r[f'false_alarm_{c}']:.4f}" for c in CATEGORIES if r[f"false_alarm_{c}"]))


def print_metrics(title: str, metrics: dict) -> None:
    print(f"\n== {title} ==")
    header = f"{'':14s}{'cat':8s}{'prec':>7s}{'rec':>7s}{'f1':>7s}{'auc':>8s}{'ap':>8s}{'pos':>6s}{'n':>7s}"
    print(header.replace("cat     ", "cat           "))
    groups = [("all", metrics["overall"])] + list(metrics["by_language"].items()) + [
        (f"variant={k}", v) for k, v in metrics["by_variant"].items()]
    for name, group in groups:
        for cat, m in group.items():
            auc = f"{m['auc']:.4f}" if m["auc"] is not None else "-"
            ap = f"{m['ap']:.4f}" if m["ap"] is not None else "-"
            print(f"{name:14s}{cat:14s}{m['precision']:7.3f}{m['recall']:7.3f}{m['f1']:7.3f}"
                  f"{auc:>8s}{ap:>8s}{m['positives']:6d}{m['n']:7d}")
    print("false-alarm rate (any category) on negatives, by kind:")
    for k, v in metrics["false_alarm_rate_by_negative_kind"].items():
        print(f"  {k:16s} {v['rate']:.4f}  (n={v['n']})")
    print("abuse recall (any category) by what was held out:")
    for k, v in metrics["abuse_recall_by_holdout"].items():
        print(f"  {k:16s} {v['recall']:.4f}  (n={v['n']})")
    print("abusive vs not (any category flagged):")
    for lang, v in metrics["abusive_vs_not"].items():
        print(f"  {lang:4s} P {v['precision']:.3f} R {v['recall']:.3f} F1 {v['f1']:.3f}  false alarms: "
              f"hard negatives {v['false_alarm_hard_negatives']:.4f} (n={v['hard_negatives']}), "
              f"all negatives {v['false_alarm_all_negatives']:.4f} (n={v['not_abusive']})")


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # skl2onnx walks sets and dicts of strings: a fixed hash seed makes the .onnx
        # byte-identical between runs (the model's numbers are identical either way).
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-generate", action="store_true", help="train on the existing corpus.csv")
    parser.add_argument("--jtd", type=Path, default=None, help="japanese-toxic-dataset subset.csv")
    parser.add_argument("--out", type=Path, default=REPO / "models", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="C 2 and 4 only: for trying data changes (the release uses the full grid)")
    args = parser.parse_args()
    t0 = time.time()

    if not args.no_generate:
        generate_corpus(args.jtd)
    data, corpus_sha = load_corpus()
    for name in ("train", "val", "test", "sanity"):
        print(f"{name:6s} {len(data[name]['rows']):6d} rows")
    train, val, test = data["train"], data["val"], data["test"]

    natural = load_natural(data)
    dev = natural["dev"]
    print(f"natural sets (hand-written, disjoint from the corpus): dev {len(dev['rows'])} negatives, "
          f"check {len(natural['check']['rows'])} negatives, abuse check {len(natural['abuse']['rows'])}")

    print("\ngrid: thresholds by the natural-dev constraint (false alarms <= "
          f"{DEV_FA_MAX:.0%} per category, val precision >= {VAL_PRECISION_MIN}), "
          "score = mean template-val recall at those thresholds")
    print(f"  ngrams, C, val mAP, thresholds and val recalls in category order {CATEGORIES}")
    results = []
    grid = [g for g in GRID if g["C"] in (2.0, 4.0)] if args.quick else GRID
    for ngram_range in sorted({g["ngram_range"] for g in grid}):
        vectorizer = make_vectorizer(ngram_range).fit(train["x"])
        x_train = vectorizer.transform(train["x"])
        val_flat = vectorizer.transform([u for unit in val["units"] for u in unit])
        dev_flat = vectorizer.transform([u for unit in dev["units"] for u in unit])
        for params in [g for g in grid if g["ngram_range"] == ngram_range]:
            clf = make_classifier(params["C"]).fit(x_train, train["y"])
            # Features of the flattened scoring units were computed once per vectoriser.
            p_val = utterance_probs(lambda _, m=val_flat, c=clf: c.predict_proba(m), val["units"])
            p_dev = utterance_probs(lambda _, m=dev_flat, c=clf: c.predict_proba(m), dev["units"])
            cats = range(len(CATEGORIES))
            m_ap = float(np.mean([average_precision_score(val["y"][:, j], p_val[:, j]) for j in cats]))
            ts = [pick_threshold(val["y"][:, j], p_val[:, j], p_dev[:, j], val["hard"]) for j in cats]
            recs = [float(np.mean(p_val[val["y"][:, j] == 1, j] >= ts[j])) for j in cats]
            score = float(np.mean(recs))
            # Standard error of the mean of the two recalls (binomial, independent categories).
            se = math.sqrt(sum(r * (1 - r) / int(val["y"][:, j].sum()) for j, r in enumerate(recs))) / len(recs)
            print(f"  {ngram_range!s:8s}{params['C']:5g}{m_ap:9.4f}  thresholds "
                  + " ".join(f"{t:.2f}" for t in ts) + "  recalls " + " ".join(f"{r:.3f}" for r in recs)
                  + f"  score {score:.4f}")
            results.append((score, se, params, vectorizer, clf, p_val, p_dev))
    # One-standard-error rule: the smallest C (then the shorter n-gram range) whose score is within
    # one standard error of the best. Larger C keeps buying template recall that is within noise
    # and comes from memorising the templates.
    top = max(results, key=lambda r: r[0])
    eligible = [r for r in results if r[0] >= top[0] - top[1]]
    best = min(eligible, key=lambda r: (r[2]["C"], r[2]["ngram_range"]))
    print(f"best score {top[0]:.4f} (se {top[1]:.4f}); smallest C within one se of it:")
    _, _, params, vectorizer, classifier, val_probs, dev_probs = best
    pipe = Pipeline([("tfidf", vectorizer), ("clf", classifier)])
    print(f"chosen: {params}")

    # Rounded up to 4 decimals, so rounding never lets one more dev row through.
    thresholds = {c: math.ceil(pick_threshold(val["y"][:, j], val_probs[:, j], dev_probs[:, j], val["hard"]) * 1e4) / 1e4
                  for j, c in enumerate(CATEGORIES)}
    print(f"thresholds (lowest with natural-dev false alarms <= {DEV_FA_MAX:.0%} and val precision "
          f">= {VAL_PRECISION_MIN}, floor {THRESHOLD_FLOOR}):", thresholds)
    val_metrics = evaluate(val, val_probs, thresholds)
    test_probs = utterance_probs(pipe.predict_proba, test["units"])
    test_metrics = evaluate(test, test_probs, thresholds)
    print_metrics("validation", val_metrics)
    print_metrics("held-out test", test_metrics)
    operating_points = []
    for hard_max in OPERATING_POINTS:
        ts = {c: pick_threshold(val["y"][:, j], val_probs[:, j], dev_probs[:, j], val["hard"], hard_max)
              for j, c in enumerate(CATEGORIES)}
        point = evaluate(test, test_probs, ts)["abusive_vs_not"]
        operating_points.append({"val_hard_negative_false_alarm_max": hard_max,
                                 "thresholds": {c: round(t, 4) for c, t in ts.items()}, "test": point})
        print(f"operating point: val hard-negative false alarms <= {hard_max}: " + "; ".join(
            f"{lang} F1 {v['f1']:.3f} R {v['recall']:.3f} FPR hard {v['false_alarm_hard_negatives']:.3f}"
            for lang, v in point.items()))
    test_metrics["operating_points"] = operating_points
    natural_metrics = {
        "dev_negatives": natural_report(dev, utterance_probs(pipe.predict_proba, dev["units"]), thresholds),
        "check_negatives": natural_report(natural["check"], utterance_probs(pipe.predict_proba, natural["check"]["units"]), thresholds),
        "abuse_check": natural_report(natural["abuse"], utterance_probs(pipe.predict_proba, natural["abuse"]["units"]), thresholds),
    }
    print_natural(natural_metrics)

    model = export_onnx(pipe)
    onnx.checker.check_model(model)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{MODEL_NAME}.onnx"
    onnx_bytes = model.SerializeToString()
    onnx_path.write_bytes(onnx_bytes)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    test_units = [u for unit in test["units"] for u in unit]
    diff = float(np.max(np.abs(onnx_probs(session, test_units) - pipe.predict_proba(test_units))))
    print(f"\nONNX {onnx_path.relative_to(REPO) if onnx_path.is_relative_to(REPO) else onnx_path}: "
          f"{len(onnx_bytes) / 1e6:.2f} MB, {len(pipe.named_steps['tfidf'].vocabulary_)} n-grams; "
          f"max |onnx - sklearn| on {len(test_units)} test strings = {diff:.2e}")
    if diff > 1e-4:
        sys.exit("ONNX output does not match scikit-learn")

    vocab = len(pipe.named_steps["tfidf"].vocabulary_)
    meta = {
        "model": MODEL_NAME,
        "version": VERSION,
        "task": "utterance-level abuse aimed at a contact-centre agent (MHLW customer-harassment categories), English and Japanese",
        "categories": list(CATEGORIES),
        "thresholds": thresholds,
        "threshold_selection": f"per category, the lowest threshold >= {THRESHOLD_FLOOR} at which at "
                               f"most {DEV_FA_MAX:.0%} of the hand-written natural dev negatives "
                               "(natural_negatives_dev.csv) raise the category and template-validation "
                               f"precision is >= {VAL_PRECISION_MIN}; rounded up to 4 decimals",
        "input": {
            "name": "text", "type": "string tensor [N, 1]",
            "normalization": NORMALIZATION,
            "normalizer": "stream_server.classifiers.text.normalize_text (apply before the model)",
        },
        "output": {"name": ONNX_OUTPUT, "type": f"float tensor [N, {len(CATEGORIES)}]", "order": list(CATEGORIES),
                   "meaning": "independent probability per category (multi-label)"},
        "scoring": "utterance score = max over stream_server.classifiers.text.scoring_units "
                   "(the whole utterance and each of its sentences); thresholds and metrics "
                   "use the same rule",
        "architecture": {
            "features": f"TfidfVectorizer(analyzer='char', ngram_range={tuple(params['ngram_range'])}, "
                        f"sublinear_tf=True, min_df={MIN_DF}, lowercase=False); {vocab} n-grams",
            "classifier": f"OneVsRestClassifier(LogisticRegression(C={params['C']}, "
                          f"class_weight={{0: 1, 1: {POSITIVE_WEIGHT:g}}}, solver='liblinear'))",
            "selection": "grid over C 1, 2, 4, 8 with ngram_range (1,4); per candidate, thresholds by "
                         "the natural-dev constraint above; score = mean template-validation "
                         "recall at those thresholds; chosen: smallest C within one standard error "
                         "of the best score",
        },
        "training_data": {
            "corpus": "models/data/text_abuse_v2/corpus.csv",
            "sha256": corpus_sha,
            "rows": {name: len(data[name]["rows"]) for name in ("train", "val", "test", "sanity")},
            "natural_sets": {"dev_negatives": ["models/data/text_abuse_v2/natural_negatives_dev.csv",
                                               "models/data/text_abuse_v2/natural_v2_dev_negatives.csv"],
                             "check_negatives": ["models/data/text_abuse_v2/natural_negatives_check.csv",
                                                 "models/data/text_abuse_v2/natural_v2_check.csv (all-zero rows)"],
                             "abuse_check": ["models/data/text_abuse_v2/natural_abuse_check.csv",
                                             "models/data/text_abuse_v2/natural_v2_check.csv (abusive rows)"],
                             "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                        for p in NATURAL_FILES}},
            "sources": ["template-generated call-centre utterances (this repository)",
                        "japanese-toxic-dataset, LINE / inspection-ai, Apache-2.0 "
                        "(Not Toxic rows as negatives)"],
        },
        "metrics": {"test": test_metrics, "validation": val_metrics, "natural": natural_metrics,
                    "onnx_max_abs_diff_test": diff},
        "onnx": {"bytes": len(onnx_bytes), "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
                 "opset": dict(sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import))},
        "built_with": {"python": sys.version.split()[0], "scikit-learn": sklearn.__version__,
                       "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__,
                       "onnxruntime": ort.__version__},
        "rebuild": ".venv/bin/python models/train_text_abuse.py",
    }
    meta_text = json.dumps(meta, ensure_ascii=False, indent=2) + "\n"
    onnx_path.with_suffix(".json").write_text(meta_text, encoding="utf-8")

    clf = TextAbuseClassifier(onnx_path)
    sanity = data["sanity"]
    if sanity["rows"]:
        toxic = any_flag(as_matrix(clf.score_batch([r["text"] for r in sanity["rows"]])), thresholds)
        calm = [r["text"] for r in test["rows"] if r["kind"] == "jtd_not_toxic"]
        calm_flag = any_flag(as_matrix(clf.score_batch(calm)), thresholds)
        print(f"\njapanese-toxic-dataset sanity: flagged {toxic.mean():.1%} of {len(toxic)} "
              "majority-toxic web comments (general web toxicity, not labelled) vs "
              f"{calm_flag.mean():.1%} of {len(calm_flag)} Not Toxic test rows")
    baseline = profanity_check_baseline(test)
    if baseline:
        ours = {c: test_metrics["by_language"]["en"][c]["auc"] for c in CATEGORIES}
        print(f"English test AUC, alt-profanity-check baseline: {baseline}; this model: {ours}")
    print("\nend-to-end fixture utterances (tests/fixtures/calls, never trained on):")
    print("\n".join(fixture_report(clf)))
    print("live-pipeline ASR outputs (report only, never trained on; want: -, threat, threat):")
    for text in LIVE_ASR:
        scores = clf.score(text)
        got = sorted(c for c in CATEGORIES if scores[c] >= thresholds[c]) or ["-"]
        print(f"  {text:8s} insult={scores['insult']:.2f} threat={scores['threat']:.2f} -> {','.join(got)}")
    lat = latency(clf, [r["text"] for r in test["rows"][:1000]])
    print(f"\nruntime wrapper latency (1 thread): median {lat['single_median_ms']:.3f} ms/sentence, "
          f"p95 {lat['single_p95_ms']:.3f} ms; "
          f"batch of 32: {lat['batch32_per_sentence_ms']:.3f} ms/sentence")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
