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
    resampler = StreamResampler(rate, out_rate)
    return np.concatenate([resampler.feed(pcm), resampler.flush()])


def decode_mono(source, format: str | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a file path or file object to float32 mono at its
    own rate. ValueError when it holds no decodable audio."""
    try:
        with av.open(source, mode="r", format=format) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            rate = container.streams.audio[0].codec_context.sample_rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = []
            for frame in container.decode(audio=0):
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise ValueError(str(exc)) from None
    if not parts or not rate:
        raise ValueError("no audio samples")
    return np.concatenate(parts).astype(np.float32), int(rate)


def gated_rms_dbfs(pcm: np.ndarray, rate: int) -> float | None:
    """RMS level in dBFS over the blocks above the gate; None when everything is below it."""
    total, count = loud_block_power(pcm, max(1, int(rate * _BLOCK_S)))
    if count == 0:
        return None
    return float(10 * np.log10(total / count))


def loud_block_power(pcm: np.ndarray, block: int) -> tuple[float, int]:
    """Sum of the mean power of the whole blocks above the gate, and how many there are."""
    n = (len(pcm) // block) * block
    if n == 0:
        return 0.0, 0
    blocks = pcm[:n].astype(np.float64).reshape(-1, block)
    power = np.mean(blocks * blocks, axis=1)
    loud = power > 10 ** (_GATE_DBFS / 10)
    return float(power[loud].sum()), int(loud.sum())


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


class StreamResampler:
    """Resample a stream of mono float32 chunks to the broadcast rate with one swresample
    context, so chunk edges leave no clicks; flush() returns the resampler's tail."""

    def __init__(self, rate: int, out_rate: int = BROADCAST_RATE) -> None:
        if rate <= 0:
            raise ValueError(f"StreamResampler: bad sample rate {rate}")
        self.rate, self.out_rate = rate, out_rate
        self._resampler = (av.AudioResampler(format="flt", layout="mono", rate=out_rate)
                           if rate != out_rate else None)

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        if self._resampler is None or pcm.size == 0:
            return pcm.copy()
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate
        return _joined(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return _joined(self._resampler.resample(None))


def _joined(frames) -> np.ndarray:
    parts = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def stream_gain(loud_power_sum: float, loud_blocks: int, target_dbfs: float,
                fallback_gain: float) -> float:
    """The gain that brings the loud blocks seen so far to target_dbfs (gated RMS);
    fallback_gain while no block has been loud yet."""
    if loud_blocks == 0:
        return fallback_gain
    level = 10 * np.log10(loud_power_sum / loud_blocks)
    return float(10 ** ((target_dbfs - level) / 20))


class StreamLeveler:
    """Streamed speech -> broadcast speech chunk by chunk: resampled to 48 kHz and scaled to
    target_dbfs by the gated RMS of what has arrived so far (the whole-sentence measure
    normalize_loudness uses cannot wait for the end of a streamed sentence). Peaks above the
    ceiling are clipped; start_gain is used until the first loud block arrives."""

    def __init__(self, rate: int, target_dbfs: float = -20.0, start_gain: float = 1.0,
                 peak_ceiling_dbfs: float = -1.0) -> None:
        self._resampler = StreamResampler(rate)
        self.target_dbfs = target_dbfs
        self.gain = start_gain
        self._ceiling = 10 ** (peak_ceiling_dbfs / 20)
        self._block = int(BROADCAST_RATE * _BLOCK_S)
        self._pending = np.zeros(0, np.float32)
        self._loud_sum = 0.0
        self._loud_blocks = 0

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        return self._level(self._resampler.feed(pcm))

    def flush(self) -> np.ndarray:
        return self._level(self._resampler.flush())

    def _level(self, pcm: np.ndarray) -> np.ndarray:
        self._measure(pcm)
        self.gain = stream_gain(self._loud_sum, self._loud_blocks, self.target_dbfs, self.gain)
        return np.clip(pcm * self.gain, -self._ceiling, self._ceiling).astype(np.float32)

    def _measure(self, pcm: np.ndarray) -> None:
        data = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        n = (len(data) // self._block) * self._block
        self._pending = data[n:].copy()
        total, count = loud_block_power(data[:n], self._block)
        self._loud_sum += total
        self._loud_blocks += count
