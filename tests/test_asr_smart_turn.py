"""Smart Turn v3, the packaged turn model (asr.smart_turn): the real ONNX model from the
pipecat-ai wheel on real (espeak-ng) speech, its settings, and its place in the turn end."""

import logging

import numpy as np
import pytest

from broadcaster.asr import smart_turn
from broadcaster.asr.smart_turn import SmartTurnError, load_smart_turn, log_mel, packaged_model_path
from broadcaster.asr.streaming import StreamingTranscriber, turn_end_gate
from broadcaster.asr.turn_end import TurnCue, TurnEndConfig
from broadcaster.errors import ConfigError
from broadcaster.mic.capture import WavFileSource
from broadcaster.mic.host import mic_settings
from broadcaster.mic.vad import UtteranceEnd, VadConfig, VadSegmenter
from broadcaster.tts.levels import resample_to_broadcast
from tests.support.data.speech import MANDARIN_RATE, MANDARIN_VOICE, espeak, speech_with_pauses, trim_silence


@pytest.fixture(scope="module")
def model():
    path = packaged_model_path()
    assert path is not None, f"the packaged model is missing: {smart_turn.INSTALL_HINT}"
    return load_smart_turn(path)


def _spoken(text, voice=None, rate=None):
    """16 kHz float speech with 0.5 s of silence before and 0.1 s after (a pause just begun)."""
    samples, native = espeak(text, voice, rate)
    speech = resample_to_broadcast(trim_silence(samples).astype(np.float32) / 32768, native, 16000)
    return np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(1600, np.float32)])


def test_features_are_whispers_log_mel_of_the_last_8_s():
    rng = np.random.default_rng(1)
    short = rng.standard_normal(16000).astype(np.float32) * 0.1
    feats = log_mel(short)
    assert feats.shape == (80, 800) and feats.dtype == np.float32
    assert feats.max() - feats.min() <= 2.0 + 1e-6                 # Whisper keeps 8 decades below the top, / 4
    padded = np.concatenate([np.zeros(16000 * 7, np.float32), short])
    assert np.allclose(log_mel(padded), feats, atol=1e-5)          # short audio: silence in front
    long = np.concatenate([rng.standard_normal(16000 * 5).astype(np.float32), padded])
    assert np.allclose(log_mel(long), feats, atol=1e-5)            # only the last 8 s count


@pytest.mark.parametrize(("finished", "unfinished", "voice"), [
    ("我们来聊一聊音乐吧。", "虽然外面很冷，", MANDARIN_VOICE),
    ("The weather today is sunny and warm in the city.", "Because we are short on time,", None),
])
def test_the_model_hears_a_finished_turn_from_an_unfinished_one(model, finished, unfinished, voice):
    rate = MANDARIN_RATE if voice else None
    done, open_ = model.probability(_spoken(finished, voice, rate)), model.probability(_spoken(unfinished, voice, rate))
    print(f"P(complete): {finished!r} {done:.3f}, {unfinished!r} {open_:.3f}")
    assert done > 0.7 and open_ < 0.3


def test_the_transcriber_gives_the_gate_the_models_verdict_and_the_turn_ends_early(asr, tmp_path):
    """A finished statement: the pause's transcript carries P(complete) beside the pitch, and
    the VAD ends the turn after complete_ms."""
    path, _ = speech_with_pauses(tmp_path / "statement.wav", ["The weather today is sunny and warm in the city."],
                                 lead_s=0.5, tail_s=1.5, trim=True)
    vad = VadConfig(min_silence_ms=500)
    gate = turn_end_gate(vad, TurnEndConfig(model=packaged_model_path()))
    assert gate.model is not None
    seg, st = VadSegmenter(vad, turn_end=gate), StreamingTranscriber(asr, partials=False, gate=gate)
    fed, delay = 0, None
    for frame in WavFileSource(str(path)).frames():
        fed += len(frame)
        for ev in seg.process(frame):
            st.handle(ev)
            if isinstance(ev, UtteranceEnd):
                delay = fed / 16000 - ev.speech_end
        if delay is not None:
            break
    decision = gate.last
    assert decision.p_complete is not None and decision.p_complete >= 0.5, decision
    assert decision.cue is TurnCue.COMPLETE and 0.19 <= delay <= 0.26, (delay, decision)


def test_settings_choose_the_packaged_model_a_file_or_none(tmp_path, monkeypatch):
    assert mic_settings({}, "config.yaml").turn_end.model == packaged_model_path()
    assert mic_settings({"turn_end": {"model": "smart-turn", "threshold": 0.6}}, "c.yaml").turn_end.threshold == 0.6
    assert mic_settings({"turn_end": {"model": "none"}}, "c.yaml").turn_end.model is None
    own = tmp_path / "turn.onnx"
    own.write_bytes(packaged_model_path().read_bytes())
    assert mic_settings({"turn_end": {"model": str(own)}}, "c.yaml").turn_end.model == own
    with pytest.raises(ConfigError, match=r"c\.yaml.*mic\.turn_end\.model.*not a file"):
        mic_settings({"turn_end": {"model": str(tmp_path / "missing.onnx")}}, "c.yaml")
    with pytest.raises(ConfigError, match=r"mic\.turn_end\.threshold"):
        mic_settings({"turn_end": {"threshold": 1.5}}, "c.yaml")
    monkeypatch.setattr(smart_turn, "packaged_model_path", lambda: None)
    assert mic_settings({}, "c.yaml").turn_end.model is None           # auto: pitch alone
    with pytest.raises(ConfigError, match=r"mic\.turn_end\.model.*not installed.*pipecat-ai"):
        mic_settings({"turn_end": {"model": "smart-turn"}}, "c.yaml")


def test_a_file_that_is_not_the_model_leaves_the_pitch_to_decide(tmp_path, caplog):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(SmartTurnError, match="bad.onnx"):
        load_smart_turn(bad)
    with caplog.at_level(logging.WARNING):
        gate = turn_end_gate(VadConfig(), TurnEndConfig(model=bad))
    assert gate is not None and gate.model is None
    assert "turn model not loaded" in caplog.text and "bad.onnx" in caplog.text
