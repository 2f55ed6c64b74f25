"""Loading one of models/'s classifiers: the ONNX graph and the JSON sidecar beside it."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort


def load_onnx_model(model_path: Path, threads: int = 1) -> tuple[ort.InferenceSession, dict]:
    """(session, sidecar metadata) for ``model_path`` and ``model_path.with_suffix('.json')``.

    CPU only, ``threads`` intra-op threads and one inter-op thread: a classifier call costs
    milliseconds, and the cores belong to ASR.
    """
    model_path = Path(model_path)
    meta = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return session, meta
