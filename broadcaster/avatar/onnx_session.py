"""One place that opens ONNX Runtime sessions for the avatar: CUDA when present, else CPU."""
from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)


def open_session(model: str | Path, *, intra_op_threads: int = 1, prefer_gpu: bool = True,
                 purpose: str = "avatar") -> ort.InferenceSession:
    """Open `model`; says in the log which execution provider runs it."""
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"{purpose} model not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if prefer_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RuntimeError(f"{purpose} model {path} could not be loaded: {exc}") from exc
    log.info("%s model %s runs on %s", purpose, path.name, session.get_providers()[0])
    return session
