"""Mouth parameters from the speech samples on air during one video frame.

Pure functions plus one small smoother: the same samples that go out drive the lips, so sync
holds by construction. RMS in dBFS -> mouth opening; spectral centroid -> mouth width
(bright 'ee/s' sounds widen, dark 'oo/o' sounds round the lips).
"""
from __future__ import annotations

import math

import numpy as np

RATE = 48_000


def frame_rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    return 20.0 * math.log10(max(rms, 1e-6))


def spectral_centroid_hz(samples: np.ndarray, rate: int = RATE) -> float:
    if samples.size < 32:
        return 0.0
    win = samples.astype(np.float32) * np.hanning(samples.size).astype(np.float32)
    mag = np.abs(np.fft.rfft(win))
    total = float(mag.sum())
    if total < 1e-9:
        return 0.0
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    return float((mag * freqs).sum() / total)


def open_target(dbfs: float, floor_db: float = -42.0, span_db: float = 28.0) -> float:
    """-42 dBFS and below: closed; speech at the -20 dBFS broadcast level: about 0.8 open."""
    return min(1.0, max(0.0, (dbfs - floor_db) / span_db))


def wide_target(centroid_hz: float, openness: float) -> float:
    if openness <= 0.0:
        return 0.0
    return min(1.0, max(-1.0, (centroid_hz - 1600.0) / 1400.0))


class MouthDriver:
    """Attack/release smoothing of the mouth, in time constants so any fps behaves the same."""

    def __init__(self, fps: float, attack_ms: float = 25.0, release_ms: float = 70.0) -> None:
        dt = 1.0 / fps
        self._attack = 1.0 - math.exp(-dt / (attack_ms / 1000.0))
        self._release = 1.0 - math.exp(-dt / (release_ms / 1000.0))
        self._wide_k = 1.0 - math.exp(-dt / 0.06)
        self._talk_k = 1.0 - math.exp(-dt / 0.4)
        self.reset()

    def reset(self) -> None:
        self.mouth_open = 0.0
        self.mouth_wide = 0.0
        self.talking = 0.0  # slow speech envelope, drives head motion

    def update(self, samples: np.ndarray) -> tuple[float, float]:
        target = open_target(frame_rms_dbfs(samples))
        k = self._attack if target > self.mouth_open else self._release
        self.mouth_open += (target - self.mouth_open) * k
        if self.mouth_open < 0.01 and target == 0.0:
            self.mouth_open = 0.0
        wide = wide_target(spectral_centroid_hz(samples), target)
        self.mouth_wide += (wide - self.mouth_wide) * self._wide_k
        if target == 0.0 and self.mouth_open == 0.0:
            self.mouth_wide = 0.0
        self.talking += (min(1.0, target * 1.2) - self.talking) * self._talk_k
        if self.talking < 1e-3:
            self.talking = 0.0
        return self.mouth_open, self.mouth_wide
