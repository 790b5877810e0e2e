"""How a stretch of speech ends in pitch: falling to the speaker's low range (a finished
statement) or held level/high (a clause the speaker goes on with).

Whisper writes a period before every pause, so a period alone does not tell a finished
statement from a held clause; the pitch just before the pause does, in English at least:
statements end low in the speaker's range, held clauses end level or rising. Pitch is
measured by autocorrelation on 40 ms frames (10 ms hop) of the 16 kHz audio; the final
pitch (the median of the last five voiced frames within the last tail_s) is compared, in
semitones, with the median pitch of the last reference_s of speech. Pure numpy: a few
milliseconds a pause.

Mandarin is a tone language: the last syllable's tone moves the final pitch too, so there
the contour is weaker evidence; it only ever turns a bare period into the plain silence
wait (asr.turn_end), never shortens a wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

SAMPLE_RATE = 16000
FRAME = 640          # 40 ms: two periods of a 50 Hz voice
HOP = 160            # 10 ms
FFT = 2048           # >= 2 * FRAME: the autocorrelation without wrap-around


class Contour(Enum):
    FALLING = "falling"   # the pitch ends fall_st or more below the speaker's median
    HELD = "held"         # it ends level or high: the speaker holds the clause open
    UNKNOWN = "unknown"   # too few voiced frames to tell (whisper, unvoiced ending, no audio)


@dataclass(frozen=True)
class ProsodyConfig:
    tail_s: float = 0.3           # the stretch before the pause whose pitch is the final pitch
    reference_s: float = 2.0      # the stretch whose median pitch is the speaker's reference
    fall_st: float = 3.0          # semitones below the reference that count as a fall
    fmin_hz: float = 70.0
    fmax_hz: float = 400.0
    voicing: float = 0.45         # normalised autocorrelation peak of a voiced frame
    min_voiced: int = 4           # voiced frames needed in the tail (and twice that overall)


@dataclass(frozen=True)
class TailPitch:
    final_st: float     # final pitch vs the reference, semitones (negative: lower)
    voiced_tail: int    # voiced frames in the tail


def pitch_track(audio: np.ndarray, config: ProsodyConfig = ProsodyConfig()) -> np.ndarray:
    """Pitch in Hz per 10 ms frame (NaN where unvoiced) of float32 16 kHz mono audio."""
    x = np.asarray(audio, np.float64).reshape(-1)
    if len(x) < FRAME:
        return np.zeros(0)
    n = 1 + (len(x) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, FFT, axis=1)) ** 2, FFT, axis=1)[:, :FRAME]
    lo, hi = int(SAMPLE_RATE / config.fmax_hz), int(SAMPLE_RATE / config.fmin_hz)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    energy = ac[:, 0]
    peak = ac[np.arange(n), lag] / np.maximum(energy, 1e-12)
    voiced = (peak >= config.voicing) & (energy > 1e-6 * FRAME)
    return np.where(voiced, SAMPLE_RATE / lag, np.nan)


def tail_pitch(audio: np.ndarray, config: ProsodyConfig = ProsodyConfig()) -> TailPitch | None:
    """The final pitch against the speaker's reference, or None with too little voicing."""
    ref_samples = int(config.reference_s * SAMPLE_RATE)
    f0 = pitch_track(np.asarray(audio).reshape(-1)[-ref_samples:], config)
    tail = f0[-max(1, int(config.tail_s * SAMPLE_RATE / HOP)):]
    tail, ref = tail[~np.isnan(tail)], f0[~np.isnan(f0)]
    if len(tail) < config.min_voiced or len(ref) < 2 * config.min_voiced:
        return None
    return TailPitch(float(12.0 * np.log2(np.median(tail[-5:]) / np.median(ref))), len(tail))


def contour(audio: np.ndarray | None, config: ProsodyConfig = ProsodyConfig()) -> Contour:
    """How the audio (the speech up to a pause) ends in pitch."""
    if audio is None or len(audio) == 0:
        return Contour.UNKNOWN
    tp = tail_pitch(audio, config)
    if tp is None:
        return Contour.UNKNOWN
    return Contour.FALLING if tp.final_st <= -config.fall_st else Contour.HELD
