"""Remote voice-cloning TTS servers, streamed: openai_speech against a local stand-in that
speaks the real `/v1/audio/speech` format, with real Piper as the fallback."""
import asyncio
import logging
import time

import numpy as np
import pytest

from broadcaster.errors import ConfigError
from broadcaster.service.metrics import Metrics
from broadcaster.tts import SpeechStage, TTSError
from broadcaster.tts.fallback import FallbackChain
from broadcaster.tts.http_audio import Timeouts
from broadcaster.tts.openai_speech import OpenAISpeechEngine
from broadcaster.tts.settings import build_engine, tts_settings
from tests.support.ports import free_port
from tests.support.servers.tts_standins import OpenAISpeechStandIn, speak_with
from tests.support.sinks import TimedSink

SENTENCE = "Good evening, and welcome to the late show."


@pytest.fixture(scope="module")
def speak(piper):
    return speak_with(piper)


def openai_engine(url, **kw):
    kw.setdefault("timeouts", Timeouts(first_audio_s=1.0, stall_s=1.0))
    return OpenAISpeechEngine(url + "/v1", model="tts-1", voice="nova", **kw)


def test_openai_speech_streams_pcm_chunks_as_they_arrive(speak, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    standin = OpenAISpeechStandIn(speak, chunk_ms=100, chunk_delay_s=0.05)
    with standin.serve() as url:
        engine = openai_engine(url, speed=1.1)
        arrivals, chunks = [], []
        for chunk in engine.stream(SENTENCE):
            arrivals.append(time.monotonic())
            chunks.append(chunk)
    body = standin.requests[0]["body"]
    assert body == {"model": "tts-1", "input": SENTENCE, "voice": "nova", "response_format": "pcm",
                    "speed": 1.1}
    assert standin.requests[0]["headers"]["Authorization"] == "Bearer sk-test-secret-123"
    assert {c.rate for c in chunks} == {24_000} and {c.engine for c in chunks} == {"openai_speech"}
    assert not any(c.whole for c in chunks)
    # chunks are handed out as the server sends them, not after the whole answer
    assert len(chunks) > 10
    assert arrivals[-1] - arrivals[0] > 0.05 * (len(chunks) - 3)
    got = np.concatenate([c.pcm for c in chunks])
    sent = np.frombuffer(bytes(standin.audio_sent[0]), "<i2").astype(np.float32) / 32768
    assert np.array_equal(got, sent) and len(got) > 24_000


def test_openai_speech_reads_the_rate_from_a_streamed_wav(speak):
    standin = OpenAISpeechStandIn(speak, rate=22_050)
    with standin.serve() as url:
        out = openai_engine(url, response_format="wav").synthesize(SENTENCE)
    assert standin.requests[0]["body"]["response_format"] == "wav"
    assert out.rate == 22_050 and len(out.pcm) * 2 == len(standin.audio_sent[0]) > 22_050 * 2


def test_openai_speech_errors_name_the_server_never_the_key(speak, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-456")
    standin = OpenAISpeechStandIn(speak, behaviours=[("status", 401)])
    with standin.serve() as url, pytest.raises(TTSError) as err:
        openai_engine(url).synthesize("Hello.")
    message = str(err.value)
    assert "openai_speech" in message and "HTTP 401" in message and "/v1/audio/speech" in message
    assert "sk-test-secret-456" not in message
    with pytest.raises(TTSError, match="cannot connect"):
        openai_engine(f"http://127.0.0.1:{free_port()}").synthesize("Hello.")


def speak_line(chain, text, line_id=1):
    sink = TimedSink()
    stage = SpeechStage(chain, sink)
    try:
        t0 = time.monotonic()
        report = asyncio.run(stage.say(text, line_id=line_id))
    finally:
        stage.close()
    return report, sink, t0


@pytest.mark.parametrize("behaviour", [("slow_first", 30), ("stall_after", 3), ("die_after", 3)])
def test_a_slow_stalled_or_dying_server_falls_back_to_piper(speak, piper, behaviour, caplog):
    standin = OpenAISpeechStandIn(speak, behaviours=[behaviour])
    with standin.serve() as url:
        chain = FallbackChain([openai_engine(url, timeouts=Timeouts(first_audio_s=0.8, stall_s=0.8)),
                               piper])
        with caplog.at_level(logging.WARNING, logger="broadcaster.tts.fallback"):
            report, sink, t0 = speak_line(chain, "First line here. Second line there.")
    assert report.engines == ["piper", "piper"] and report.failed == 0
    captions = [c for _, _, c, _ in sink.items]
    assert captions[-1] == "Second line there." and "First line here." in captions
    # each sentence is heard whole from Piper (after the remote chunks that made it on air)
    last_push = {caption: pcm for _, pcm, caption, _ in sink.items}
    assert all(len(pcm) > 48_000 * 0.5 for pcm in last_push.values())   # nothing after Piper's
    if behaviour[0] == "slow_first":
        assert len(sink.items) == 2   # nothing from the remote server reached the sink
        assert sink.items[0][0] - t0 < 0.8 + 1.5, "Piper must speak right after the timeout"
    else:
        assert len(sink.items) > 2    # the remote chunks went on air before the break
    warnings = [r for r in caplog.records if "falling back to piper" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]   # once per outage
    assert len(standin.requests) == 1   # the failed server is left out for the next sentence


def test_the_preferred_engine_comes_back_when_it_answers_again(speak, piper, caplog):
    standin = OpenAISpeechStandIn(speak, behaviours=[("status", 503), ("ok",)])
    now = [0.0]
    with standin.serve() as url:
        chain = FallbackChain([openai_engine(url), piper], retry_after_s=10, clock=lambda: now[0])
        with caplog.at_level(logging.INFO, logger="broadcaster.tts.fallback"):
            assert chain.synthesize("One.").engine == "piper"
            now[0] = 5.0
            assert chain.synthesize("Two.").engine == "piper"      # still left out
            now[0] = 11.0
            assert chain.synthesize("Three.").engine == "openai_speech"
            assert chain.synthesize("Four.").engine == "openai_speech"
    assert [r["body"]["input"] for r in standin.requests] == ["One.", "Three.", "Four."]
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_remote_bytes_are_counted_per_engine_on_the_tts_link(speak):
    standin = OpenAISpeechStandIn(speak)
    metrics = Metrics(process_metrics=False)
    with standin.serve() as url:
        settings = tts_settings({"engines": [{"engine": "openai_speech", "url": url + "/v1"}]},
                                "scene.yaml")
        chain = build_engine(settings, count_bytes=metrics.tts_bytes)
        out = chain.synthesize(SENTENCE)
    assert out.engine == "openai_speech"
    text = metrics.render_metrics().decode()
    down = len(standin.audio_sent[0])
    assert f'broadcaster_tts_engine_bytes_total{{direction="down",engine="openai_speech"}} {float(down)}' in text
    assert f'broadcaster_link_bytes_total{{direction="down",link="tts_download"}} {float(down)}' in text
    assert 'broadcaster_tts_engine_bytes_total{direction="up",engine="openai_speech"}' in text


def test_remote_engine_settings_name_the_key_at_fault():
    base = {"engine": "openai_speech", "url": "http://gpu:8880/v1"}
    settings = tts_settings({"engines": [base, "piper"], "first_audio_timeout_s": 1.5,
                             "retry_after_s": 20}, "s.yaml")
    spec = dict(settings.engines[0].options)
    assert spec["first_audio_timeout_s"] == 1.5 and settings.retry_after_s == 20
    for bad, key in (({"url": "gpu:8880"}, "url"), ({"response_format": "mp3"}, "response_format"),
                     ({"speed": 9}, "speed"), ({"nope": 1}, "nope")):
        with pytest.raises(ConfigError) as err:
            tts_settings({"engines": [{**base, **bad}]}, "s.yaml")
        assert "s.yaml" in str(err.value) and f"tts.engines[0].{key}" in str(err.value)
    with pytest.raises(ConfigError, match="tts.engines\\[0\\].url"):
        tts_settings({"engines": [{"engine": "openai_speech"}]}, "s.yaml")
    assert build_engine(settings).retry_after_s == 20


def test_the_remote_benchmark_runs_against_its_local_stand_in():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "tools" / "bench_speech.py"), "--engine",
                           "openai_speech", "--runs", "2", "--delay", "0.05"],
                          capture_output=True, text=True, timeout=120, cwd=root, check=False)
    assert done.returncode == 0, done.stderr
    for line in ("text in -> first speech sample ready", "baseline", "real-time factor",
                 "first audio byte written -> first sample ready"):
        assert "openai_speech: " in done.stdout and line in done.stdout, done.stdout


def test_an_interrupt_closes_the_stream_and_nothing_more_is_pushed(speak):
    standin = OpenAISpeechStandIn(speak, chunk_ms=50, chunk_delay_s=0.05)
    with standin.serve() as url:
        sink = TimedSink()
        stage = SpeechStage(openai_engine(url), sink)

        async def speak_then_interrupt():
            line = asyncio.create_task(stage.say(SENTENCE, line_id=5))
            while not sink.items:
                await asyncio.sleep(0.01)
            stage.interrupt()
            report = await line
            await asyncio.sleep(0.4)
            return report
        try:
            report = asyncio.run(speak_then_interrupt())
            pushed = len(sink.items)
            time.sleep(0.3)
        finally:
            stage.close()
    assert report.interrupted and sink.cuts == 1
    assert len(sink.items) == pushed and pushed < 5
    assert standin.aborted == 1     # the download stopped, not just the playback
