"""Multilingual ASR: the packaged Whisper base on espeak-ng Mandarin, model and language
settings, and their errors."""

import io
import os

import numpy as np
import pytest

from broadcaster.asr import models
from broadcaster.asr.smart_turn import packaged_model_path
from broadcaster.asr.run import transcribe_file_main
from broadcaster.asr.streaming import MicPipeline
from broadcaster.asr.turn_end import TurnEndConfig
from broadcaster.asr.whisper import WhisperAsr, chinese_punctuation, collapse_repetition
from broadcaster.errors import ConfigError
from broadcaster.mic.capture import WavFileSource
from broadcaster.mic.host import mic_settings
from tests.support.broadcaster_proc import run_broadcaster, run_env
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.servers.asr import TOKEN, start_asr_serve
from tests.support.data.speech import MANDARIN_RATE, MANDARIN_VOICE, char_error_rate, speech_with_pauses

MANDARIN = ["你能听到我说话吗？我想问一个问题。", "谢谢大家收看，我们明天早上见。"]


@pytest.fixture(scope="module")
def asr_zh():
    """Whisper base (the multilingual extra) for Mandarin, loaded once per module."""
    return WhisperAsr(language="zh")


@pytest.fixture(scope="module")
def mandarin_wav(tmp_path_factory):
    return speech_with_pauses(tmp_path_factory.mktemp("zh") / "zh.wav", MANDARIN, lead_s=0.6, pause_s=1.2,
                              tail_s=1.2, voice=MANDARIN_VOICE, rate_wpm=MANDARIN_RATE, trim=True)


def _is_simplified(text: str) -> bool:
    import opencc
    return opencc.OpenCC("t2s").convert(text) == text


def test_mic_path_transcribes_mandarin_into_simplified_chinese(asr_zh, mandarin_wav):
    path, spans = mandarin_wav
    got = []
    pipe = MicPipeline(WavFileSource(str(path), realtime=True), asr_zh, got.append,
                       turn_end=TurnEndConfig()).start()
    pipe.join(120)
    assert pipe.error is None
    finals = [t.text for t in got if t.kind == "final"]
    assert len(finals) >= len(MANDARIN), finals
    texts = ["".join(t.text for t in got if t.kind == "final" and t.start < e and t.end > s) for s, e in spans]
    assert char_error_rate(MANDARIN, texts) <= 35.0, texts
    assert "问题" in texts[0] and "明天" in texts[1], texts
    for text in texts:
        assert _is_simplified(text), text
        assert text[-1] in "。？！", text          # Chinese punctuation, not ASCII
        assert " " not in text and "," not in text, text
    assert any(t.kind == "partial" and t.text for t in got)


def test_asr_command_and_asr_serve_take_the_language(mandarin_wav):
    local = run_broadcaster("asr", "--language", "zh", str(mandarin_wav[0]), timeout=300)
    assert local.returncode == 0, local.stderr[-2000:]
    assert any("问题" in line for line in local.stdout.splitlines() if "FINAL" in line), local.stdout
    bad = run_broadcaster("asr", "--language", "klingon", str(mandarin_wav[0]))
    assert bad.returncode == 2 and "--language" in bad.stdout + bad.stderr and "klingon" in bad.stdout + bad.stderr

    port, env = free_port(), run_env(LANG_TOKEN=TOKEN)
    server = start_asr_serve(port, env, "LANG_TOKEN", "--language", "zh")
    try:
        remote = run_broadcaster("asr", str(mandarin_wav[0]), "--server", f"ws://127.0.0.1:{port}",
                                 "--token-env", "LANG_TOKEN", env=env, timeout=300)
        assert remote.returncode == 0, remote.stdout + remote.stderr
        finals = [line for line in remote.stdout.splitlines() if "FINAL" in line]
        assert any("问题" in line for line in finals) and any("明天" in line for line in finals), remote.stdout
    finally:
        stop(server)


def test_english_only_model_refuses_another_language(mandarin_wav):
    with pytest.raises(ValueError, match="English-only"):
        WhisperAsr("tiny.en", language="zh")
    out = io.StringIO()
    assert transcribe_file_main(str(mandarin_wav[0]), model="tiny.en", language="zh", out=out) == 2
    assert "English-only" in out.getvalue()


def test_auto_language_detects_mandarin(asr_zh, mandarin_wav):
    auto = WhisperAsr(models.resolve_model("base"), language="auto")
    path, spans = mandarin_wav
    pcm = np.concatenate(list(WavFileSource(str(path)).frames()))
    s, e = spans[0]
    d = auto.decode(pcm[int(s * 16000) - 3200:int(e * 16000) + 3200])
    assert d.language == "zh" and "问题" in d.text and _is_simplified(d.text), d


