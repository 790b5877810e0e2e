"""Reading a recorded broadcast of the default scene back: per-frame pictures and audio, and
the checks that the anchor's mouth follows the audio on air and captions show while it speaks."""

from __future__ import annotations

import numpy as np

from tests.support.media import audio_rms_per_frame

# the puppet's mouth in the default scene (anchor box 218,60 418x420; mouth at ~0.59 of it)
MOUTH = (slice(290, 330), slice(395, 465))
CAPTION = (slice(415, 470), slice(60, 800))


def check_lips_and_captions(frames, audio, fps: int = 20) -> np.ndarray:
    """Assert the mouth moves with the speech on air (still in silence) and captions are drawn
    while speaking; returns the per-frame speaking mask."""
    pts = [p for p, _ in frames]
    rms = audio_rms_per_frame(audio, pts, fps)
    speaking = rms > 0.01
    assert speaking.sum() > 2 * fps, "the line should give seconds of speech"
    assert (~speaking).sum() > 2 * fps
    mouth = np.array([f[MOUTH].astype(np.float32) for _, f in frames])
    change = np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))
    change = np.concatenate([[0.0], change])
    # the mouth moves while speech is on air and is still in silence
    assert change[speaking].mean() > 4 * change[~speaking].mean() + 0.2
    openness = np.array([f[MOUTH].astype(np.float32).std() for _, f in frames])
    corr = np.corrcoef(openness, rms)[0, 1]
    assert corr > 0.4, corr
    # captions: drawn while speaking, absent in silence
    caption_ink = np.array([(f[CAPTION] > 200).mean() for _, f in frames])
    assert caption_ink[speaking].mean() > 3 * caption_ink[~speaking][:fps].mean() + 0.01
    return speaking
