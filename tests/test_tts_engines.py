"""Real Piper synthesis, edge-tts over its wire format on loopback, and the fallback chain."""
import asyncio
import logging
import subprocess
import sys

import numpy as np
import pytest

from broadcaster.tts import (
    BROADCAST_RATE,
    EdgeTTSEngine,
    FallbackChain,
    PiperEngine,
    SpeechStage,
    TTSError,
    gated_rms_dbfs,
    prepare_speech,
)
from tests.support.broadcaster_proc import run_env
from tests.support.media import speech_band_energy
from tests.support.ports import free_port
from tests.support.servers.edge_tts import EdgeWireServer, edge_tts_served_by
from tests.support.sinks import TimedSink


def test_piper_packaged_voice_speaks_plausibly(piper):
    out = piper.synthesize("Good evening, and welcome to the late show.")
    assert out.engine == "piper" and out.rate == 22050
    pcm = prepare_speech(out.pcm, out.rate, target_dbfs=-20.0)
    dur = len(pcm) / BROADCAST_RATE
    assert 1.2 < dur < 5.0, dur  # 8 words
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert abs(gated_rms_dbfs(pcm, BROADCAST_RATE) - (-20.0)) < 1.0
    assert np.max(np.abs(pcm)) <= 10 ** (-1 / 20) + 1e-6
    assert speech_band_energy(pcm, BROADCAST_RATE) > 0.7
    # longer text gives longer audio
    longer = piper.synthesize("Good evening, and welcome to the late show. Tonight we talk about the weather.")
    assert len(longer.pcm) > len(out.pcm) * 1.5


def test_piper_bad_voice_path_names_the_file(tmp_path):
    with pytest.raises(TTSError, match="nope.onnx"):
        PiperEngine(tmp_path / "nope.onnx")


@pytest.fixture
def edge_server(piper, monkeypatch):
    with edge_tts_served_by(piper, monkeypatch) as server:
        yield server


def test_edge_tts_over_its_wire_format(edge_server):
    engine = EdgeTTSEngine("zh-CN-XiaoxiaoNeural")
    out = engine.synthesize("Breaking news from the weather desk.")
    assert edge_server.requests[0]["voice"] == "Microsoft Server Speech Text to Speech Voice (zh-CN, XiaoxiaoNeural)"
    assert edge_server.requests[0]["text"] == "Breaking news from the weather desk."
    assert "Sec-MS-GEC" in edge_server.requests[0]["query"]
    assert out.engine == "edge-tts" and out.rate == 24_000
    assert 1.0 < len(out.pcm) / out.rate < 5.0
    pcm = prepare_speech(out.pcm, out.rate)
    assert abs(gated_rms_dbfs(pcm, BROADCAST_RATE) + 20.0) < 1.0


def test_fallback_to_piper_when_edge_is_unreachable(piper, monkeypatch, caplog):
    import edge_tts.communicate
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{free_port()}/edge/v1?x=1")
    chain = FallbackChain([EdgeTTSEngine("zh-CN-XiaoxiaoNeural", connect_timeout_s=2), piper])
    sink = TimedSink()
    stage = SpeechStage(chain, sink)
    try:
        with caplog.at_level(logging.WARNING, logger="broadcaster.tts.fallback"):
            report = asyncio.run(stage.say("First line here. Second line there. Third one.", line_id=7))
    finally:
        stage.close()
    assert report.engines == ["piper", "piper", "piper"]
    assert [c for _, _, c, _ in sink.items] == ["First line here.", "Second line there.", "Third one."]
    warnings = [r for r in caplog.records if "falling back to piper" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per sentence


def test_fallback_when_edge_returns_garbage(piper, monkeypatch):
    """The server answers in wire format but the 'MP3' does not decode: next engine speaks."""
    server = EdgeWireServer(lambda text: (np.zeros(100, np.float32), 24000))
    server.start()
    import edge_tts.communicate
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", server.wss_url)
    import tests.support.servers.edge_tts as es
    monkeypatch.setattr(es, "encode_mp3_24k", lambda pcm, rate: b"\x00not an mp3" * 50)
    try:
        chain = FallbackChain([EdgeTTSEngine("en-US-AriaNeural"), piper])
        out = chain.synthesize("Hello again.")
    finally:
        server.stop()
    assert out.engine == "piper" and chain.last_engine == "piper"


def test_fallback_recovery_policy_uses_clock():
    class Flaky:
        name = "flaky"
        fail = True

        def synthesize(self, text):
            from broadcaster.tts import Synthesized
            if self.fail:
                raise TTSError("down")
            return Synthesized(np.ones(10, np.float32), 16000, self.name)

        def close(self):
            pass

    class Steady(Flaky):
        name = "steady"
        fail = False

    now = [0.0]
    flaky = Flaky()
    chain = FallbackChain([flaky, Steady()], retry_after_s=30, clock=lambda: now[0])
    assert chain.synthesize("a").engine == "steady"
    flaky.fail = False
    now[0] = 10.0
    assert chain.synthesize("a").engine == "steady"  # still cooling down
    now[0] = 31.0
    assert chain.synthesize("a").engine == "flaky"
    flaky.fail = True
    chain.engines[1].fail = True
    with pytest.raises(TTSError, match="all TTS engines failed"):
        chain.synthesize("a")


def test_piper_voice_by_path_and_bad_config(tmp_path):
    from broadcaster.tts import packaged_voice_paths
    model, config = packaged_voice_paths()
    engine = PiperEngine(model, warm_up=False)  # any voice: .onnx with its .onnx.json beside it
    assert engine.voice_path == model and len(engine.synthesize("Hi there.").pcm) > 5000
    bad = tmp_path / "voice.onnx.json"
    bad.write_text("{not json")
    with pytest.raises(TTSError, match="voice.onnx.json"):
        PiperEngine(model, bad)
    with pytest.raises(TTSError, match="voice name is empty"):
        EdgeTTSEngine("")


PIPER_MEMORY_SCRIPT = """
import random
from pathlib import Path
from broadcaster.tts import PiperEngine

def rss_mb():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

engine = PiperEngine()
loaded = rss_mb()
rng = random.Random(1)
words = "good question thanks for asking here is a short answer for you one moment please".split()
for _ in range(40):
    engine.synthesize(" ".join(rng.choice(words) for _ in range(rng.choice([3, 6, 10, 16, 24]))) + ".")
print(rss_mb() - loaded)
"""


def test_piper_gives_its_onnx_arena_back_after_each_sentence():
    """Sentences of varied length must not leave the process holding the largest arena it
    ever needed (ONNX Runtime's default: about 150 MB more after 20 sentences)."""
    done = subprocess.run([sys.executable, "-c", PIPER_MEMORY_SCRIPT], capture_output=True,
                          text=True, timeout=120, env=run_env())
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb = float(done.stdout.strip().splitlines()[-1])
    assert grown_mb < 100, f"RSS grew {grown_mb:.0f} MB over 40 sentences"