@pytest.mark.parametrize("mic, key, words", [
    ({"asr": {"language": "xx"}}, "mic.asr.language", "language code"),
    ({"asr": {"language": "zh", "model": "tiny.en"}}, "mic.asr.model", "English-only"),
    ({"asr": {"model": "huge-v9"}}, "mic.asr.model", "packaged model"),
    ({"asr": {"model": "/no/such/folder"}}, "mic.asr.model", "does not exist"),
    ({"turn_end": {"mode": "psychic"}}, "mic.turn_end.mode", "transcript, silence"),
    ({"turn_end": {"complete_ms": 800}}, "mic.turn_end.complete_ms", "between 50 and 500"),
    ({"turn_end": {"hold_ms": 100}}, "mic.turn_end.hold_ms", "between 500 and 5000"),
])
def test_bad_asr_settings_name_the_key(mic, key, words):
    with pytest.raises(ConfigError) as err:
        mic_settings(mic, "config.yaml")
    assert err.value.key == key and words in err.value.message and str(err.value).startswith("config.yaml: ")


def test_model_folder_without_model_files_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        mic_settings({"asr": {"model": str(tmp_path)}}, "config.yaml")
    assert err.value.key == "mic.asr.model" and "model.bin" in err.value.message and str(tmp_path) in err.value.message
    with pytest.raises(ValueError, match="model.bin"):
        WhisperAsr(str(tmp_path))


def test_settings_defaults_and_silence_mode():
    s = mic_settings({"asr": {"language": "zh"}}, "config.yaml")
    assert s.language == "zh" and s.model is None and s.turn_end == TurnEndConfig(model=packaged_model_path())
    assert models.default_model("zh") == "base" and models.default_model("en") == "tiny.en"
    assert mic_settings({"turn_end": {"mode": "silence"}}, "c.yaml").turn_end is None
    s = mic_settings({"vad": {"min_silence_ms": 700}, "turn_end": {"hold_ms": 1500}}, "c.yaml")
    assert s.turn_end == TurnEndConfig(complete_ms=200, unclear_ms=700, hold_ms=1500,
                                      model=packaged_model_path())


def test_base_model_is_joined_once_from_its_two_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = models.resolve_model("base")
    assert folder == str(tmp_path / "broadcaster" / "models" / "base")
    assert os.path.getsize(os.path.join(folder, "model.bin")) == models.BASE.size
    assert sorted(os.listdir(folder)) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    mtime = os.stat(os.path.join(folder, "model.bin")).st_mtime_ns
    assert models.resolve_model(None, "zh") == folder
    assert os.stat(os.path.join(folder, "model.bin")).st_mtime_ns == mtime      # not joined again
    with open(os.path.join(folder, "model.bin"), "r+b") as f:                  # a half-written file
        f.truncate(1000)
    models.resolve_model("base")
    assert os.path.getsize(os.path.join(folder, "model.bin")) == models.BASE.size


def test_joined_model_with_wrong_bytes_is_refused(tmp_path, monkeypatch):
    fake = models.SplitModel(models.BASE.packages, models.BASE.parts, models.BASE.extra_files,
                             models.BASE.size, "0" * 64)
    with pytest.raises(RuntimeError, match="not the expected file"):
        models.assemble(fake, tmp_path / "m")
    assert not (tmp_path / "m" / "model.bin").exists() and os.listdir(tmp_path / "m") == []


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    with pytest.raises(RuntimeError, match="XDG_CACHE_HOME"):
        models.resolve_model("base")


def test_cjk_text_rules():
    assert collapse_repetition("弧翅翅翅翅翅翅翅翅") == "弧翅"
    assert collapse_repetition("你好。你好。你好。") == "你好。"
    assert collapse_repetition("谢谢大家") == "谢谢大家"
    assert chinese_punctuation("你能听到 我说话吗?我想问一个问题.") == "你能听到我说话吗？我想问一个问题。"
    assert chinese_punctuation("价格是3.5元, ok. Hello, world.") == "价格是3.5元，ok. Hello, world."


