"""Unit tests of the pure pieces: media clock, pacer, backoff, mixer, YUV, slot queue."""

import random

import numpy as np
import pytest

from broadcaster.backoff import Backoff
from broadcaster.media.clock import FrameClock, Pacer
from broadcaster.media.mixer import AudioMixer
from broadcaster.media.slotqueue import MediaSlot, SlotQueue
from broadcaster.redact import redact, redact_url, register_secret
from broadcaster.render.yuv import YuvaPatch, blend, rgb_to_yuv420, yuv420_to_rgb


@pytest.mark.parametrize("fps", [20, 25, 29, 30, 60, 7])
def test_frame_clock_samples_add_up_exactly(fps):
    clock = FrameClock(fps, 48000)
    n = fps * 3600  # an hour
    total = sum(clock.samples_in(i) for i in range(0, n))
    assert total == 48000 * 3600
    assert max(clock.samples_in(i) for i in range(fps)) - min(clock.samples_in(i) for i in range(fps)) <= 1


def test_pacer_waits_renders_repeats_and_slides():
    pacer = Pacer(FrameClock(20), max_lag_s=0.5, now=100.0)
    assert pacer.plan(1, 100.0) == (pytest.approx(0.05), True)
    assert pacer.plan(2, 100.1 + 0.01) == (0.0, True)            # a little late: still render
    assert pacer.plan(3, 100.15 + 0.06) == (0.0, False)          # over a frame late: repeat
    wait, render = pacer.plan(4, 102.0)                          # stalled 1.8 s: slide
    assert (wait, render) == (0.0, True) and pacer.slid_s == pytest.approx(1.8)
    assert pacer.plan(5, 102.0) == (pytest.approx(0.05), True)


def test_backoff_grows_by_factor_with_jitter_and_caps():
    b = Backoff(2.0, 1.5, 10.0, 0.2, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    for i, d in enumerate(delays[:4]):
        base = 2.0 * 1.5 ** i
        assert base * 0.8 <= d <= base * 1.2
    assert all(d <= 10.0 for d in delays) and delays[-1] >= 8.0
    b.reset()
    assert 1.6 <= b.next_delay() <= 2.4


def test_mixer_plays_speech_then_silence_with_captions_and_cut_has_no_click():
    mixer = AudioMixer(48000)
    tone = (0.5 * np.sin(np.arange(48000) * 2 * np.pi * 220 / 48000)).astype(np.float32)
    started, ended = [], []
    assert mixer.push(tone[:4800], "hello", 1)
    chunk = mixer.pull(2400)
    started += chunk.started
    ended += chunk.ended
    assert chunk.caption == "hello" and np.allclose(chunk.speech, tone[:2400])
    assert np.allclose(chunk.stereo[:, 0], chunk.stereo[:, 1])
    chunk = mixer.pull(4800)
    started += chunk.started
    ended += chunk.ended
    assert np.allclose(chunk.speech[:2400], tone[2400:4800]) and not chunk.speech[2400:].any()
    assert started == [1] and ended == [1]
    assert mixer.pull(100).caption is None
    # cut mid-line: a short fade, then silence; queue dropped
    mixer.push(tone, "long line", 2)
    mixer.push(tone, "next line", 3)
    mixer.pull(1000)
    mixer.cut(fade_ms=5)
    after = mixer.pull(2400).speech
    fade = after[:240]
    assert np.abs(np.diff(np.concatenate([[tone[999]], fade]))).max() < 0.05   # no jump
    assert not after[240:].any() and mixer.idle()


def test_mixer_bed_loops_and_ducks_under_speech():
    bed = np.full((1000, 2), 0.5, np.float32)
    mixer = AudioMixer(48000, bed=bed, bed_volume=0.4, duck=0.5)
    quiet = mixer.pull(2500).stereo
    assert quiet.shape == (2500, 2) and quiet[-1, 0] == pytest.approx(0.2)
    mixer.push(np.zeros(5000, np.float32), "x", 1)
    mixer.pull(2400)
    ducked = mixer.pull(2400).stereo
    assert ducked[-1, 0] == pytest.approx(0.1)


def test_mixer_refuses_beyond_its_bound():
    mixer = AudioMixer(48000, max_queued_s=1.0)
    assert mixer.push(np.zeros(40000, np.float32), None, 1)
    assert not mixer.push(np.zeros(10000, np.float32), None, 2)


def test_yuv_roundtrip_and_blend():
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), 2, 0), 2, 1)
    back = yuv420_to_rgb(rgb_to_yuv420(rgb), 60, 40)
    assert np.abs(back.astype(int) - rgb.astype(int)).mean() < 3
    frame = rgb_to_yuv420(np.zeros((40, 60, 3), np.uint8))
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    rgba[:, 5:, 3] = 0          # right half transparent
    blend(frame, 60, 40, YuvaPatch.from_rgba(rgba), 10, 20)
    out = yuv420_to_rgb(frame, 60, 40)
    assert out[22, 12, 0] > 200 and out[22, 12, 1] < 40
    assert out[22, 17].max() < 10 and out[5, 5].max() < 10


def test_slot_queue_drops_video_first_then_whole_slots():
    q = SlotQueue(soft_limit=2, hard_limit=3)
    audio = np.zeros((10, 2), np.float32)
    video = np.zeros((6, 4), np.uint8)
    results = [q.put(MediaSlot(i, video.copy(), audio)) for i in range(5)]
    assert [r[0] for r in results] == [False, False, True, True, True]
    assert results[3][1] is not None and results[3][1].index == 0
    assert [q.get(0).index for _ in range(3)] == [2, 3, 4]


def test_redaction_of_urls_and_registered_secrets():
    register_secret("hunter2-secret")
    assert redact("key=hunter2-secret!") == "key=***!"
    assert redact_url("rtmp://a.rtmp.youtube.com/live2/abcd-efgh") == "rtmp://a.rtmp.youtube.com/live2/***"
    assert "pass1234567" not in redact_url("srt://h:9000?passphrase=pass1234567&latency=200")
    assert redact_url("rtmps://user:pw@host/app/key") == "rtmps://***@host/app/***"
    assert redact_url("recordings/x.flv") == "recordings/x.flv"


def test_scene_scaled_to_another_canvas_scales_its_boxes_and_overlay():
    from pathlib import Path

    from broadcaster.config import load_config
    from broadcaster.dialogue.live import validate_live
    from broadcaster.scene import load_scene
    root = Path(__file__).resolve().parent.parent
    scene = load_scene(root / "scenes" / "default.yaml")
    for size in ((640, 360), (1280, 720), (320, 180)):
        small = scene.with_canvas(*size)
        assert small.anchor.x + small.anchor.width <= size[0]
        assert small.features["chat_overlay"]["y"] + small.features["chat_overlay"]["height"] <= size[1]
        validate_live(load_config(root / "config.yaml"), small)
