"""The on-air audio: the anchor's speech over the scene's bed, pulled one frame slot at a time.

The media loop pulls exactly the samples of each video frame slot; the same speech samples
drive the avatar's mouth and go to the encoder, so lips are in sync by construction. Speech is
pushed from other threads (TTS) and can be cut at any moment with a short fade (no click).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class MixChunk:
    stereo: np.ndarray         # (n, 2) float32, what goes on air
    speech: np.ndarray         # (n,) float32 mono, the anchor's voice in this slot
    caption: str | None        # text of the line being spoken
    line_id: int | None
    started: tuple = ()        # lines whose first samples are in this chunk


@dataclass
class _Segment:
    pcm: np.ndarray
    caption: str | None
    line_id: int
    pos: int = 0


class AudioMixer:
    """Thread-safe speech queue + looped bed with ducking; never blocks, never runs dry."""

    def __init__(self, sample_rate: int = 48000, bed: np.ndarray | None = None,
                 bed_volume: float = 0.2, duck: float = 0.4, max_queued_s: float = 120.0):
        self.sample_rate = sample_rate
        self._bed = bed if bed is not None and len(bed) else None
        self._bed_pos = 0
        self.bed_volume = bed_volume
        self.duck = duck
        self._bed_gain = bed_volume
        self._segments: deque[_Segment] = deque()
        self._queued = 0
        self._max_queued = int(max_queued_s * sample_rate)
        self._fade: np.ndarray | None = None
        self._lock = threading.Lock()
        self._last_caption: str | None = None
        self._last_line: int | None = None
        self.on_line_start: Callable[[int], None] | None = None
        self.on_line_end: Callable[[int], None] | None = None

    # -- producers (any thread) --------------------------------------------------------
    def push(self, pcm: np.ndarray, caption: str | None, line_id: int) -> bool:
        """Queue mono float32 speech at the broadcast rate; False (not queued) when full."""
        pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        with self._lock:
            if self._queued + len(pcm) > self._max_queued:
                return False
            self._segments.append(_Segment(pcm, caption, line_id))
            self._queued += len(pcm)
        return True

    def cut(self, fade_ms: float = 5.0) -> None:
        """Stop speaking now: the current segment fades out over fade_ms, the queue is dropped."""
        with self._lock:
            if self._segments:
                seg = self._segments[0]
                n = min(int(self.sample_rate * fade_ms / 1000), len(seg.pcm) - seg.pos)
                if n > 0:
                    ramp = np.linspace(1.0, 0.0, n, endpoint=False, dtype=np.float32)
                    self._fade = seg.pcm[seg.pos:seg.pos + n] * ramp
            self._segments.clear()
            self._queued = 0

    def set_bed(self, bed: np.ndarray | None, volume: float, duck: float) -> None:
        """Swap the audio bed live (scene reload); the gain ramps from the current level."""
        with self._lock:
            self._bed = bed if bed is not None and len(bed) else None
            self._bed_pos = 0
            self.bed_volume, self.duck = volume, duck

    def idle(self) -> bool:
        with self._lock:
            return not self._segments and self._fade is None

    def queued_seconds(self) -> float:
        with self._lock:
            return self._queued / self.sample_rate

    # -- the media loop ----------------------------------------------------------------
    def pull(self, n: int) -> MixChunk:
        speech = np.zeros(n, np.float32)
        started: list[int] = []
        ended: list[int] = []
        with self._lock:
            filled = 0
            if self._fade is not None:
                k = min(n, len(self._fade))
                speech[:k] = self._fade[:k]
                self._fade = self._fade[k:] if k < len(self._fade) else None
                filled = k
            while filled < n and self._segments:
                seg = self._segments[0]
                if seg.pos == 0:
                    started.append(seg.line_id)
                k = min(n - filled, len(seg.pcm) - seg.pos)
                speech[filled:filled + k] = seg.pcm[seg.pos:seg.pos + k]
                seg.pos += k
                filled += k
                self._queued -= k
                self._last_caption, self._last_line = seg.caption, seg.line_id
                if seg.pos >= len(seg.pcm):
                    self._segments.popleft()
                    if not self._segments or self._segments[0].line_id != seg.line_id:
                        ended.append(seg.line_id)
            speaking = filled > 0
            caption, line = (self._last_caption, self._last_line) if speaking else (None, None)
        stereo = self._bed_slot(n, speaking)
        stereo += speech[:, None]
        np.clip(stereo, -1.0, 1.0, out=stereo)
        for line_id in started:
            if self.on_line_start:
                self.on_line_start(line_id)
        for line_id in ended:
            if self.on_line_end:
                self.on_line_end(line_id)
        return MixChunk(stereo, speech, caption, line, tuple(started))

    def _bed_slot(self, n: int, speaking: bool) -> np.ndarray:
        with self._lock:
            bed, pos = self._bed, self._bed_pos
            if bed is not None:
                self._bed_pos = (pos + n) % len(bed)
        if bed is None:
            return np.zeros((n, 2), np.float32)
        idx = (np.arange(n) + pos) % len(bed)
        target = self.bed_volume * (self.duck if speaking else 1.0)
        gain = np.linspace(self._bed_gain, target, n, dtype=np.float32)[:, None]   # no zipper noise
        self._bed_gain = target
        return bed[idx] * gain


def load_bed(path: Path, sample_rate: int) -> np.ndarray:
    """Decode an audio file (any format FFmpeg reads) to (n, 2) float32 at sample_rate."""
    import av

    from .errors import ConfigError
    chunks = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ConfigError(str(path), "audio.bed", "file has no audio stream")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise ConfigError(str(path), "audio.bed", f"cannot decode audio: {exc}") from None
    if not chunks:
        raise ConfigError(str(path), "audio.bed", "file holds no audio samples")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1).T, dtype=np.float32)
