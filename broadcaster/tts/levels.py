"""Bring any engine's speech to the broadcast format: 48 kHz float32 mono at one loudness.

Loudness is measured as gated RMS in dBFS: the RMS of the 20 ms blocks louder than -50 dBFS
(pauses do not count), not LUFS (no K-weighting). For speech, -20 dBFS gated RMS lands near
-18 to -16 LUFS. A peak ceiling keeps the gain from clipping.
"""
from __future__ import annotations

import av
import numpy as np

BROADCAST_RATE = 48_000
_GATE_DBFS = -50.0
_BLOCK_S = 0.02


def resample_to_broadcast(pcm: np.ndarray, rate: int, out_rate: int = BROADCAST_RATE) -> np.ndarray:
    """Resample mono float32 audio with FFmpeg's swresample (via PyAV)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
    if rate == out_rate or pcm.size == 0:
        return pcm.copy()
    if rate <= 0:
        raise ValueError(f"resample_to_broadcast: bad sample rate {rate}")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def gated_rms_dbfs(pcm: np.ndarray, rate: int) -> float | None:
    """RMS level in dBFS over the blocks above the gate; None when everything is below it."""
    block = max(1, int(rate * _BLOCK_S))
    n = (len(pcm) // block) * block
    if n == 0:
        return None
    blocks = pcm[:n].astype(np.float64).reshape(-1, block)
    power = np.mean(blocks * blocks, axis=1)
    loud = power > 10 ** (_GATE_DBFS / 10)
    if not np.any(loud):
        return None
    return float(10 * np.log10(np.mean(power[loud])))


def normalize_loudness(
    pcm: np.ndarray, rate: int, target_dbfs: float = -20.0, peak_ceiling_dbfs: float = -1.0
) -> np.ndarray:
    """Scale speech to target gated RMS (dBFS); the peak never exceeds the ceiling."""
    level = gated_rms_dbfs(pcm, rate)
    if level is None:
        return pcm.astype(np.float32, copy=True)
    gain = 10 ** ((target_dbfs - level) / 20)
    peak = float(np.max(np.abs(pcm)))
    ceiling = 10 ** (peak_ceiling_dbfs / 20)
    if peak * gain > ceiling:
        gain = ceiling / peak
    return np.clip(pcm * gain, -1.0, 1.0).astype(np.float32)


def prepare_speech(pcm: np.ndarray, rate: int, target_dbfs: float = -20.0) -> np.ndarray:
    """Engine output -> broadcast speech: 48 kHz, float32 mono, normalised."""
    return normalize_loudness(resample_to_broadcast(pcm, rate), BROADCAST_RATE, target_dbfs)
