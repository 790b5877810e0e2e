"""The computed bandwidth table, and its container model against a real PyAV mux."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from broadcaster.service.bandwidth import (
    Inputs,
    bandwidth_main,
    compute,
    video_push_kbps,
)

CONFIG = {"video": {"bitrate_kbps": 1500, "fps": 25}, "output": {"url": "rtmp://h/live/k"},
          "asr": {"opus_bitrate_kbps": 16}, "llm": {"tokens_per_second": 50},
          "tts": {"engines": [{"engine": "edge", "voice": "en-US-AriaNeural"}]}}


def test_three_deployments_differ_only_in_remote_links():
    table = compute(Inputs.from_config(CONFIG))
    local, asr_llm, remote = (table[d] for d in ("all local", "ASR+LLM remote", "all remote"))
    assert local[("video_push", "up")] == asr_llm[("video_push", "up")] == \
        remote[("video_push", "up")]
    assert 1628 < local[("video_push", "up")] < 1650  # 1500 + 128 + FLV tags
    assert all(v == 0 for k, v in local.items() if k[0] != "video_push")
    assert asr_llm[("asr_uplink", "up")] == pytest.approx(16 + 50 * 6 * 8 / 1000)
    assert asr_llm[("llm", "down")] == pytest.approx(50 * 230 * 8 / 1000)
    assert asr_llm[("tts_download", "down")] == 0
    assert remote[("tts_download", "down")] == pytest.approx(48 * 1.04)


def test_a_streamed_pcm_voice_server_sets_the_remote_tts_download():
    fish = {**CONFIG, "tts": {"engines": [{"engine": "fish_speech", "url": "http://gpu:8080"}, "piper"]}}
    remote = compute(Inputs.from_config(fish))["all remote"]
    assert remote[("tts_download", "down")] == pytest.approx(44.1 * 16 * 1.01)
    own_rate = {**CONFIG, "tts": {"engines": [{"engine": "openai_speech", "url": "http://x/v1",
                                               "sample_rate": 16000}]}}
    assert compute(Inputs.from_config(own_rate))["all remote"][("tts_download", "down")] == \
        pytest.approx(16 * 16 * 1.01)
    out = io.StringIO()
    assert bandwidth_main(fish, None, out=out) == 0
    assert "fish_speech streams 16-bit PCM at 44100 Hz" in out.getvalue()


def test_table_printed_and_bad_value_named(capsys):
    assert bandwidth_main(CONFIG, None) == 0
    out = capsys.readouterr().out
    assert "ASR+LLM remote" in out and "all remote" in out and "measured" not in out
    assert "raw 16 kHz PCM would need 256 kbit/s" in out
    assert "/live/k" not in out
    assert bandwidth_main({"llm": {"tokens_per_second": "fast"}}, None) == 2
    assert "config key llm.tokens_per_second: expected a positive number, got 'fast'" in \
        capsys.readouterr().err


def _mux_bytes_per_s(fmt: str, seconds: int, fps: int, kbps: int) -> float:
    """Encode noise (so the encoder spends its bitrate) and return container bytes/s."""
    buf = io.BytesIO()
    out = av.open(buf, "w", format=fmt)
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
    video.bit_rate = kbps * 1000
    video.options = {"preset": "ultrafast", "tune": "zerolatency", "maxrate": str(kbps * 1000),
                     "bufsize": str(kbps * 500), "g": str(2 * fps)}
    audio = out.add_stream("aac", rate=48000)
    audio.layout, audio.bit_rate = "stereo", 128000
    rng = np.random.default_rng(7)
    payload, samples = 0, 0
    for i in range(seconds * fps):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), np.uint8), "rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            payload += packet.size
            out.mux(packet)
        while samples < (i + 1) * 48000 // fps:
            pcm = (rng.standard_normal((1, 2048)) * 0.1).astype(np.float32)
            aframe = av.AudioFrame.from_ndarray(pcm, format="flt", layout="stereo")
            aframe.sample_rate, aframe.pts = 48000, samples
            samples += 1024
            for packet in audio.encode(aframe):
                payload += packet.size
                out.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            payload += packet.size
            out.mux(packet)
    out.close()
    return len(buf.getvalue()) / seconds, payload / seconds


@pytest.mark.parametrize("fmt,url", [("flv", "rtmp://h/app/k"), ("mpegts", "srt://h:9000")])
def test_container_model_matches_a_real_mux(fmt, url):
    total_bps, payload_bps = _mux_bytes_per_s(fmt, seconds=4, fps=20, kbps=800)
    # Feed the model the payload rates the encoders actually produced.
    video_kbps = payload_bps * 8 / 1000 - 128
    inputs = Inputs.from_config({"video": {"bitrate_kbps": video_kbps, "fps": 20},
                                 "output": {"url": url}})
    assert video_push_kbps(inputs) == pytest.approx(total_bps * 8 / 1000, rel=0.015)
