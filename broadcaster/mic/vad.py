"""Voice activity detection with Silero VAD (ONNX, onnxruntime) and an utterance segmenter.

The model is the one faster-whisper ships (faster_whisper/assets/silero_vad_v6.onnx), so
nothing is downloaded and torch is not needed. Its signature:
  input [N, 576] float32 = 64 samples of context (tail of the previous window) + 512 new
  samples at 16 kHz; h, c [1, 1, 128] LSTM state -> speech_probs [N], hn, cn.
We run it one 512-sample window (32 ms) at a time, carrying context and state.

The segmenter turns probabilities into events; audio outside utterances (silence) is never
emitted, so the ASR never sees it:
  SpeechOnset   first window above threshold (or onset_min_ms of them): as early as
                possible, for barge-in; the on_onset callback runs synchronously inside
                process() before it returns.
  SpeechAudio   audio of the running utterance (pre-roll padding first), for partials.
  SpeechPause   the first silent window after speech: the ASR transcribes the audio so far,
                so a turn-end gate (asr.turn_end) can decide from the words, not silence alone.
  UtteranceEnd  silence lasted min_silence_ms (with a turn-end gate: until the gate says the
                turn is over, at most its hold): the whole utterance audio (with padding).
  UtteranceDropped  it ended shorter than min_speech_ms (a click, a cough): ignore it.
Times are stream seconds (samples fed / 16000), `wall` is time.monotonic() at emission.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64


def silero_model_path() -> str:
    """The Silero VAD ONNX file bundled with faster-whisper."""
    import faster_whisper.utils
    path = os.path.join(faster_whisper.utils.get_assets_path(), "silero_vad_v6.onnx")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Silero VAD model not found at {path} (faster-whisper install?)")
    return path


@functools.lru_cache(maxsize=4)
def _session(path: str):
    """One cached ONNX session per model file, on 1 intra-op thread (it scores one
    512-sample window at a time)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVad:
    """Streaming Silero VAD: prob(window of 512 float32 samples) with carried state."""

    def __init__(self, model_path: str | None = None) -> None:
        self._sess = _session(model_path or silero_model_path())
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def prob(self, window: np.ndarray) -> float:
        if window.shape != (WINDOW,):
            raise ValueError(f"Silero VAD needs {WINDOW} samples per window, got {window.shape}")
        x = np.concatenate([self._context, window.astype(np.float32, copy=False)])[None, :]
        out, self._h, self._c = self._sess.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = window[-CONTEXT:].astype(np.float32, copy=True)
        return float(out.reshape(-1)[0])


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5          # speech starts when prob >= threshold
    neg_threshold: float | None = None  # speech pauses when prob < this (default threshold-0.15)
    min_speech_ms: float = 250.0    # shorter utterances are dropped
    min_silence_ms: float = 500.0   # hangover: silence needed to close an utterance
    speech_pad_ms: float = 200.0    # audio kept before onset and after the last speech
    max_utterance_s: float = 28.0   # force an end (Whisper's window is 30 s)
    onset_min_ms: float = 0.0       # speech needed before the onset fires (0: first window);
                                    # e.g. 96 ignores clicks at the cost of 64 ms more delay

    def validate(self) -> "VadConfig":
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"vad.threshold must be in (0, 1), got {self.threshold}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms", "onset_min_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"vad.{name} must be >= 0, got {getattr(self, name)}")
        if not 1.0 <= self.max_utterance_s <= 29.0:
            raise ValueError(f"vad.max_utterance_s must be in [1, 29], got {self.max_utterance_s}")
        return self


@dataclass
class SpeechOnset:
    utt_id: int
    t: float            # stream seconds where the first speech window starts
    wall: float         # time.monotonic() when detected
    prob: float
    audio_start: float = 0.0  # stream seconds where the utterance audio (pre-roll) starts


@dataclass
class SpeechAudio:
    utt_id: int
    audio: np.ndarray   # float32 16 kHz mono, continues the utterance


@dataclass
class SpeechPause:
    utt_id: int
    speech_end: float   # stream seconds of the last speech window (the audio sent so far)
    wall: float         # time.monotonic() when the pause was seen


@dataclass
class UtteranceEnd:
    utt_id: int
    start: float        # stream seconds, including pre-roll padding
    end: float          # stream seconds, including trailing padding
    audio: np.ndarray = field(repr=False)
    wall: float = 0.0   # time.monotonic() when the end was decided
    speech_end: float = 0.0  # stream seconds of the last speech window (before hangover)
    forced: bool = False


@dataclass
class UtteranceDropped:
    utt_id: int
    start: float
    end: float
    reason: str


VadEvent = Union[SpeechOnset, SpeechAudio, SpeechPause, UtteranceEnd, UtteranceDropped]


