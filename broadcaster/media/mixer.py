"""The on-air audio: the anchor's speech over the scene's bed, pulled one frame slot at a time.

The media loop pulls exactly the samples of each video frame slot; the same speech samples
drive the avatar's mouth and go to the encoder, so lips are in sync by construction. Speech is
pushed from other threads (TTS) and can be cut at any moment with a short fade (no click).
While the output is off air the speech is held (hold_speech): nobody would hear it, so it
stays queued, and the line that was playing starts again from its beginning once on air.
A line that starts after silence may be held back a little (set_start_gate): an anchor that
renders its mouth ahead of the air says when the first mouth is ready, so the line does not
begin with the clip's own mouth; the hold is capped, then the line starts regardless.
The host's microphone can be mixed in too (push_host): a small bounded buffer the media loop
drains, so a slow or bursty mic never delays the broadcast, it only loses its oldest audio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
HOST_PRIME_STEP_S = 0.04   # the host's jitter buffer grows by this at each underrun
MAX_START_HOLD_S = 0.3     # the longest a start gate holds a line back (see set_start_gate)
MAX_BED_S = 300.0   # a bed loops: five minutes are plenty, and ~115 MB at 48 kHz stereo float32


@dataclass
class MixChunk:
    stereo: np.ndarray         # (n, 2) float32, what goes on air
    speech: np.ndarray         # (n,) float32 mono, the anchor's voice in this slot
    caption: str | None        # text of the line being spoken
    line_id: int | None
    started: tuple = ()        # lines whose first samples are in this chunk
    ended: tuple = ()          # lines whose last samples are in this chunk
    speech_pos: int | None = None   # speech-stream position of the chunk's first sample


@dataclass
class _Segment:
    pcm: np.ndarray
    caption: str | None
    line_id: int
    stream_pos: int = 0        # where its first sample lies in the speech stream
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
        self._held = False
        self._line_played: list[_Segment] = []    # finished segments of the line playing
        self._lock = threading.Lock()
        self._last_caption: str | None = None
        self._last_line: int | None = None
        # the host's voice (off until enable_host): stereo chunks at the broadcast rate
        self._host: deque[np.ndarray] = deque()
        self._host_queued = 0
        self._host_max = 0
        self._host_prime = 0
        self._host_max_prime = 0
        self._host_started = False
        self._host_playing = False
        self.host_gain = 1.0
        self.host_duck = 1.0
        self.host_dropped = 0          # samples dropped: the buffer was full, or queued before air
        self.host_underruns = 0        # times the host's voice ran dry while playing
        self.last_speech_at: float | None = None   # monotonic time of the last slot with speech
        # the speech stream: every sample ever queued has a place in it (MixChunk.speech_pos)
        self._stream_end = 0
        self._speech_listeners: tuple = ()
        self.slots_pulled = 0          # pull() calls so far: the index of the next slot
        self.cut_slot: int | None = None   # the slot in which the last cut() was heard
        self._start_gate = None
        self._max_start_hold = 0
        self._start_held = 0           # samples of silence played while a line waited to start
        self._flowing = False          # the last pull ended in speech and more is queued: no gap
        self.start_holds: list[int] = []   # samples each gated line start waited (for benchmarks)

    def set_start_gate(self, gate, max_hold_s: float = MAX_START_HOLD_S) -> None:
        """gate(stream_pos) -> bool: whether speech starting at speech-stream position
        `stream_pos` after silence may go on air now; asked at each slot (under the mixer's
        lock, so it must not block) until it says yes or the line has waited `max_hold_s`.
        Speech that continues what is on air is never held. None: no gate."""
        with self._lock:
            self._start_gate = gate
            self._max_start_hold = int(max_hold_s * self.sample_rate)

    def _may_start(self, seg: _Segment, silence: int) -> bool:
        """Whether `seg` may start now, or waits another `silence` samples (lock held)."""
        if self._start_gate is None:
            return True
        if self._start_held < self._max_start_hold and not self._start_gate(seg.stream_pos):
            self._start_held += silence
            return False
        self.start_holds = [*self.start_holds[-99:], self._start_held]
        self._start_held = 0
        return True

    def add_speech_listener(self, listener) -> None:
        """listener(pcm, stream_pos, plays_in) hears of every speech piece queued, on the
        pushing thread (`plays_in`: samples of speech queued ahead of it); it must not block."""
        self._speech_listeners = (*self._speech_listeners, listener)

    # -- the host's voice (the mic thread) ---------------------------------------------
    def enable_host(self, gain: float = 1.0, duck: float = 0.4, max_s: float = 0.6,
                    prime_s: float = 0.08, max_prime_s: float = 0.3) -> None:
        """Accept the host's voice: at most max_s buffered (oldest dropped beyond it). Playback
        starts (and, after running dry, resumes) once the prime is buffered, which absorbs
        mic/frame jitter; each time it runs dry while playing, the prime grows by
        HOST_PRIME_STEP_S up to max_prime_s, so a machine that keeps stalling the mic or the
        loop stops cutting holes in the host's words after a few. At the broadcast's first
        slot anything queued beyond the prime is dropped: a mic that opened before the
        broadcast started would otherwise be heard that much late for the rest of the show."""
        with self._lock:
            self.host_gain, self.host_duck = gain, duck
            self._host_max = int(max_s * self.sample_rate)
            self._host_prime = int(prime_s * self.sample_rate)
            self._host_max_prime = max(self._host_prime, min(int(max_prime_s * self.sample_rate),
                                                             self._host_max // 2))

    @property
    def host_prime_s(self) -> float:
        """The host's jitter buffer now: how much is gathered before the voice (re)starts."""
        return self._host_prime / self.sample_rate

    def push_host(self, stereo: np.ndarray) -> None:
        """Queue (n, 2) float32 of the host's voice at the broadcast rate (any thread)."""
        stereo = np.ascontiguousarray(stereo, dtype=np.float32).reshape(-1, 2)
        with self._lock:
            if not self._host_max or not len(stereo):
                return
            self._host.append(stereo)
            self._host_queued += len(stereo)
            if self._host_queued > self._host_max:
                self._drop_oldest_host(self._host_queued - self._host_max)

    def _drop_oldest_host(self, n: int) -> None:
        """Forget the oldest n samples of the host's voice (call with the lock held)."""
        self._host_queued -= n
        self.host_dropped += n
        while n:
            head = self._host[0]
            if len(head) <= n:
                self._host.popleft()
                n -= len(head)
            else:
                self._host[0] = head[n:]
                n = 0

    def _take_host(self, n: int) -> np.ndarray | None:
        """Up to n samples of host voice, zero-padded (call with the lock held)."""
        if not self._host_started:              # the broadcast's first slot: a backlog is stale
            self._host_started = True
            self._drop_oldest_host(max(0, self._host_queued - self._host_prime))
        if not self._host_playing:
            if not self._host_queued or self._host_queued < self._host_prime:
                return None
            self._host_playing = True
        out = np.zeros((n, 2), np.float32)
        filled = 0
        while filled < n and self._host:
            head = self._host[0]
            k = min(n - filled, len(head))
            out[filled:filled + k] = head[:k]
            filled += k
            if k == len(head):
                self._host.popleft()
            else:
                self._host[0] = head[k:]
        self._host_queued -= filled
        if filled < n:
            self._host_playing = False      # ran dry: gather a larger prime before playing
            self.host_underruns += 1
            self._host_prime = min(self._host_prime + int(HOST_PRIME_STEP_S * self.sample_rate),
                                   self._host_max_prime)
        return out * self.host_gain

    # -- producers (any thread) --------------------------------------------------------
    def push(self, pcm: np.ndarray, caption: str | None, line_id: int) -> bool:
        """Queue mono float32 speech at the broadcast rate; False (not queued) when full."""
        pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        with self._lock:
            if self._queued + len(pcm) > self._max_queued:
                return False
            stream_pos, plays_in = self._stream_end, self._queued
            self._segments.append(_Segment(pcm, caption, line_id, stream_pos))
            self._queued += len(pcm)
            self._stream_end += len(pcm)
        for listener in self._speech_listeners:
            listener(pcm, stream_pos, plays_in)
        return True

    def cut(self, fade_ms: float = 5.0) -> None:
        """Stop speaking now: the current segment fades out over fade_ms, the queue is dropped.
        The fade plays in the next slot pulled, whose index cut_slot then holds."""
        with self._lock:
            self.cut_slot = self.slots_pulled
            if self._segments:
                seg = self._segments[0]
                n = min(int(self.sample_rate * fade_ms / 1000), len(seg.pcm) - seg.pos)
                if n > 0:
                    ramp = np.linspace(1.0, 0.0, n, endpoint=False, dtype=np.float32)
                    self._fade = seg.pcm[seg.pos:seg.pos + n] * ramp
            self._segments.clear()
            self._queued = 0
            self._line_played = []
            self._start_held = 0
            self._flowing = False

    def hold_speech(self, held: bool) -> None:
        """Off air (held): no speech is played (the bed goes on, the anchor's mouth rests) and
        the line that was playing is put back to its beginning; on air again it plays from
        there. A line counts as playing while segments of it are queued."""
        with self._lock:
            if held == self._held:
                return
            self._held = held
            self._start_held = 0           # a line waiting to start waits afresh on air
            if not held or not self._segments:
                return
            head = self._segments[0]
            replay = [seg for seg in self._line_played if seg.line_id == head.line_id]
            if head.pos == 0 and not replay:
                return                               # between lines: nothing to repeat
            self._segments.popleft()
            for seg in (*replay, head):
                self._queued += seg.pos
                seg.pos = 0
            self._segments.extendleft(reversed([*replay, head]))
            self._line_played = []

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
        speech_pos = None
        with self._lock:
            self.slots_pulled += 1
            filled = 0
            if self._fade is not None:
                k = min(n, len(self._fade))
                speech[:k] = self._fade[:k]
                self._fade = self._fade[k:] if k < len(self._fade) else None
                filled = k
            from_segments = False
            while filled < n and self._segments and not self._held:
                seg = self._segments[0]
                if seg.pos == 0 and not self._flowing and not from_segments and \
                        not self._may_start(seg, n - filled):
                    break
                from_segments = True
                if seg.pos == 0:
                    started.append(seg.line_id)
                k = min(n - filled, len(seg.pcm) - seg.pos)
                if speech_pos is None:
                    speech_pos = seg.stream_pos + seg.pos - filled
                speech[filled:filled + k] = seg.pcm[seg.pos:seg.pos + k]
                seg.pos += k
                filled += k
                self._queued -= k
                self._last_caption, self._last_line = seg.caption, seg.line_id
                if seg.pos >= len(seg.pcm):
                    self._segments.popleft()
                    if self._line_played and self._line_played[-1].line_id != seg.line_id:
                        self._line_played = []
                    self._line_played.append(seg)
                    if not self._segments or self._segments[0].line_id != seg.line_id:
                        ended.append(seg.line_id)
            self._flowing = from_segments and filled == n and bool(self._segments)
            speaking = filled > 0
            caption, line = (self._last_caption, self._last_line) if speaking else (None, None)
            host = self._take_host(n) if self._host_max else None
            if speaking:
                self.last_speech_at = time.monotonic()
        duck = min(self.duck if speaking else 1.0, self.host_duck if host is not None else 1.0)
        stereo = self._bed_slot(n, duck)
        stereo += speech[:, None]
        if host is not None:
            stereo += host
        np.clip(stereo, -1.0, 1.0, out=stereo)
        return MixChunk(stereo, speech, caption, line, tuple(started), tuple(ended), speech_pos)

    def _bed_slot(self, n: int, duck: float) -> np.ndarray:
        with self._lock:
            bed, pos = self._bed, self._bed_pos
            if bed is not None:
                self._bed_pos = (pos + n) % len(bed)
        if bed is None:
            return np.zeros((n, 2), np.float32)
        idx = (np.arange(n) + pos) % len(bed)
        target = self.bed_volume * duck
        gain = np.linspace(self._bed_gain, target, n, dtype=np.float32)[:, None]   # no zipper noise
        self._bed_gain = target
        return bed[idx] * gain


