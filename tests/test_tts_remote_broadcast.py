"""A broadcast speaking through a remote TTS server: the recording, decoded back, carries the
stand-in server's own audio (sample for sample, up to gain and AAC), the mouth moves with it,
captions show it, and its bytes are counted per engine on /metrics."""

import time

import numpy as np
import pytest

from broadcaster.tts import PiperEngine
from broadcaster.tts.levels import resample_to_broadcast
from tests.support.anchor_av import check_lips_and_captions
from tests.support.broadcaster_proc import (
    metrics,
    sample,
    start_broadcaster,
    wait_on_air,
    wait_turns,
    write_config,
)
from tests.support.http import http_json
from tests.support.media import decode_frames_and_audio as decode
from tests.support.ports import free_port
from tests.support.servers.tts_standins import OpenAISpeechStandIn, speak_with

LINE = "Hello everyone, and welcome to the show. We are live, and I am talking to you now."


@pytest.fixture(scope="module")
def slow_voice():
    """A voice unlike the broadcaster's own Piper (slower), so the fallback cannot pass for it."""
    engine = PiperEngine(length_scale=1.4)
    yield speak_with(engine)
    engine.close()


def best_match(haystack: np.ndarray, needle: np.ndarray) -> float:
    """Highest normalised cross-correlation of needle anywhere in haystack (FFT)."""
    n = len(haystack) + len(needle)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    power = np.concatenate([[0.0], np.cumsum(haystack ** 2)])
    energy = np.sqrt(np.maximum(power[len(needle):] - power[:-len(needle)], 0.0))
    corr = corr[:len(energy)] / (energy * np.linalg.norm(needle) + 1e-9)
    return float(corr.max())


def test_a_broadcast_carries_the_remote_voice_lip_synced_and_captioned(tmp_path, slow_voice):
    standin = OpenAISpeechStandIn(slow_voice, chunk_ms=100, chunk_delay_s=0.02)
    port = free_port()
    out = tmp_path / "remote.flv"
    with standin.serve() as url:
        config = write_config(tmp_path / "config.yaml", tts={"engines": [
            {"engine": "openai_speech", "url": url + "/v1", "voice": "nova"}, "piper"]})
        proc = start_broadcaster("run", "-c", str(config), "--output", str(out),
                                 "--control-port", str(port), "--duration", "16")
        try:
            wait_on_air(port)
            time.sleep(1.0)
            assert http_json("POST", f"http://127.0.0.1:{port}/say", {"text": LINE})[0] == 202
            wait_turns(port, lambda t: t and t[0]["spoken"] and t[0]["ms"]["total_to_muxed"] is not None)
            time.sleep(0.5)
            families = metrics(port)
        finally:
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert " ".join(r["body"]["input"] for r in standin.requests) == LINE
    assert {r["body"]["voice"] for r in standin.requests} == {"nova"}
    sent = sum(len(a) for a in standin.audio_sent)
    assert sample(families, "broadcaster_tts_engine_bytes", "broadcaster_tts_engine_bytes_total",
                  engine="openai_speech", direction="down") == sent
    assert sample(families, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                  link="tts_download", direction="down") == sent
    frames, audio = decode(out)
    check_lips_and_captions(frames, audio, fps=20)
    on_air = np.concatenate([a[1] for a in audio]).astype(np.float64)
    for answer in standin.audio_sent:
        pcm = np.frombuffer(bytes(answer), "<i2").astype(np.float32) / 32768
        needle = resample_to_broadcast(pcm, 24_000).astype(np.float64)
        # the stand-in's audio scores ~0.7-0.8 (streamed gain settles over the sentence, AAC);
        # Piper speaking the same text, as a fallback would, scores below 0.25
        assert best_match(on_air, needle) > 0.5, "the stand-in's audio is what went on air"
