"""Regenerate wav2lip_mel_reference.npy with librosa (not a project dependency).

The reference is Wav2Lip's audio.py melspectrogram (librosa stft with librosa 0.7's reflect
padding, librosa's Slaney mel filters, scipy's preemphasis) of reference_signal().
Run once in an environment with librosa + scipy: python -m tests.support.data.mel_reference
"""
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def reference_signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    return (rng.standard_normal(8000) * 0.1 + 0.3 * np.sin(2 * np.pi * 440 * t)
            + 0.2 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)


def wav2lip_audio_py_mel(wav: np.ndarray) -> np.ndarray:
    import librosa
    import scipy.signal

    wav = scipy.signal.lfilter([1, -0.97], [1], wav)
    d = librosa.stft(y=wav, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect")
    mel_basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    s = np.dot(mel_basis, np.abs(d))
    min_level = np.exp(-100 / 20 * np.log(10))
    s = 20 * np.log10(np.maximum(min_level, s)) - 20
    return np.clip((2 * 4) * ((s + 100) / 100) - 4, -4, 4).astype(np.float32)


if __name__ == "__main__":
    np.save(HERE / "wav2lip_mel_reference.npy", wav2lip_audio_py_mel(reference_signal()))
