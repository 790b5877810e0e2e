"""Wav2Lip's audio features, reproduced without librosa: the exact recipe of Wav2Lip's audio.py
(hparams: 16 kHz, preemphasis 0.97, n_fft 800, hop 200, win 800, 80 Slaney mels 55-7600 Hz,
ref_level_db 20, min_level_db -100, symmetric normalisation clipped to [-4, 4]).

STFT as librosa 0.7 (the version Wav2Lip pins): centred frames, reflect padding, periodic Hann.
80 mel frames per second; a video frame at fps uses 16 mel frames (200 ms).
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_STEP = 16
MEL_FPS = SAMPLE_RATE / HOP  # 80


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with Slaney area normalisation."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_MEL_BASIS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float64)  # periodic Hann


def preemphasis(wav: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """scipy.signal.lfilter([1, -k], [1], wav)."""
    wav = np.asarray(wav, dtype=np.float64)
    out = wav.copy()
    out[1:] -= k * wav[:-1]
    return out


def stft_magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| (1 + n_fft/2, frames), centred with reflect padding like librosa 0.7."""
    pad = N_FFT // 2
    if len(y) <= pad:
        y = np.pad(y, (0, pad + 1 - len(y)))
    y = np.pad(y, (pad, pad), mode="reflect")
    n_frames = 1 + (len(y) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = y[idx] * _WINDOW[None, :]
    return np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)).T


def melspectrogram(wav16k: np.ndarray) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram, shape (80, frames), values in [-4, 4]."""
    spec = stft_magnitude(preemphasis(wav16k))
    mel = _MEL_BASIS.astype(np.float64) @ spec
    min_level = np.exp(MIN_LEVEL_DB / 20 * np.log(10))
    s = 20 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    s = (2 * MAX_ABS_VALUE) * ((s - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS_VALUE
    return np.clip(s, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def mel_chunks(mel: np.ndarray, fps: float) -> list[np.ndarray]:
    """One (80, 16) window per video frame, as Wav2Lip's inference.py slices them."""
    chunks = []
    step = MEL_FPS / fps
    i = 0
    while True:
        start = int(i * step)
        if start + MEL_STEP > mel.shape[1]:
            chunks.append(mel[:, max(0, mel.shape[1] - MEL_STEP):])
            break
        chunks.append(mel[:, start:start + MEL_STEP])
        i += 1
    return chunks
