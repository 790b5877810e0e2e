"""Smart Turn v3: a small audio model that hears whether a speaker has finished their turn.

Smart Turn (Daily, BSD-2-Clause) is a Whisper-tiny encoder with a classifier head, trained
on 23 languages (Chinese among them) to tell a finished turn from a pause inside one, from
the sound of the last 8 s: intonation, rhythm and the words together. Its 8.7 MB int8 ONNX
model is shipped inside the `pipecat-ai` wheel; tools/bootstrap.sh installs that wheel
without its dependencies, and only the model file is used (pipecat is never imported).

Input: 16 kHz mono float audio up to the pause. The last 8 s (zero-padded at the start)
become Whisper log-mel features (faster-whisper's extractor, after the zero-mean unit-variance
normalisation the model was trained with); the output is P(the turn is complete).
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 8 * SAMPLE_RATE
PACKAGE = "pipecat-ai"
PACKAGE_VERSION = "1.14.0"       # tools/bootstrap.sh installs this one
MODEL_IN_PACKAGE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} (tools/bootstrap.sh does)"


class SmartTurnError(RuntimeError):
    """The model file is missing or is not a Smart Turn v3 model."""


def packaged_model_path() -> Path | None:
    """The model file inside an installed pipecat-ai wheel, or None when it is not there."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(MODEL_IN_PACKAGE)))
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _feature_extractor():
    from faster_whisper.feature_extractor import FeatureExtractor
    return FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, hop_length=160,
                            chunk_length=8, n_fft=400)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(80, 800) Whisper log-mel features of the last 8 s of 16 kHz audio, as Smart Turn
    expects them (shorter audio is padded with silence in front)."""
    x = np.asarray(audio, np.float32).reshape(-1)[-WINDOW_SAMPLES:]
    if len(x) < WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(WINDOW_SAMPLES - len(x), np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    return _feature_extractor()(x, padding=0)[:, :800]


class SmartTurn:
    """One ONNX session (one thread: the ASR decodes beside it); probability() is safe to
    call from several threads."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:       # onnxruntime raises its own types for a bad file
            raise SmartTurnError(f"{path}: not an ONNX model ({exc})") from None
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["input_features"] or list(inputs[0].shape[1:]) != [80, 800]:
            raise SmartTurnError(f"{path}: not a Smart Turn v3 model (it takes "
                                 f"{[(i.name, i.shape) for i in inputs]}, not input_features [n, 80, 800])")
        self.path = path

    def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for 16 kHz mono audio that ends at the pause."""
        features = log_mel(audio)[None]
        return float(self._session.run(None, {"input_features": features})[0].reshape(-1)[0])


_loaded: dict[Path, SmartTurn] = {}
_lock = threading.Lock()


def load_smart_turn(path: Path) -> SmartTurn:
    """The model at path, loaded once per process (asr-serve makes a gate per client)."""
    path = Path(path).resolve()
    with _lock:
        model = _loaded.get(path)
        if model is None:
            if not path.is_file():
                raise SmartTurnError(f"{path}: no such model file")
            model = _loaded[path] = SmartTurn(path)
        return model
