"""Pitch at the end of speech (asr.prosody): synthetic voiced glides, then real espeak-ng
clauses spoken as a statement and as a held clause."""

from pathlib import Path

import numpy as np
import pytest

from broadcaster.asr.prosody import Contour, ProsodyConfig, contour, pitch_track, tail_pitch
from broadcaster.mic.capture import WavFileSource
from tests.support.data.speech import speech_with_pauses

SR = 16000


def voiced(f0_hz: np.ndarray) -> np.ndarray:
    """A buzz with ten harmonics following the pitch f0_hz (one value per sample)."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / SR
    return (sum(np.sin(k * phase) / k for k in range(1, 11)) * 0.1).astype(np.float32)


def glide(start_hz: float, end_hz: float, seconds: float = 1.5, tail_s: float = 0.3) -> np.ndarray:
    """Level at start_hz, then a glide to end_hz over the last tail_s."""
    n, m = int(seconds * SR), int(tail_s * SR)
    return voiced(np.concatenate([np.full(n - m, start_hz), np.geomspace(start_hz, end_hz, m)]))


def test_pitch_track_finds_the_pitch_of_a_buzz():
    f0 = pitch_track(voiced(np.full(SR, 180.0)))
    assert np.isnan(f0).mean() < 0.05
    assert np.nanmedian(f0) == pytest.approx(180.0, rel=0.03)


@pytest.mark.parametrize("start, end, expected", [
    (160.0, 110.0, Contour.FALLING),    # -6.5 semitones
    (160.0, 160.0, Contour.HELD),
    (160.0, 220.0, Contour.HELD),       # rising: a question or a held clause
    (160.0, 150.0, Contour.HELD),       # -1.1 semitones: not a fall
])
def test_contour_of_glides(start, end, expected):
    assert contour(glide(start, end)) is expected


def test_fall_threshold_is_configurable():
    audio = glide(160.0, 135.0)          # measured about -2.6 semitones at the end
    assert contour(audio) is Contour.HELD
    assert contour(audio, ProsodyConfig(fall_st=2.0)) is Contour.FALLING


def test_unvoiced_or_missing_audio_is_unknown():
    rng = np.random.default_rng(1)
    assert contour(rng.normal(0, 0.1, SR).astype(np.float32)) is Contour.UNKNOWN
    assert contour(np.zeros(SR, np.float32)) is Contour.UNKNOWN
    assert contour(np.zeros(100, np.float32)) is Contour.UNKNOWN
    assert contour(None) is Contour.UNKNOWN
    assert tail_pitch(np.zeros(SR, np.float32)) is None


def clip(tmp: Path, text: str) -> np.ndarray:
    path, _ = speech_with_pauses(tmp / "clip.wav", [text], lead_s=0.0, tail_s=0.0, trim=True)
    return np.concatenate(list(WavFileSource(str(path)).frames()))


@pytest.mark.parametrize("words", ["Thank you for watching", "The weather today is sunny",
                                   "Let us talk about music for a few minutes"])
def test_statement_falls_and_held_clause_does_not(tmp_path, words):
    assert contour(clip(tmp_path, words + ".")) is Contour.FALLING
    assert contour(clip(tmp_path, words + ",")) is Contour.HELD
