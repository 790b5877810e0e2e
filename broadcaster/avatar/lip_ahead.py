"""Lip frames rendered ahead of the air in a worker thread, in batches, so the media loop only
picks up finished pictures.

Speech is known before it is heard: the mixer tells the anchor about every piece it queues,
with the piece's place in the speech stream (a running count of speech samples). Frames are
keyed by that place: key k covers stream samples [k*spf, (k+1)*spf), spf = samples per video
slot. The worker renders the keys just ahead of the one on air, at most `lookahead_s` ahead,
in batches of up to `batch_size` faces per ONNX call (smaller while it has no lead, so the
first frames of a line come quickly). Each key's mel window starts at the key and runs 200 ms
ahead, as Wav2Lip's own inference does.

With `mouth_every` > 1 only every n-th key is rendered and its mouth is held over the next
n - 1 slots, pasted onto each one's own clip frame (a CPU renders the mouth at fps/n). When
one face takes longer than that (a busy machine), n grows, up to one mouth per 200 ms,
before slots go late: a mouth that moves less often beats one that stops.

Which clip frame a key lands on follows from the offset between loop positions and keys,
measured on every slot with speech (and estimated from the mixer's queue when a line starts).

A line that starts after silence would otherwise begin with the clip's own mouth: the mixer
plays it at the next slot, before one face can be rendered. So the mixer asks first
(may_start): the worker renders the line's first keys at once, one face per call, and the
answer is yes once the first mouth (past any silent keys) is ready; the mixer holds the line
meanwhile, for a capped time (media/mixer.py, set_start_gate).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from broadcaster.avatar.mouth_paste import prediction_mouth
from broadcaster.avatar.wav2lip_mel import MEL_FPS, MEL_STEP, SAMPLE_RATE, melspectrogram
from broadcaster.tts.levels import resample_to_broadcast

log = logging.getLogger(__name__)

BROADCAST_RATE = 48_000
CONTEXT_MELS = 4                 # mel frames of audio before a batch, so its first STFT is not padded
MAX_BUFFERED_S = 150.0           # speech held for rendering (the mixer itself holds at most 120 s)
REPLAY_S = 30.0                  # speech kept after it was on air: a line replayed after an outage


@dataclass(frozen=True)
class LipFrame:
    """A rendered key: the clip frame it was made for, the mouth, and that frame with it."""

    clip_index: int
    mouth: np.ndarray | None     # (48, 96, 3) RGB uint8; None: silent, the clip frame as is
    frame: object | None         # what compose() made of them (the anchor's picture)


class LipAhead:
    def __init__(self, infer: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                 face_input: Callable[[int], np.ndarray],
                 compose: Callable[[int, np.ndarray], object],
                 clip_at: Callable[[int], int], fps: float, batch_size: int = 8,
                 mouth_every: int = 1, lookahead_s: float = 1.0, silence: float = 10 ** (-50 / 20)):
        """infer(mels (B, 80, 16), faces (B, 6, 96, 96)) -> (B, 3, 96, 96); face_input(clip
        index) -> the model's face input; compose(clip index, mouth) -> the picture;
        clip_at(loop position) -> clip index."""
        self._infer, self._face_input, self._compose, self._clip_at = infer, face_input, compose, clip_at
        self.spf = BROADCAST_RATE / fps
        self.fps = fps
        self.batch_size = max(1, int(batch_size))
        self.every = max(1, int(mouth_every))
        self.max_every = max(self.every, int(fps // 5))
        self.lookahead = max(self.every, int(round(lookahead_s * fps)))
        self.silence = silence
        self._window = int(round(MEL_STEP / MEL_FPS * BROADCAST_RATE))      # 200 ms at 48 kHz
        self._cond = threading.Condition()
        self._speech: deque[tuple[int, np.ndarray]] = deque()
        self._speech_end = 0
        self._offset: int | None = None    # loop position - key
        self._loop_now = 0                 # the loop position last on air
        self._playing: int | None = None   # the key on air, None between lines
        self._on_air: int | None = None    # the last key that was on air
        self._waiting: int | None = None   # the key of a line the mixer holds until its mouth is ready
        self._next = 0                     # the next key to render
        self._items: dict[int, LipFrame] = {}
        self._generation = 0
        self._closed = False
        self.face_s = 0.05                 # wall seconds of work per mouth, measured (a running average)
        self.batches = 0                   # ONNX calls made (for benchmarks)
        self.faces = 0
        self._thread = threading.Thread(target=self._run, name="lip-ahead", daemon=True)
        self._thread.start()

    # -- producers ---------------------------------------------------------------------
    def speech_queued(self, pcm: np.ndarray, stream_pos: int, plays_in: int) -> None:
        """The mixer queued `pcm` at `stream_pos`; `plays_in` samples of speech are ahead of it."""
        with self._cond:
            if self._closed:
                return
            key = int(round(stream_pos / self.spf))
            if self._playing is None and plays_in == 0:
                self._line_starts(key)        # a new line on an idle mixer
            self._speech.append((stream_pos, pcm))
            self._speech_end = stream_pos + len(pcm)
            while self._speech and self._speech_end - self._speech[0][0] > MAX_BUFFERED_S * BROADCAST_RATE:
                self._speech.popleft()
            self._next = max(self._next, key - key % self.every)
            self._cond.notify()

    def on_slot(self, loop_pos: int, speech_pos: int | None) -> None:
        """The media loop shows loop position `loop_pos`; `speech_pos` is the stream position
        of the slot's first sample when speech is on air."""
        with self._cond:
            self._loop_now = loop_pos
            if speech_pos is None:
                self._playing = None
                return
            key = int(round(speech_pos / self.spf))
            self._offset = loop_pos - key
            if self._on_air is not None and key < self._on_air - 1:
                # the mixer plays a line again from its start (back on air after an outage)
                self._restart_at(key)
            self._playing = self._on_air = key
            self._waiting = None
            for old in [k for k in self._items if k < key - 1]:
                del self._items[old]
            keep_from = key * self.spf - REPLAY_S * BROADCAST_RATE
            while self._speech and self._speech[0][0] + len(self._speech[0][1]) < keep_from:
                self._speech.popleft()
            self._cond.notify()

    def may_start(self, stream_pos: int) -> bool:
        """The mixer would start speech at `stream_pos` at the next slot, after silence: True
        when the line's first mouth is ready with a lead the worker keeps (its keys rendered
        from the first one up to past the first audible one and at least one mouth's stride
        on: while the air plays those, the next mouth is rendered); else the worker renders
        them now and the mixer asks again next slot."""
        with self._cond:
            key = int(round(stream_pos / self.spf))
            self._line_starts(key)
            k, mouth, lead = key, False, self.stride()
            while (item := self._items.get(k)) is not None:
                mouth = mouth or item.mouth is not None
                k += 1
                if mouth and k - key >= lead:
                    return True
            return k >= key + self.lookahead or k * self.spf >= self._speech_end

    def _line_starts(self, key: int) -> None:
        """Speech starts at `key` after silence, at the next slot at the earliest. Nothing is
        on air, so what was rendered so far saw none of its audio (or is from before a
        replay): the keys start afresh from the line's first, which the worker renders first."""
        if self._waiting != key:
            self._waiting, self._playing, self._on_air = key, None, None
            self._restart_at(key)
            self._cond.notify()
        self._offset = self._loop_now + 1 - key

    def _restart_at(self, key: int) -> None:
        """The stream goes back to `key` (a replay): what was rendered is for the old place."""
        self._items.clear()
        self._next = key
        self._generation += 1

    def take(self, key: int) -> LipFrame | None:
        """The rendered frame for `key`, or None when the worker has not got there: the slot
        is late."""
        with self._cond:
            return self._items.get(key)

    def reset(self) -> None:
        """The speech was cut: forget it and everything rendered from it."""
        with self._cond:
            self._speech.clear()
            self._items.clear()
            self._playing = self._on_air = self._waiting = None
            self._next = int(np.ceil(self._speech_end / self.spf))    # a key, not a sample
            self._generation += 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    # -- the worker --------------------------------------------------------------------
    def stride(self) -> int:
        """Slots per mouth picture now: `mouth_every`, more while one face takes longer than
        that many slots (a busy CPU), up to one picture per 200 ms; then slots go late."""
        needed = int(np.ceil(self.face_s * self.fps / 0.9))
        return max(self.every, min(self.max_every, needed))

    def _plan(self) -> tuple[list[int], int, int, int] | None:
        """(keys, offset, generation, stride) of the next batch, or None when nothing is due."""
        if self._offset is None or not self._speech:
            return None
        head = self._playing if self._playing is not None else self._loop_now - self._offset
        if self._playing is None and self._waiting is not None:
            start = self._next                  # the mixer holds the line for these keys
        else:
            # a key the air reaches before one face is rendered is late already: start past it
            start = max(self._next, head + int(np.ceil(self.face_s * self.fps)))
        stride = self.stride()
        size = min(self.batch_size, max(1, (start - head) // stride // 2))
        keys = []
        k = start
        while len(keys) < size and k <= head + self.lookahead and k * self.spf < self._speech_end:
            if k not in self._items:
                keys.append(k)
            k += stride
        if not keys:
            return None
        return keys, self._offset, self._generation, stride

    def _audio(self, first: int, last: int) -> np.ndarray:
        """48 kHz speech from stream sample `first` to `last`, zeros where none is queued."""
        out = np.zeros(max(0, last - first), np.float32)
        for pos, pcm in self._speech:
            lo, hi = max(first, pos), min(last, pos + len(pcm))
            if lo < hi:
                out[lo - first:hi - first] = pcm[lo - pos:hi - pos]
        return out

    def _warm_up(self) -> None:
        """One call on silence: a session's first run is several times slower than the next,
        and the first face is what a line that starts after silence waits for."""
        try:
            self._infer(np.full((1, 80, MEL_STEP), -4.0, np.float32), self._face_input(self._clip_at(0))[None])
        except Exception:
            log.exception("warming up the lip model failed")

    def _run(self) -> None:
        self._warm_up()
        while True:
            with self._cond:
                plan = None
                while not self._closed and (plan := self._plan()) is None:
                    self._cond.wait(0.25)
                if self._closed:
                    return
                keys, offset, generation, stride = plan
                context = int(CONTEXT_MELS * BROADCAST_RATE / MEL_FPS)
                first = int(round(keys[0] * self.spf)) - context
                audio = self._audio(first, int(round(keys[-1] * self.spf)) + self._window + 2 * context)
            try:
                items = self._render(keys, offset, audio, first, stride)
            except Exception:   # a failing model must not end the worker: the slots show the clip
                log.exception("rendering lip frames failed; the anchor shows its clip meanwhile")
                items = {}
            with self._cond:
                if generation == self._generation:
                    self._items.update(items)
                    self._next = max(self._next, keys[-1] + stride)

    def _render(self, keys: list[int], offset: int, audio: np.ndarray, first: int,
                stride: int) -> dict[int, LipFrame]:
        started = time.perf_counter()
        items: dict[int, LipFrame] = {}
        speaking = []
        slot_len = int(round(self.spf * stride))
        for k in keys:
            at = int(round(k * self.spf)) - first
            part = audio[at:at + slot_len]
            clip_index = self._clip_at(k + offset)
            if part.size == 0 or float(np.sqrt(np.mean(part ** 2))) <= self.silence:
                for held in range(k, k + stride):
                    items[held] = LipFrame(self._clip_at(held + offset), None, None)
            else:
                speaking.append((k, clip_index, at))
        if not speaking:
            return items
        mel = melspectrogram(resample_to_broadcast(audio, BROADCAST_RATE, SAMPLE_RATE))
        mels, faces = [], []
        for _k, clip_index, at in speaking:
            start = int(at / BROADCAST_RATE * MEL_FPS)
            chunk = mel[:, start:start + MEL_STEP]
            if chunk.shape[1] < MEL_STEP:
                chunk = np.pad(chunk, ((0, 0), (0, MEL_STEP - chunk.shape[1])), constant_values=-4.0)
            mels.append(chunk)
            faces.append(self._face_input(clip_index))
        preds = self._infer(np.stack(mels), np.stack(faces))
        self.batches += 1
        self.faces += len(speaking)
        for (k, _clip_index, _at), pred in zip(speaking, preds):
            mouth = prediction_mouth(pred)
            for held in range(k, k + stride):   # the mouth rests on each slot's own clip frame
                clip_index = self._clip_at(held + offset)
                items[held] = LipFrame(clip_index, mouth, self._compose(clip_index, mouth))
        # the worker's whole cost per mouth (mel, model, pastes), in wall time: what it gets
        # of a shared CPU is what it can keep up with
        per_face = (time.perf_counter() - started) / len(speaking)
        self.face_s += (per_face - self.face_s) * 0.3
        return items