def test_an_unset_language_follows_the_scene_voice_and_a_set_one_wins(tmp_path):
    """A local mic with no mic.asr.language listens in the language the scene's voice speaks;
    a language or model in the config, or a remote ASR server, is left as configured."""
    from broadcaster.config import load_config
    from broadcaster.mic.host import with_scene_language
    from broadcaster.scene import load_scene
    from tests.support.paths import ROOT

    zh_scene = load_scene(ROOT / "scenes" / "zh-news.yaml")
    en_scene = load_scene(ROOT / "scenes" / "default.yaml")

    def settings_for(mic_yaml: str):
        path = tmp_path / "config.yaml"
        path.write_text(f"scenes_dir: {ROOT / 'scenes'}\nmic:\n{mic_yaml}")
        config = load_config(path, env={})
        return config, mic_settings(config.features.get("mic"), config.source)

    config, settings = settings_for("  enabled: true\n")
    assert settings.language == "en"
    assert with_scene_language(settings, config, zh_scene).language == "zh"
    assert with_scene_language(settings, config, en_scene).language == "en"
    config, settings = settings_for("  enabled: true\n  asr: {model: null}\n")   # as config.yaml ships
    assert with_scene_language(settings, config, zh_scene).language == "zh"
    config, settings = settings_for("  enabled: true\n  asr: {language: en}\n")
    assert with_scene_language(settings, config, zh_scene).language == "en"
    config, settings = settings_for("  enabled: true\n  asr: {model: tiny.en}\n")
    assert with_scene_language(settings, config, zh_scene).language == "en"
    config, settings = settings_for("  enabled: true\n  asr: {server: 'ws://127.0.0.1:9'}\n")
    assert with_scene_language(settings, config, zh_scene).language == "en"


def test_a_scene_switch_to_chinese_switches_the_mic_language_live(tmp_path):
    """SIGHUP from the English default scene to zh-news: the mic, whose config names no
    language, loads Whisper base for Chinese in the background while the broadcast goes on,
    and the host's next question is heard in Chinese."""
    import signal
    import time

    from tests.support.broadcaster_proc import healthz, read_turns, start_broadcaster, write_config
    from tests.support.http import http_json
    from tests.support.polling import wait_for

    wav, spans = speech_with_pauses(tmp_path / "host.wav", MANDARIN[1:], lead_s=14.0, tail_s=4.0,
                                    voice=MANDARIN_VOICE, rate_wpm=MANDARIN_RATE, trim=True)
    port = free_port()
    cfg = tmp_path / "config.yaml"

    def configure(scene):
        write_config(cfg, scene=scene, mic={"host_name": "Sam"}, control={"port": port})

    configure("default")
    proc = start_broadcaster("run", "-c", str(cfg), "--mic", str(wav), "--output", str(tmp_path / "out.flv"),
                             "--responder", "read-aloud", "--duration", "24", "--size", "320x180")
    try:
        wait_for(lambda: healthz(port, timeout=5)[0] == 200, 30, interval=0.1, what="on air", proc=proc)
        mic = lambda: http_json("GET", f"http://127.0.0.1:{port}/mic")[1]     # noqa: E731
        assert mic()["language"] == "en"
        configure("zh-news")
        switched_at = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: mic()["language"] == "zh", 30, interval=0.2, what="the mic in Chinese", proc=proc)
        print(f"mic switched to Chinese {time.monotonic() - switched_at:.1f} s after SIGHUP")
        assert healthz(port)[0] == 200
        host = wait_for(lambda: [t for t in read_turns(port) if t["kind"] == "host"], 20, interval=0.3,
                        what="the host's question", proc=proc)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert "the mic now listens in 'zh'" in err
    text = host[0]["text"]
    assert "明天" in text and _is_simplified(text), text


def test_a_decoder_echoing_its_context_prompt_is_decoded_again_without_it(asr_zh, mandarin_wav):
    """On unclear speech Whisper base with the Chinese context prompt may return the prompt
    itself ("以下是普通话的句子。"), which the anchor
    would answer. Here the real model's first answer is replaced by that echo: the utterance
    is decoded again without the context and gives the words said."""
    from types import SimpleNamespace

    from broadcaster.asr.whisper import LANGUAGE_PROMPTS
    from tests.support.media import decode_mono

    path, spans = mandarin_wav
    audio = decode_mono(path, 16000)[int(spans[1][0] * 16000):int(spans[1][1] * 16000)]
    model = asr_zh._model
    prompts = []

    class EchoOnce:
        def __getattr__(self, name):
            return getattr(model, name)

        def generate(self, features, prompt, **options):
            prompts.append(prompt[0])
            if len(prompts) == 1:
                echo = asr_zh._tok.encode(" " + LANGUAGE_PROMPTS["zh"]) + [asr_zh._tok.eot]
                return [SimpleNamespace(sequences_ids=[echo], no_speech_prob=0.1)]
            return model.generate(features, prompt, **options)

    asr_zh._model = EchoOnce()
    try:
        text = asr_zh.decode(audio).text
    finally:
        asr_zh._model = model
    assert len(prompts) == 2 and len(prompts[1]) < len(prompts[0])      # again, without the context
    assert "明天" in text, text
