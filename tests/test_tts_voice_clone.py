"""The anchor's own voice: the scene's reference clip is checked at `broadcaster check`, and
fish_speech sends it (with its transcript) to a stand-in speaking Fish Speech's /v1/tts."""
import asyncio
import base64
import json

import numpy as np
import pytest

from broadcaster.errors import ConfigError
from broadcaster.tts import SpeechStage
from broadcaster.tts.fallback import FallbackChain
from broadcaster.tts.fish_speech import FishSpeechEngine
from broadcaster.tts.http_audio import Timeouts
from broadcaster.tts.settings import build_engine, tts_settings
from broadcaster.tts.voice import voice_reference
from tests.support.broadcaster_proc import run_broadcaster, write_config
from tests.support.media import write_wav
from tests.support.servers.tts_standins import (
    CosyVoiceStandIn,
    FishSpeechStandIn,
    GptSovitsStandIn,
    speak_with,
)
from tests.support.sinks import TimedSink

PROMPT = "This is my own voice, recorded for the anchor."


@pytest.fixture(scope="module")
def speak(piper):
    return speak_with(piper)


@pytest.fixture
def host_wav(tmp_path, piper):
    out = piper.synthesize(PROMPT)
    (tmp_path / "voice").mkdir()
    return write_wav(tmp_path / "voice" / "host.wav", out.pcm * 20000, out.rate)


def test_a_good_reference_clip_loads_with_its_transcript(host_wav, tmp_path):
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    assert ref.path == host_wav and ref.text == PROMPT and ref.audio == host_wav.read_bytes()
    assert 2.0 < ref.duration_s < 6.0


def test_the_scene_voice_reaches_a_cloning_engine_beside_an_offline_one(host_wav, tmp_path):
    """A local engine before or after the cloning one leaves the scene's voice in place."""
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    fish = {"engine": "fish_speech", "url": "http://gpu:8080"}
    for engines in ([fish, "piper"], ["piper", fish]):
        assert tts_settings({"engines": engines}, "s.yaml", voice=ref).voice is ref


@pytest.mark.parametrize("make, message", [
    (lambda p: write_wav(p, np.sin(np.arange(16000) / 5) * 9000, 16000), "too short"),
    (lambda p: write_wav(p, np.sin(np.arange(16000 * 31) / 5) * 9000, 16000), "too long"),
    (lambda p: write_wav(p, np.zeros(16000 * 4), 16000), "silent"),
    (lambda p: p.write_text("not audio at all\n" * 50), "is not usable audio"),
])
def test_a_bad_reference_clip_is_refused_naming_file_and_key(tmp_path, make, message):
    make(tmp_path / "clip.wav")
    with pytest.raises(ConfigError) as err:
        voice_reference({"reference": "clip.wav", "text": "Hello."}, "scene.yaml", tmp_path)
    text = str(err.value)
    assert "scene.yaml" in text and "voice.reference" in text and "clip.wav" in text and message in text
    with pytest.raises(ConfigError, match="voice.reference.*not found"):
        voice_reference({"reference": "nope.wav", "text": "Hello."}, "scene.yaml", tmp_path)
    with pytest.raises(ConfigError, match="voice.text"):
        voice_reference({"reference": "clip.wav"}, "scene.yaml", tmp_path)


def test_broadcaster_check_refuses_a_scene_with_a_silent_voice(tmp_path):
    scenes = tmp_path / "scenes"
    (scenes / "voice").mkdir(parents=True)
    write_wav(scenes / "voice" / "host.wav", np.zeros(16000 * 4), 16000)
    (scenes / "default.yaml").write_text(
        "canvas: {width: 640, height: 360, fps: 20}\n"
        "voice: {reference: voice/host.wav, text: 'Hello there.'}\n"
        "tts: {engines: [{engine: fish_speech, url: 'http://127.0.0.1:9/'}, piper]}\n")
    config = write_config(tmp_path / "config.yaml", scenes_dir=str(scenes))
    result = run_broadcaster("check", "-c", str(config))
    assert result.returncode == 2, result.stderr
    assert "default.yaml" in result.stderr and "voice.reference" in result.stderr
    assert "silent" in result.stderr


def test_fish_speech_needs_a_voice_or_a_reference_id():
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].engine.*voice"):
        tts_settings({"engines": [{"engine": "fish_speech", "url": "http://gpu:8080"}]}, "s.yaml")
    settings = tts_settings({"engines": [{"engine": "fish_speech", "url": "http://gpu:8080",
                                          "reference_id": "7f92f8af"}]}, "s.yaml")
    assert dict(settings.engines[0].options)["reference_id"] == "7f92f8af"