class VadSegmenter:
    """Feed any-length float32 16 kHz chunks (e.g. 20 ms frames) to process(); get events.

    Not thread-safe: call from one thread (the capture thread). on_onset(SpeechOnset) is
    called synchronously as soon as the onset window is scored: keep it cheap (set a flag,
    call mixer.cut()).

    turn_end (an asr.turn_end.TurnEndGate, or None for min_silence_ms alone) is asked on each
    silent window whether the turn is over; the hangover then lasts up to its max_wait_s.
    """

    def __init__(self, config: VadConfig = VadConfig(), vad: SileroVad | None = None,
                 on_onset: Callable[[SpeechOnset], None] | None = None, turn_end=None) -> None:
        self.cfg = config.validate()
        self.vad = vad or SileroVad()
        self.on_onset = on_onset
        self.turn_end = turn_end
        self._neg = self.cfg.neg_threshold if self.cfg.neg_threshold is not None else max(0.01, self.cfg.threshold - 0.15)
        ms = lambda v: int(round(v * SAMPLE_RATE / 1000.0 / WINDOW))  # noqa: E731 - ms -> windows
        self._pad_windows = ms(self.cfg.speech_pad_ms)
        hangover_ms = self.cfg.min_silence_ms if turn_end is None else turn_end.max_wait_s * 1000.0
        self._silence_windows = max(1, ms(hangover_ms))
        self._min_speech_samples = int(self.cfg.min_speech_ms * SAMPLE_RATE / 1000)
        self._max_samples = int(self.cfg.max_utterance_s * SAMPLE_RATE)
        self._pending = np.zeros(0, np.float32)
        self._samples = 0             # samples scored so far (stream clock)
        self._preroll: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, self._pad_windows))
        self._utt_id = 0
        self._in_speech = False
        self._utt: list[np.ndarray] = []
        self._utt_start = 0
        self._speech_start = 0
        self._last_speech_end = 0
        self._tail: list[np.ndarray] = []   # windows after the last speech, not yet sent
        self._onset_windows = max(1, int(np.ceil(self.cfg.onset_min_ms * SAMPLE_RATE / 1000.0 / WINDOW)))
        self._candidate: list[np.ndarray] = []  # speech windows not yet confirmed as an onset
        self.last_prob = 0.0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def process(self, audio: np.ndarray) -> list[VadEvent]:
        self._pending = np.concatenate([self._pending, np.asarray(audio, np.float32).reshape(-1)])
        events: list[VadEvent] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            self._step(window, events)
        return events

    def flush(self) -> list[VadEvent]:
        """End of input: close an open utterance now."""
        events: list[VadEvent] = []
        if self._in_speech:
            self._close(events, forced=True)
        return events

    def _step(self, window: np.ndarray, events: list[VadEvent]) -> None:
        p = self.vad.prob(window)
        self.last_prob = p
        start = self._samples
        self._samples += WINDOW
        if not self._in_speech:
            if p >= self.cfg.threshold:
                self._candidate.append(window)
                if len(self._candidate) >= self._onset_windows:
                    first = start - WINDOW * (len(self._candidate) - 1)
                    self._begin(self._candidate, first, p, events)
                    self._candidate = []
            else:
                for w in self._candidate + [window]:
                    if self._pad_windows:
                        self._preroll.append(w)
                self._candidate = []
            return
        if p >= self.cfg.threshold or (p >= self._neg and not self._tail):
            # Speech continues (a short pause inside the utterance is sent too).
            chunk = np.concatenate(self._tail + [window]) if self._tail else window
            self._tail = []
            self._utt.append(chunk)
            self._last_speech_end = self._samples
            events.append(SpeechAudio(self._utt_id, chunk))
        else:
            self._tail.append(window)
            speech_end = self._last_speech_end / SAMPLE_RATE
            if len(self._tail) == 1:
                events.append(SpeechPause(self._utt_id, speech_end, time.monotonic()))
            if len(self._tail) >= self._silence_windows or (
                    self.turn_end is not None
                    and self.turn_end.should_end(self._utt_id, speech_end, self._samples / SAMPLE_RATE)):
                self._close(events, forced=False)
                return
        if self._samples - self._utt_start >= self._max_samples:
            self._close(events, forced=True)

    def _begin(self, windows: list[np.ndarray], start: int, p: float, events: list[VadEvent]) -> None:
        self._utt_id += 1
        self._in_speech = True
        pre = list(self._preroll)
        self._preroll.clear()
        self._utt_start = start - WINDOW * len(pre)
        self._speech_start = start
        self._last_speech_end = self._samples
        onset = SpeechOnset(self._utt_id, start / SAMPLE_RATE, time.monotonic(), p, self._utt_start / SAMPLE_RATE)
        if self.on_onset is not None:
            try:
                self.on_onset(onset)
            except Exception:  # a broken callback must not stop the mic
                log.exception("vad on_onset callback failed")
        events.append(onset)
        chunk = np.concatenate(pre + windows)
        self._utt = [chunk]
        self._tail = []
        events.append(SpeechAudio(self._utt_id, chunk))

    def _close(self, events: list[VadEvent], forced: bool) -> None:
        pad = self._tail[: self._pad_windows]
        self._utt.extend(pad)
        end = self._last_speech_end + WINDOW * len(pad)
        speech = self._last_speech_end - self._speech_start
        if speech < self._min_speech_samples:
            events.append(UtteranceDropped(self._utt_id, self._utt_start / SAMPLE_RATE, end / SAMPLE_RATE,
                                           f"speech {speech * 1000 // SAMPLE_RATE} ms < min_speech_ms"))
        else:
            events.append(UtteranceEnd(self._utt_id, self._utt_start / SAMPLE_RATE, end / SAMPLE_RATE,
                                       np.concatenate(self._utt), time.monotonic(),
                                       self._last_speech_end / SAMPLE_RATE, forced))
        # Trailing silence beyond the padding is pre-roll for the next utterance.
        self._preroll.clear()
        for w in self._tail[len(pad):]:
            self._preroll.append(w)
        self._in_speech = False
        self._utt, self._tail = [], []
