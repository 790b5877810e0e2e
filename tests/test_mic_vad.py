"""Silero VAD (faster-whisper's ONNX file on onnxruntime) on real espeak-ng speech."""

import numpy as np

from broadcaster.mic.capture import WavFileSource
from broadcaster.mic.vad import (
    SpeechAudio,
    SpeechOnset,
    UtteranceDropped,
    UtteranceEnd,
    VadConfig,
    VadSegmenter,
)
from tests.support.data.speech import speech_with_pauses


def run(seg, frames):
    events = []
    for f in frames:
        events += seg.process(f)
    return events + seg.flush()


def test_two_utterances_found_with_their_times(tmp_path):
    path, spans = speech_with_pauses(tmp_path / "two.wav")
    onsets = []
    seg = VadSegmenter(VadConfig(), on_onset=onsets.append)
    events = run(seg, WavFileSource(str(path)).frames())
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    assert len(ends) == 2 and len(onsets) == 2
    for end, onset, (s, e) in zip(ends, onsets, spans):
        assert abs(onset.t - s) < 0.25                     # onset close to where speech starts
        assert abs(end.speech_end - e) < 0.3
        assert end.start <= s and end.end >= e - 0.3
        assert abs(len(end.audio) / 16000 - (end.end - end.start)) < 0.01
    # Only utterance audio is emitted: silence between utterances never reaches the ASR.
    sent = sum(len(e.audio) for e in events if isinstance(e, SpeechAudio)) / 16000
    total = sum(e - s for s, e in spans)
    assert sent < total + 2 * 0.25 + 0.5


def test_silence_and_noise_floor_give_no_events():
    rng = np.random.default_rng(0)
    frames = [(rng.standard_normal(320) * 0.003).astype(np.float32) for _ in range(150)]
    assert run(VadSegmenter(), frames) == []


def test_short_blip_is_dropped_not_transcribed(tmp_path):
    path, _ = speech_with_pauses(tmp_path / "blip.wav", texts=["hi"], lead_s=0.5, tail_s=1.0)
    events = run(VadSegmenter(VadConfig(min_speech_ms=600)), WavFileSource(str(path)).frames())
    assert any(isinstance(e, SpeechOnset) for e in events)
    assert any(isinstance(e, UtteranceDropped) for e in events)
    assert not any(isinstance(e, UtteranceEnd) for e in events)


def test_onset_min_ms_confirms_later_but_keeps_the_speech_start(tmp_path):
    path, spans = speech_with_pauses(tmp_path / "two.wav")
    frames = list(WavFileSource(str(path)).frames())
    fast, slow = [], []
    run(VadSegmenter(VadConfig(), on_onset=fast.append), frames)
    ev = run(VadSegmenter(VadConfig(onset_min_ms=96), on_onset=slow.append), frames)
    assert len(fast) == len(slow) == 2
    for a, b in zip(fast, slow):
        assert abs(a.t - b.t) <= 0.07 and b.audio_start < b.t
    ends = [e for e in ev if isinstance(e, UtteranceEnd)]
    assert all(abs(len(e.audio) / 16000 - (e.end - e.start)) < 0.01 for e in ends)
