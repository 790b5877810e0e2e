"""One-shot Whisper decoding of a short utterance, fast enough for live partials.

faster-whisper's transcribe() pads every call to a 30 s window (3000 mel frames), so the
encoder costs as much for a short utterance as for a 30 s one. CTranslate2's Whisper
accepts shorter mel inputs (the positional embedding is sliced), so this computes the log-mel
of the utterance plus a little silence, rounds the frame count up to a bucket (fewer distinct
shapes), and calls generate() directly: greedy (beam 1), temperature 0 (no fallback retries),
no timestamps, no previous-text conditioning (only a fixed context text for languages that
need one, LANGUAGE_PROMPTS). language 'auto' encodes once, detects the language from that
encoding and decodes from it.
Padding: >= 3 s of trailing silence and a 6 s minimum window; on shorter windows tiny.en
tends to loop ("Stop. Stop. Stop.") on short partials, and longer ones only cost encoder time.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from broadcaster.asr.models import MULTILINGUAL_INSTALL, check_language, resolve_model

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP = 160
MAX_FRAMES = 3000


# Whisper writes Chinese in Traditional characters and often without punctuation unless the
# context before the utterance shows Simplified text with punctuation; this is that context.
LANGUAGE_PROMPTS = {
    "zh": "以下是普通话的句子。",
}

def _same_words(text: str, other: str) -> bool:
    """The same text once punctuation and spaces are ignored (a decoder echoing its prompt)."""
    def bare(t: str) -> str:
        return "".join(ch for ch in t if ch.isalnum())
    return bool(bare(text)) and bare(text) == bare(other)


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# one token per CJK character (no spaces between words there), else one per word
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_PUNCT = ".,!?;:'\"-。，！？；：、“”‘’（）《》…—"


def _tokens(text: str) -> list[tuple[str, int]]:
    """(comparison key, end offset) of each word or CJK character; punctuation alone is skipped."""
    out = []
    for m in _TOKEN.finditer(text):
        key = m.group().strip(_PUNCT).lower()
        if key:
            out.append((key, m.end()))
    return out


def _cut_after(text: str, end: int) -> str:
    """text up to offset end plus the punctuation right after it."""
    while end < len(text) and text[end] in _PUNCT:
        end += 1
    return text[:end].strip()


_FULLWIDTH = {",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；"}
_ASCII_AFTER_CJK = re.compile(f"(?<=[{_CJK}])\\s*([,.?!:;])(?![0-9])\\s*")
_SPACE_IN_CJK = re.compile(f"(?<=[{_CJK}，。？！：；、])\\s+(?=[{_CJK}])")


def chinese_punctuation(text: str) -> str:
    """ASCII punctuation right after a Chinese character as its full-width form, and no
    spaces between Chinese characters (Whisper mixes both in): "你好,我 想问?" -> "你好，我想问？"."""
    text = _ASCII_AFTER_CJK.sub(lambda m: _FULLWIDTH[m.group(1)], text)
    return _SPACE_IN_CJK.sub("", text)


def simplified_converter():
    """OpenCC's Traditional -> Simplified converter: Whisper still writes some Chinese
    utterances in Traditional characters, even after a Simplified context text."""
    try:
        import opencc
    except ImportError:
        raise RuntimeError("Chinese transcripts need the 'opencc' package (Traditional -> Simplified): "
                           f"{MULTILINGUAL_INSTALL}") from None
    return opencc.OpenCC("t2s").convert


def collapse_repetition(text: str) -> str:
    """Undo Whisper's loop hallucination: a text that is one phrase said again and again
    (the last copy may be cut) becomes that phrase once, and so does a tail of one short
    unit repeated 4+ times ("...翅翅翅翅"). Words, or characters in CJK text, are the units.
    Legit text is rarely periodic."""
    toks = _tokens(text)
    keys = [k for k, _ in toks]
    n = len(keys)
    for period in range(1, n // 2 + 1):
        if period == 1 and n < 3:
            continue
        if all(keys[i] == keys[i - period] for i in range(period, n)):
            return _cut_after(text, toks[period - 1][1])
    for period in range(1, 9):
        reps = 1
        while n - (reps + 1) * period >= 0 and \
                keys[n - (reps + 1) * period:n - reps * period] == keys[n - period:]:
            reps += 1
        if reps >= 4 and n - reps * period > 0:
            return _cut_after(text, toks[n - (reps - 1) * period - 1][1])
    return text


@dataclass
class Decoded:
    text: str
    decode_s: float
    frames: int
    no_speech_prob: float
    language: str = "en"


class WhisperAsr:
    """Thread-safe (calls are serialised) short-utterance decoder on CTranslate2."""

    def __init__(self, model: str | None = None, *, compute_type: str = "int8", cpu_threads: int = 2,
                 language: str = "en", pad_s: float = 3.0, bucket_s: float = 2.0, min_s: float = 6.0) -> None:
        """model: a packaged name, a folder or None (the language's default); language: a
        Whisper code or 'auto' (detected per utterance). ValueError for an English-only model
        asked for another language."""
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.language = check_language(language)
        self.model_path = resolve_model(model, language)
        self._model = ctranslate2.models.Whisper(self.model_path, device="cpu", compute_type=compute_type,
                                                 intra_threads=cpu_threads, inter_threads=1)
        self.multilingual = self._model.is_multilingual
        if not self.multilingual and language not in ("en", "auto"):
            raise ValueError(f"model {model or self.model_path!r} is English-only and cannot transcribe "
                             f"language {language!r}: use a multilingual model (base)")
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        self._hf = tokenizers.Tokenizer.from_file(os.path.join(self.model_path, "tokenizer.json"))
        self._tokenizer_cls = Tokenizer
        self._prompts: dict[str, list[int]] = {}
        self._simplified = simplified_converter() if self.multilingual and language in ("zh", "auto") \
            else (lambda text: text)
        self.pad_s, self.bucket_s, self.min_s = pad_s, bucket_s, min_s
        self._lock = threading.Lock()
        # decodes text and knows the special tokens (the same for every language)
        self._tok = self._tokenizer("en" if language == "auto" or not self.multilingual else language)

    def _tokenizer(self, language: str):
        return self._tokenizer_cls(self._hf, self.multilingual, task="transcribe", language=language)

    def prompt_for(self, language: str) -> list[int]:
        """The decoder prompt: the language's context text (if any), then the start sequence."""
        if language not in self._prompts:
            tok = self._tokenizer(language) if self.multilingual else self._tok
            prompt = []
            context = LANGUAGE_PROMPTS.get(language) if self.multilingual else None
            if context:
                prompt = [tok.sot_prev] + tok.encode(" " + context)
            self._prompts[language] = prompt + self._start_sequence(language)
        return self._prompts[language]

    def _start_sequence(self, language: str) -> list[int]:
        """The decoder prompt without context: start of transcript, language, no timestamps."""
        tok = self._tokenizer(language) if self.multilingual else self._tok
        return list(tok.sot_sequence) + [tok.no_timestamps]

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
        max_len = 20 + int(12 * len(audio) / SAMPLE_RATE)   # new tokens, after the prompt
        with self._lock:
            language = self.language if self.multilingual else "en"
            if language == "auto":   # encode once, detect, then decode from the same encoding
                sv = self._model.encode(sv)
                language = self._model.detect_language(sv)[0][0][0].strip("<|>")
            prompt = self.prompt_for(language)
            res = self._model.generate(sv, [prompt], beam_size=1, max_length=min(448, len(prompt) + max_len),
                                       suppress_blank=True, return_no_speech_prob=True)[0]
            text = self._text(res, language)
            context = LANGUAGE_PROMPTS.get(language) if self.multilingual else None
            if context and _same_words(text, context):
                # on unclear speech the decoder may repeat its context prompt: that is never
                # what was said, so the utterance is decoded again without the context
                bare = self._start_sequence(language)
                res = self._model.generate(sv, [bare], beam_size=1, max_length=min(448, len(bare) + max_len),
                                           suppress_blank=True, return_no_speech_prob=True)[0]
                text = self._text(res, language)
                if _same_words(text, context):
                    text = ""
        return Decoded(text, time.perf_counter() - t0, frames, float(res.no_speech_prob), language)

    def _text(self, res, language: str) -> str:
        ids = [t for t in res.sequences_ids[0] if t < self._tok.eot]
        # a cut-off multi-byte character decodes as U+FFFD; it is never speech
        text = collapse_repetition(self._tok.decode(ids).replace("\ufffd", "").strip())
        if language == "zh":
            text = chinese_punctuation(self._simplified(text))
        return text
