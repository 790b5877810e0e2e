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
    # the slot the cut was heard in: the next one pulled after cut(), counted from 0
    assert mixer.slots_pulled == 5 and mixer.cut_slot == 4


def test_mixer_bed_loops_and_ducks_under_speech():
    bed = np.full((1000, 2), 0.5, np.float32)
    mixer = AudioMixer(48000, bed=bed, bed_volume=0.4, duck=0.5)
    quiet = mixer.pull(2500).stereo
    assert quiet.shape == (2500, 2) and quiet[-1, 0] == pytest.approx(0.2)
    mixer.push(np.zeros(5000, np.float32), "x", 1)
    mixer.pull(2400)
    ducked = mixer.pull(2400).stereo
    assert ducked[-1, 0] == pytest.approx(0.1)


def test_mixer_start_gate_holds_a_line_after_silence_only_and_at_most_its_cap():
    mixer = AudioMixer(48000)
    tone = (0.5 * np.sin(np.arange(48000) * 2 * np.pi * 220 / 48000)).astype(np.float32)
    asked, ready = [], [False, False, True]
    mixer.set_start_gate(lambda pos: asked.append(pos) or ready[len(asked) - 1], max_hold_s=0.3)
    mixer.pull(2400)
    assert asked == []                              # nothing queued: nothing to ask
    mixer.push(tone[:4800], "first", 1)
    mixer.push(tone[4800:9600], "second", 2)        # queued behind: continues, never asked
    held = [mixer.pull(2400) for _ in range(2)]
    assert all(c.speech_pos is None and not c.speech.any() and not c.started for c in held)
    chunk = mixer.pull(2400)                        # the gate said yes: the line, from its start
    assert asked == [0, 0, 0] and chunk.started == (1,) and chunk.speech_pos == 0
    assert np.array_equal(chunk.speech, tone[:2400])
    played = np.concatenate([chunk.speech] + [mixer.pull(2400).speech for _ in range(3)])
    assert np.array_equal(played, tone[:9600]) and asked == [0, 0, 0]
    assert mixer.start_holds == [4800]
    # a gate that never says yes holds a line for its cap, then the line plays anyway
    mixer.set_start_gate(lambda pos: asked.append(pos) or False, max_hold_s=0.1)
    mixer.push(tone[:4800], "third", 3)
    chunks = [mixer.pull(2400) for _ in range(4)]
    assert [c.speech_pos for c in chunks] == [None, None, 9600, 9600 + 2400]
    assert mixer.start_holds[-1] == 4800 and asked[3:] == [9600, 9600]     # not asked past the cap
    # after a cut the next line is asked again
    mixer.set_start_gate(lambda pos: asked.append(pos) or True)
    mixer.push(tone[:9600], "fourth", 4)
    mixer.pull(2400)
    mixer.cut()
    mixer.push(tone[:2400], "fifth", 5)
    assert mixer.pull(2400).started == (5,) and asked[-2:] == [14400, 24000]


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


def test_yuv_mix_is_a_crossfade_of_what_each_patch_shows():
    from broadcaster.render.yuv import mix, same_alpha
    rng = np.random.default_rng(7)
    loop = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    loop[..., 3] = 255
    clip = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    clip[..., 3] = 0
    clip[8:32, 10:50, 3] = 255                  # a narrower clip: transparent at the sides
    a, b = YuvaPatch.from_rgba(loop), YuvaPatch.from_rgba(clip)
    background = rgb_to_yuv420(np.full((40, 60, 3), 200, np.uint8))
    shown = []
    for patch in (a, b):
        frame = background.copy()
        blend(frame, 60, 40, patch, 0, 0)
        shown.append(frame.astype(float))
    for t in (0.25, 0.5, 0.75):
        frame = background.copy()
        blend(frame, 60, 40, mix(a, b, t), 0, 0)
        want = (1 - t) * shown[0] + t * shown[1]
        assert np.abs(frame - want).max() <= 2, t        # no dark fringe where the clip is transparent
    # frames of one clip share their alpha and mix plane by plane; the ends are the patches
    c = same_alpha(rng.integers(0, 256, (40, 60, 4), dtype=np.uint8), a)
    assert mix(a, c, 0.5).alpha_y is a.alpha_y
    for t, want in ((0.0, a), (1.0, c)):
        got = mix(a, c, t)
        assert all(np.array_equal(getattr(got, k), getattr(want, k)) for k in ("y", "u", "v"))