@pytest.mark.parametrize("wav_header", [False, True])
def test_fish_speech_sends_the_reference_and_streams_its_answer(speak, host_wav, tmp_path,
                                                                 wav_header, monkeypatch):
    monkeypatch.setenv("FISH_SPEECH_API_KEY", "fish-secret-789")
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    standin = FishSpeechStandIn(speak, wav_header=wav_header, chunk_ms=100)
    with standin.serve() as url:
        settings = tts_settings({"engines": [{"engine": "fish_speech", "url": url}]}, "s.yaml",
                                voice=ref)
        engine = build_engine(settings).engines[0]
        assert isinstance(engine, FishSpeechEngine)
        chunks = list(engine.stream("Welcome back to the show."))
    body = standin.requests[0]["body"]
    assert body["text"] == "Welcome back to the show."
    assert body["references"] == [{"audio": host_wav.read_bytes(), "text": PROMPT}]
    assert body["streaming"] is True and body["format"] == "wav" and body["reference_id"] is None
    assert 100 <= body["chunk_length"] <= 300 and body["use_memory_cache"] == "on"
    assert standin.requests[0]["headers"]["Authorization"] == "Bearer fish-secret-789"
    assert {c.rate for c in chunks} == {44_100} and len(chunks) > 5
    got = np.concatenate([c.pcm for c in chunks])
    sent = np.frombuffer(bytes(standin.audio_sent[0]), "<i2").astype(np.float32) / 32768
    assert np.array_equal(got, sent)


def test_fish_speech_dying_mid_sentence_falls_back_to_piper(speak, piper, host_wav, tmp_path):
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    standin = FishSpeechStandIn(speak, behaviours=[("die_after", 2)])
    with standin.serve() as url:
        fish = FishSpeechEngine(url, voice=ref, timeouts=Timeouts(first_audio_s=3, stall_s=0.8))
        sink = TimedSink()
        stage = SpeechStage(FallbackChain([fish, piper]), sink)
        try:
            report = asyncio.run(stage.say("The weather is fine today.", line_id=3))
        finally:
            stage.close()
    assert report.engines == ["piper"] and report.failed == 0
    assert len(sink.items) > 2 and sink.items[-1][2] == "The weather is fine today."
    assert len(sink.items[-1][1]) > 48_000 * 0.8      # Piper's whole sentence came after
    assert json.dumps(standin.requests[0]["body"]["references"][0]["text"]) == json.dumps(PROMPT)
    assert base64.b64encode(standin.requests[0]["body"]["references"][0]["audio"])


def test_gpt_sovits_switches_voice_then_streams_with_the_reference(speak, host_wav, tmp_path):
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT, "language": "en"},
                          "s.yaml", tmp_path)
    standin = GptSovitsStandIn(speak, chunk_ms=100)
    with standin.serve() as url:
        settings = tts_settings({"engines": [{
            "engine": "gpt_sovits", "url": url, "gpt_weights": "GPT_weights_v2/host-e15.ckpt",
            "sovits_weights": "SoVITS_weights_v2/host_e8.pth"}]}, "s.yaml", voice=ref)
        engine = build_engine(settings).engines[0]
        first = list(engine.stream("Good evening."))
        second = list(engine.stream("And good night."))
    assert standin.weights == [("set_gpt_weights", "GPT_weights_v2/host-e15.ckpt"),
                               ("set_sovits_weights", "SoVITS_weights_v2/host_e8.pth")]  # once
    body = standin.requests[0]["body"]
    assert body["text"] == "Good evening." and body["text_lang"] == "en"
    assert body["ref_audio_path"] == str(host_wav.resolve()) and body["prompt_text"] == PROMPT
    assert body["prompt_lang"] == "en" and body["media_type"] == "wav" and body["streaming_mode"] is True
    for chunks, sent in ((first, standin.audio_sent[0]), (second, standin.audio_sent[1])):
        assert {c.rate for c in chunks} == {32_000} and len(chunks) > 3
        got = np.concatenate([c.pcm for c in chunks])
        assert np.array_equal(got, np.frombuffer(bytes(sent), "<i2").astype(np.float32) / 32768)


def test_gpt_sovits_needs_the_scene_voice_and_a_valid_streaming_mode(host_wav, tmp_path):
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].engine.*voice"):
        tts_settings({"engines": [{"engine": "gpt_sovits", "url": "http://gpu:9880"}]}, "s.yaml")
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].streaming_mode"):
        tts_settings({"engines": [{"engine": "gpt_sovits", "url": "http://gpu:9880",
                                   "streaming_mode": 7}]}, "s.yaml", voice=ref)


@pytest.mark.parametrize("mode", ["zero_shot", "cross_lingual", "sft"])
def test_cosyvoice_uploads_the_clip_as_form_data_and_streams_pcm(speak, host_wav, tmp_path, mode):
    ref = voice_reference({"reference": "voice/host.wav", "text": PROMPT}, "s.yaml", tmp_path)
    standin = CosyVoiceStandIn(speak, chunk_ms=100)
    entry = {"engine": "cosyvoice", "mode": mode}
    if mode == "sft":
        entry["spk_id"] = "中文女"
    with standin.serve() as url:
        settings = tts_settings({"engines": [{**entry, "url": url}]}, "s.yaml", voice=ref)
        chunks = list(build_engine(settings).engines[0].stream("See you tomorrow."))
    request = standin.requests[0]
    assert request["mode"] == mode and request["body"]["tts_text"] == "See you tomorrow."
    if mode == "sft":
        assert request["body"]["spk_id"] == "中文女" and "prompt_wav" not in request["body"]
    else:
        assert request["body"]["prompt_wav"] == ("host.wav", host_wav.read_bytes())
        assert request["body"].get("prompt_text") == (PROMPT if mode == "zero_shot" else None)
    got = np.concatenate([c.pcm for c in chunks])
    assert {c.rate for c in chunks} == {22_050}
    assert np.array_equal(got, np.frombuffer(bytes(standin.audio_sent[0]), "<i2").astype(np.float32) / 32768)