def load_bed(path: Path, sample_rate: int, max_s: float = MAX_BED_S) -> np.ndarray:
    """Decode an audio file (any format FFmpeg reads) to (n, 2) float32 at sample_rate.

    At most max_s seconds are decoded (a bed loops; an hour of float32 stereo would take
    gigabytes and many seconds before the broadcast starts), and a longer file is cut there.
    """
    import av

    from broadcaster.errors import ConfigError
    chunks = []
    wanted = int(max_s * sample_rate)
    have = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ConfigError(str(path), "audio.bed", "file has no audio stream")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    have += out.samples
                if have >= wanted:
                    log.info("audio bed %s: using its first %.0f s", path.name, max_s)
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise ConfigError(str(path), "audio.bed", f"cannot decode audio: {exc}") from None
    if not chunks:
        raise ConfigError(str(path), "audio.bed", "file holds no audio samples")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1).T[:wanted], dtype=np.float32)


def probe_bed(path: Path) -> str | None:
    """Why this file cannot be a bed (no audio stream, not decodable), or None: decodes only
    the first audio frame, so `check` can open every scene's bed cheaply."""
    import av
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return "file has no audio stream"
            for _frame in container.decode(audio=0):
                return None
    except av.error.FFmpegError as exc:
        return f"cannot decode audio: {exc}"
    return "file holds no audio samples"
