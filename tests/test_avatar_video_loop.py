"""The video-loop Wav2Lip anchor on a synthetic presenter clip (the drawn face sliding sideways,
encoded with PyAV) and a random-weight model of Wav2Lip's real architecture on ONNX Runtime.

A whole broadcast runs in-process to a file: each slot's picture, as the compositor handed it
to the encoder (Tick.frame), is compared with the clip's own frame for that slot, and the file
is decoded back and compared again, with a tolerance for H.264.
"""
import json
import threading
import time

import numpy as np
import pytest
import yaml

from broadcaster.avatar.faceboxes import cache_file, clip_face_boxes, fill_missing, smooth
from broadcaster.avatar.mouth_paste import mouth_region
from broadcaster.avatar.video_anchor import VideoLoopAnchor, load_presenter
from broadcaster.avatar.videoclip import ClipFileError, pingpong, scan_clip, slot_frames
from broadcaster.avatar.wav2lip import find_face
from broadcaster.config import load_config
from broadcaster.errors import ConfigError
from broadcaster.media.pipeline import Broadcast
from broadcaster.render.yuv import YuvaPatch, yuv420_to_rgb
from broadcaster.scene import load_scene
from tests.support.data.speech import broadcast_speech
from tests.support.presenter import decode_clip, presenter_frames, random_wav2lip, wait_for_mouth, write_clip

FPS = 20
SPF = 48_000 // FPS
W, H = 320, 240
N_CLIP = 24


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch", reason="torch exports the random-weight Wav2Lip model")
    return random_wav2lip(tmp_path_factory.mktemp("w2l"))


@pytest.fixture()
def clip(tmp_path):
    frames, shifts = presenter_frames(W, H, N_CLIP)
    return write_clip(tmp_path / "presenter.mp4", frames, FPS), shifts


@pytest.fixture(scope="module")
def speech(piper):
    return broadcast_speech(piper, "Good evening, here is the news.", 0, SPF * 4)


def test_pingpong_never_jumps():
    seq = [pingpong(i, 5) for i in range(20)]
    assert seq[:10] == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    assert all(abs(a - b) == 1 for a, b in zip(seq, seq[1:]))
    assert [pingpong(i, 1) for i in range(3)] == [0, 0, 0]


def test_clip_is_kept_bit_for_bit_and_boxes_follow_the_face(clip, model):
    path, shifts = clip
    anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS)
    try:
        decoded = decode_clip(path)
        assert len(anchor.patches) == len(decoded) == N_CLIP
        # the clip converted once, exactly as the compositor converts a picture, and the face
        # the worker reads is the decoded clip's own pixels
        for patch, ((x0, y0, x1, y1), crop), theirs in zip(anchor.patches, anchor.face_crops, decoded):
            want = YuvaPatch.from_rgba(np.dstack([theirs, np.full((H, W), 255, np.uint8)]))
            assert all(np.array_equal(getattr(patch, k), getattr(want, k)) for k in ("y", "u", "v"))
            assert patch.opaque and np.array_equal(crop, theirs[y0:y1, x0:x1])
        centres = np.array([(b[0] + b[2]) / 2 for b in anchor.boxes])
        # the box moves with the face, smoothly: within 3 px of the drawn shift all along
        assert np.abs((centres - centres[0]) - (np.array(shifts) - shifts[0])).max() <= 3
        assert np.abs(np.diff(centres)).max() <= 4
        # silence: the clip's own frames, the same pictures, in ping-pong order
        for n in range(3 * N_CLIP):
            out = anchor.render_slot(n, np.zeros(SPF, np.float32), None)
            assert out is anchor.patches[pingpong(n, N_CLIP)]
    finally:
        anchor.close()
    cached = json.loads(cache_file(path).read_text())
    assert cached["frames"] == N_CLIP and len(cached["boxes"]) == N_CLIP


def test_the_clip_is_held_once_and_loading_peaks_near_it(clip, model):
    """What the anchor keeps per clip frame: its yuv420p patch (1.5 bytes a pixel) and the RGB
    face crop the worker reads, not a full-frame RGBA copy as well (4 bytes a pixel more).
    While the clip loads it is converted frame by frame, so the peak stays near what is held
    (not every frame in RGB and RGBA besides)."""
    import gc
    import tracemalloc
    path, _ = clip
    VideoLoopAnchor(W, H, video=path, model=model, fps=FPS).close()     # face boxes cached
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    anchor.close()
    # the peak while the clip loads (the anchor's own loader; the model's load is another
    # matter, and peaks on its own)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        presenter = load_presenter(path, FPS, W, H, None, anchor._pad)
        loaded, peak = (m - before for m in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    assert len(presenter.patches) == N_CLIP
    patch_bytes = W * H * 3 // 2
    crop_bytes = sum(crop.nbytes for _, crop in anchor.face_crops)
    per_frame = held / N_CLIP
    print(f"clip held: {per_frame / 1024:.0f} KiB per frame at {W}x{H} (yuv420p "
          f"{patch_bytes / 1024:.0f} KiB, face crop {crop_bytes / N_CLIP / 1024:.0f} KiB); "
          f"the clip's peak while loading {peak / 2**20:.2f} MiB, held {loaded / 2**20:.2f} MiB")
    assert per_frame < patch_bytes + crop_bytes / N_CLIP + W * H      # no RGBA frame (4 B/px)
    # the peak: what is held plus one frame in flight (RGB, RGBA and the conversion's float32
    # temporaries, ~30 bytes a pixel), not the whole clip in RGB and RGBA (7 bytes a pixel
    # a frame, 24 frames) besides
    assert peak - loaded < 40 * W * H, f"loading peaked {peak - loaded} bytes over what is held"


def test_a_source_frame_shown_over_two_slots_is_one_patch(tmp_path, model):
    frames, _ = presenter_frames(W, H, 6)
    path = write_clip(tmp_path / "half_rate.mp4", frames, FPS // 2)
    anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS, face_box=[100, 60, 220, 200])
    anchor.close()
    # 6 frames at 10 fps fill the 11 slots up to 0.5 s at 20: the first one, each later one two
    assert len(anchor.patches) == 11 and len(anchor.face_crops) == 11
    assert all(anchor.patches[2 * i + 1] is anchor.patches[2 * i + 2] for i in range(5))
    assert len({id(p) for p in anchor.patches}) == 6


def test_face_boxes_cache_then_box_file_then_scene_box(clip):
    path, _ = clip
    layout = scan_clip(path, FPS, W, H)
    assert (layout.slots, layout.source_size) == (N_CLIP, (W, H))
    calls = []

    def counting(frame):
        calls.append(1)
        return find_face(frame)

    def boxes_of(**kw):
        return clip_face_boxes(path, N_CLIP, W, H, lambda slots: slot_frames(path, FPS, slots), counting, **kw)

    boxes, origin = boxes_of()
    assert origin == "detection" and len(calls) == N_CLIP // 2 + 1     # every other frame, and the last
    calls.clear()
    again, origin = boxes_of()
    assert (again, origin, calls) == (boxes, "presenter.faces.json", [])
    path.touch()   # the clip changed: the cache no longer belongs to it
    path.write_bytes(path.read_bytes())
    boxes_of()
    assert calls
    (path.parent / "presenter.boxes.json").write_text(json.dumps({"boxes": [[10, 20, 110, 140]]}))
    user, origin = boxes_of()
    assert origin == "presenter.boxes.json" and user == [(10, 20, 110, 140)] * N_CLIP
    scene_box, origin = boxes_of(face_box=[1, 2, 100, 120])
    assert scene_box == [(1, 2, 100, 120)] * N_CLIP
    (path.parent / "presenter.boxes.json").write_text(json.dumps({"boxes": [[10, 20, 500, 140]]}))
    with pytest.raises(ValueError, match=r"presenter.boxes.json: boxes\[0\].*inside the clip's 320x240"):
        boxes_of()


def test_box_smoothing_and_gaps():
    filled = fill_missing([None, (0, 0, 10, 10), None, (20, 0, 30, 10), None])
    assert filled == [(0, 0, 10, 10), (0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10), (20, 0, 30, 10)]
    jitter = [(100 + (4 if i % 2 else -4), 0, 200, 100) for i in range(10)]
    assert max(abs(b[0] - 100) for b in smooth(jitter, 5)[2:-2]) <= 1
    with pytest.raises(ValueError, match="no face"):
        fill_missing([None, None])


def test_clip_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ClipFileError, match="file not found"):
        scan_clip(tmp_path / "none.mp4", FPS, W, H)
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(ClipFileError, match="not a readable video"):
        scan_clip(tmp_path / "junk.mp4", FPS, W, H)
    long_frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    write_clip(tmp_path / "long.mp4", long_frames, 1)
    monkeypatch.setattr("broadcaster.avatar.videoclip.MAX_CLIP_SECONDS", 0.5)
    with pytest.raises(ClipFileError, match="longer than 0 s"):
        scan_clip(tmp_path / "long.mp4", FPS, W, H)
    monkeypatch.setattr("broadcaster.avatar.videoclip.MAX_CLIP_SECONDS", 60.0)
    monkeypatch.setattr("broadcaster.avatar.videoclip.MAX_CLIP_BYTES", W * H * 4 * 10)
    with pytest.raises(ClipFileError, match=r"needs \d+ MiB decoded at 320x240"):
        scan_clip(tmp_path / "long.mp4", FPS, W, H)


def _write_scene(tmp_path, model, video_line: str) -> tuple:
    scene = tmp_path / "scenes" / "presenter.yaml"
    scene.parent.mkdir()
    scene.write_text(f"""
name: presenter
canvas: {{width: {W}, height: {H}, fps: {FPS}}}
background: {{color: "#000000"}}
anchor:
  x: 0
  y: 0
  width: {W}
  height: {H}
  renderer: wav2lip
  model: {model}
  {video_line}
audio: {{bed: silence}}
""")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scenes_dir": str(scene.parent), "scene": "presenter",
                                      "output": {"url": str(tmp_path / "out.mkv")},
                                      "control": {"enabled": False}}))
    return config, scene


def test_scene_errors_name_the_key(tmp_path, model, monkeypatch):
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    _, scene = _write_scene(tmp_path, model, f"video: {tmp_path / 'junk.mp4'}")
    with pytest.raises(ConfigError, match=r"anchor.video.*junk.mp4 is not a readable video"):
        load_scene(scene)
    write_clip(tmp_path / "long.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3, 1)
    scene.write_text(scene.read_text().replace(str(tmp_path / "junk.mp4"), str(tmp_path / "long.mp4")))
    monkeypatch.setattr("broadcaster.avatar.videoclip.MAX_CLIP_SECONDS", 1.5)
    with pytest.raises(ConfigError, match=r"anchor.video.*long.mp4 is longer than 2 s"):
        load_scene(scene)
    scene.write_text(scene.read_text().replace("renderer: wav2lip", "renderer: puppet"))
    with pytest.raises(ConfigError, match=r"anchor.video.*needs renderer: wav2lip"):
        load_scene(scene)


def test_broadcast_shows_the_clip_in_silence_and_a_new_mouth_only_in_speech(tmp_path, clip, model, speech):
    path, _ = clip
    config_path, scene_path = _write_scene(tmp_path, model, f"video: {path}")
    config, scene = load_config(config_path), load_scene(scene_path)
    ticks = []
    broadcast = Broadcast(config, scene, duration_s=6.0, on_tick=ticks.append)
    anchor = broadcast.anchor
    assert isinstance(anchor, VideoLoopAnchor)
    spoke = threading.Event()

    def speak_when_a_second_is_on_air():
        while len(ticks) < FPS and not broadcast.finished:
            time.sleep(0.01)
        broadcast.mixer.push(speech, "news", 1)
        spoke.set()

    threading.Thread(target=speak_when_a_second_is_on_air, daemon=True).start()
    broadcast.start()
    broadcast.join()
    assert spoke.is_set()
    assert anchor.ahead._thread.is_alive() is False     # explicit shutdown with the broadcast

    clip_yuv = [patch.yuv420() for patch in anchor.patches]
    speaking, changed, late = [], [], []
    # a slot the media loop skipped to hold its cadence (rendered False: this machine was
    # busy) has no picture of its own; every other slot is checked
    shown = [tick for tick in ticks if tick.frame is not None]
    assert len(shown) > 0.8 * len(ticks)
    for tick in shown:
        idle = clip_yuv[anchor.loop_index(tick.index)]
        rms = float(np.sqrt(np.mean(tick.chunk.speech ** 2)))
        on_air = tick.chunk.speech_pos is not None and rms > 10 ** (-50 / 20)
        diff = np.abs(tick.frame[:H].astype(int) - idle[:H])
        x0, y0, x1, y1 = mouth_region(anchor.boxes[anchor.loop_index(tick.index)])
        outside = diff.copy()
        outside[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = 0
        assert outside.max() == 0, f"slot {tick.index}: only the mouth region may change"
        speaking.append(on_air)
        changed.append(diff[y0:y1, x0:x1].mean())
        late.append(tick.anchor_late)
        if not on_air or tick.anchor_late:
            assert np.array_equal(tick.frame, idle), f"slot {tick.index}: not the clip's own frame"
    speaking, changed, late = np.array(speaking), np.array(changed), np.array(late)
    assert speaking.sum() > FPS and (~speaking).sum() > FPS
    # a new mouth only while speech is on air; in silence the clip's frames exactly (above)
    assert changed[~speaking].max() == 0.0 and not late[~speaking].any()
    # while speaking: a regenerated mouth, or where the renderer was late the clip's frame
    # (counted); how many are late depends on this machine's load, so it is not asserted
    assert (changed[speaking] > 1.0).sum() >= 3
    assert late.sum() == anchor.late_frames
    # no picture is held: each slot's picture differs from the one before
    for a, b in zip(shown, shown[1:]):
        assert not np.array_equal(a.frame, b.frame), f"slot {b.index} repeats slot {a.index}"

    # decoded back: silent slots look like the clip's own frames (H.264 loss aside)
    decoded = decode_clip(tmp_path / "out.mkv")
    assert len(decoded) == len(ticks)
    by_index = dict(zip([t.index for t in shown], speaking))
    for tick, rgb in zip(ticks, decoded):
        if tick.index not in by_index or by_index[tick.index]:
            continue
        index = anchor.loop_index(tick.index)
        x0, y0, x1, y1 = anchor.boxes[index]
        got = rgb[y0:y1, x0:x1].astype(int)
        want = yuv420_to_rgb(clip_yuv[index], W, H)[y0:y1, x0:x1].astype(int)
        other = yuv420_to_rgb(clip_yuv[(index + N_CLIP // 2) % N_CLIP], W, H)[y0:y1, x0:x1].astype(int)
        err = np.abs(got - want).mean()
        assert err < 2.0 and err < 0.5 * np.abs(got - other).mean(), (tick.index, err)


def test_a_line_after_silence_starts_with_a_rendered_mouth(tmp_path, clip, model, speech):
    """The mixer would play a new line at the next slot, before one face can be rendered; it
    holds the line until the anchor's first mouth is ready, so a line's first audible slots
    show a regenerated mouth, not the clip's own (here for two lines, each after silence)."""
    path, _ = clip
    config_path, scene_path = _write_scene(tmp_path, model, f"video: {path}")
    ticks = []
    broadcast = Broadcast(load_config(config_path), load_scene(scene_path), duration_s=7.0,
                          on_tick=ticks.append)
    anchor = broadcast.anchor
    # the cap of the hold is generous here: whether the line waits for its mouth is what is
    # checked, not how fast this shared machine renders one
    broadcast.mixer.set_start_gate(broadcast.speech_may_start, max_hold_s=3.0)
    pushed = []

    def two_lines_after_silence():
        for line in (1, 2):
            while len(ticks) < FPS * (1 if line == 1 else 0) or not broadcast.mixer.idle():
                time.sleep(0.01)
            quiet_from = len(ticks)
            while len(ticks) < quiet_from + FPS // 2 and not broadcast.finished:
                time.sleep(0.01)
            broadcast.mixer.push(speech, f"line {line}", line)
            pushed.append(line)

    threading.Thread(target=two_lines_after_silence, daemon=True).start()
    broadcast.start()
    broadcast.join()
    assert pushed == [1, 2]
    starts = [i for i, tick in enumerate(ticks) if tick.chunk.started]
    assert len(starts) == 2
    print("line starts held", [f"{held / 48:.0f} ms" for held in broadcast.mixer.start_holds])
    for start in starts:
        audible = [t for t in ticks[start:start + 2 * FPS] if t.chunk.speech_pos is not None
                   and float(np.sqrt(np.mean(t.chunk.speech ** 2))) > 10 ** (-50 / 20)]
        # the line's first audible slot (the next, where the media loop skipped that one's
        # picture): without a head start the worker cannot make it, one face takes ~2 slots
        # here; later slots depend on this shared machine keeping pace, as in any line
        first = [t for t in audible[:2] if t.frame is not None][:1]
        assert first, f"line at slot {start}: no audible slot with a picture"
        for tick in first:
            index = anchor.loop_index(tick.index)
            x0, y0, x1, y1 = mouth_region(anchor.boxes[index])
            idle = anchor.patches[index].yuv420()
            changed = np.abs(tick.frame[:H].astype(int) - idle[:H])[y0:y1, x0:x1].mean()
            assert not tick.anchor_late and changed > 1.0, \
                f"line at slot {start}: slot {tick.index} shows the clip's own mouth"


def test_action_clip_by_name_from_the_control_endpoint(tmp_path, clip, model):
    """The real `broadcaster run`: POST /anchor/clip plays the named clip once, access rules
    apply to it like every route, and /metrics carries the late-frame counter."""
    from tests.support.broadcaster_proc import metrics, run_env, sample, start_broadcaster, wait_on_air
    from tests.support.http import http_json
    from tests.support.ports import free_port
    from tests.support.processes import stop

    from broadcaster.avatar.video_anchor import fade_slots
    path, _ = clip
    red, _ = presenter_frames(W, H, 10, travel=0, background=(220, 30, 30))
    write_clip(tmp_path / "wave.mp4", red, FPS)
    config_path, _ = _write_scene(tmp_path, model, f"video: {path}\n  clips: {{wave: {tmp_path / 'wave.mp4'}}}")
    port = free_port()
    cfg = yaml.safe_load(config_path.read_text())
    cfg["control"] = {"enabled": True, "port": port}
    config_path.write_text(yaml.safe_dump(cfg))
    proc = start_broadcaster("run", "-c", str(config_path), "--duration", "8", "--responder", "read-aloud",
                             env=run_env())
    try:
        wait_on_air(port, timeout=60)
        url = f"http://127.0.0.1:{port}/anchor/clip"
        assert http_json("POST", url, {"name": "nod"})[0] == 400
        status, body = http_json("POST", url, {"name": "wave"})
        assert (status, body) == (202, {"status": "queued", "clip": "wave"})
        status, body = http_json("POST", url, {"name": "wave"}, headers={"Origin": "http://evil.example"})
        assert (status, body["error"]) == (403, "bad_origin")
        families = metrics(port)
        assert sample(families, "broadcaster_anchor_late_frames", "broadcaster_anchor_late_frames_total") >= 0
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    decoded = decode_clip(tmp_path / "out.mkv")
    is_red = [f[:8, :8].mean(axis=(0, 1))[0] > 150 and f[:8, :8].mean(axis=(0, 1))[1] < 90 for f in decoded]
    marks = "".join("r" if r else "." for r in is_red)
    runs = marks.split(".")
    # played once, all of it: its middle, and the halves of the fades where it weighs more (a
    # slot the media loop skipped on a busy machine repeats the picture before it, so the run
    # may be a frame shorter or longer)
    fade = fade_slots(len(red), FPS)
    assert len([r for r in runs if r]) == 1 and len(red) - fade - 1 <= max(len(r) for r in runs) <= len(red) - fade + 1, marks
    # crossfaded, not cut: next to the run on either side a frame that is a blend of both
    start = marks.index("r")
    end = start + max(len(r) for r in runs)
    red_level = [f[:8, :8, 0].mean() for f in decoded]
    assert any(70 < red_level[i] < 190 for i in (start - 2, start - 1)), red_level[start - 3:end + 3]
    assert any(70 < red_level[i] < 190 for i in (end, end + 1)), red_level[start - 3:end + 3]


def test_an_action_clip_crossfades_in_and_out_of_the_loop(tmp_path, clip, model):
    from broadcaster.avatar.video_anchor import fade_slots
    path, _ = clip
    red, _ = presenter_frames(W, H, 12, travel=0, background=(220, 30, 30))
    anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS,
                             clips={"wave": write_clip(tmp_path / "wave.mp4", red, FPS)})
    silence = np.zeros(SPF, np.float32)
    try:
        action = anchor.action_patches["wave"]
        n, fade = len(action), fade_slots(len(action), FPS)
        assert n == 12 and fade == 3
        start = 5
        for slot in range(start):
            assert anchor.render_slot(slot, silence, None) is anchor.patches[pingpong(slot, N_CLIP)]
        assert anchor.play("wave")
        shown = [anchor.render_slot(slot, silence, None) for slot in range(start, start + n + 6)]
    finally:
        anchor.close()

    def action_weight(picture, under):
        """How much of the action clip is in `picture` over loop frame `under` (the red of the
        clip's background is in V)."""
        a, b = under.v.astype(float), action[0].v.astype(float)
        differs = np.abs(b - a) > 40
        assert differs.mean() > 0.2
        return float(np.median((picture.v.astype(float)[differs] - a[differs]) / (b - a)[differs]))

    # the loop moves on under the fade in, waits while the clip plays alone, moves on under
    # the fade out and resumes where that left it
    loop = [start + i for i in range(fade)] + [start + fade] * (n - 2 * fade) + \
           [start + fade + j for j in range(fade)] + [start + 2 * fade + j for j in range(6)]
    weights = [action_weight(p, anchor.patches[pingpong(pos, N_CLIP)]) for p, pos in zip(shown, loop)]
    fade_in, fade_out = weights[:fade], weights[n - fade:n]
    # blends, not a cut: each fade frame is between the two pictures, the clip's share rising in
    # and falling out in even steps
    assert all(0.1 < w < 0.9 for w in fade_in + fade_out), weights
    assert np.all(np.diff(fade_in) > 0.1) and np.all(np.diff(fade_out) < -0.1), weights
    for i, w in enumerate(fade_in):
        assert abs(w - (i + 1) / (fade + 1)) < 0.05, weights
    # the clip's own frames in the middle, bit for bit
    for i in range(fade, n - fade):
        assert shown[i] is action[i]
    # back on the loop, at the position the fade out reached
    for j in range(6):
        assert shown[n + j] is anchor.patches[pingpong(start + 2 * fade + j, N_CLIP)]


def test_a_late_renderer_shows_the_next_clip_frame_and_counts_it(clip, model, speech):
    path, _ = clip
    anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS, mouth_every=1, batch_size=4)
    gate = threading.Event()
    real_infer = anchor.ahead._infer

    def held_infer(mels, faces):   # the real session runs, once the test lets it
        gate.wait(10)
        return real_infer(mels, faces)

    anchor.ahead._infer = held_infer
    try:
        pcm = speech[:SPF * 30]
        anchor.speech_queued(pcm, 0, 0)
        for n in range(8):       # the worker is held: every slot with sound is late
            out = anchor.render_slot(n, pcm[n * SPF:(n + 1) * SPF], n * SPF)
            assert out is anchor.patches[pingpong(n, N_CLIP)]
        loud = [n for n in range(8) if np.sqrt(np.mean(pcm[n * SPF:(n + 1) * SPF] ** 2)) > 10 ** (-50 / 20)]
        assert anchor.late_frames == len(loud) > 0
        gate.set()
        key = 21      # a loud slot, past what a held worker skips as late already
        deadline = time.monotonic() + 30
        while anchor.ahead.take(key) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        out = anchor.render_slot(key, pcm[key * SPF:(key + 1) * SPF], key * SPF)
        assert anchor.last_inferred and not anchor.last_late
        assert out is not anchor.patches[pingpong(key, N_CLIP)]
        anchor.reset()
        assert anchor.ahead.take(key + 1) is None
        # after the interruption the next line (queued further on in the stream) renders again
        after = len(pcm)
        anchor.speech_queued(pcm, after, 0)
        key = int(np.ceil(after / SPF)) + 4
        deadline = time.monotonic() + 30
        while anchor.ahead.take(key) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert anchor.ahead.take(key) is not None
    finally:
        gate.set()
        anchor.close()


def test_a_line_replayed_after_an_outage_is_rendered_again(clip, model, speech):
    """Back on air the mixer plays the interrupted line from its start: the stream position
    goes back, and the worker renders those keys again from the speech it kept."""
    path, _ = clip
    anchor = VideoLoopAnchor(W, H, video=path, model=model, fps=FPS)
    try:
        pcm = speech[:SPF * 40]
        anchor.speech_queued(pcm, 0, 0)
        for n in range(1, 30):
            deadline = time.monotonic() + 2
            while anchor.ahead.take(n) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            anchor.render_slot(n, pcm[n * SPF:(n + 1) * SPF], n * SPF)
        for key in range(4, 12):
            assert anchor.ahead.take(key) is None      # long gone from the air
        anchor.render_slot(60, pcm[3 * SPF:4 * SPF], 3 * SPF)   # the replay starts
        assert wait_for_mouth(anchor, range(4, 12), timeout=30)
    finally:
        anchor.close()


def test_the_busy_signal_is_the_workers_whole_cost_per_mouth():
    """A worker whose pastes take longer than a slot (a loaded CPU, a large frame) spaces its
    mouths out, although the model itself is instant: the pace follows all its work."""
    from broadcaster.avatar.lip_ahead import LipAhead

    def instant_model(mels, faces):
        return np.full((len(mels), 3, 96, 96), 0.5, np.float32)

    def slow_paste(index, mouth):
        time.sleep(0.06)
        return mouth

    ahead = LipAhead(instant_model, face_input=lambda i: np.zeros((6, 96, 96), np.float32),
                     compose=slow_paste, clip_at=lambda pos: pos % N_CLIP, fps=FPS, batch_size=1,
                     mouth_every=1, lookahead_s=3.0)
    try:
        ahead.speech_queued(np.random.default_rng(0).uniform(-0.2, 0.2, SPF * 60).astype(np.float32), 0, 0)
        deadline = time.monotonic() + 20
        while ahead.faces < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ahead.close()
    assert ahead.faces >= 8
    assert ahead.face_s >= 0.06 and ahead.stride() >= 2


def test_the_start_gate_waits_for_the_first_mouth_also_for_a_replayed_line():
    """LipAhead.may_start (the mixer's start gate): no while the line's first mouth is not
    rendered, yes once it is; asked for a line played again from its start (back on air after
    an outage), it renders that start again although those keys were dropped long ago."""
    from broadcaster.avatar.lip_ahead import LipAhead
    release = threading.Event()

    def held_model(mels, faces):
        release.wait(10)
        return np.full((len(mels), 3, 96, 96), 0.5, np.float32)

    def wait_until_ready(ahead, stream_pos):
        deadline = time.monotonic() + 10
        while not ahead.may_start(stream_pos) and time.monotonic() < deadline:
            time.sleep(0.02)
        return ahead.may_start(stream_pos)

    ahead = LipAhead(held_model, face_input=lambda i: np.zeros((6, 96, 96), np.float32),
                     compose=lambda index, mouth: mouth, clip_at=lambda pos: pos % N_CLIP, fps=FPS,
                     mouth_every=2)
    try:
        ahead.speech_queued(np.random.default_rng(0).uniform(-0.2, 0.2, SPF * 40).astype(np.float32), 0, 0)
        time.sleep(0.2)
        assert not ahead.may_start(0) and ahead.take(0) is None
        release.set()
        assert wait_until_ready(ahead, 0)
        assert ahead.take(0).mouth is not None
        for n in range(1, 20):              # the line plays on, its first keys are dropped
            ahead.on_slot(n, n * SPF)
        assert ahead.take(0) is None
        assert wait_until_ready(ahead, 0)   # played again from its start
        assert ahead.take(0).mouth is not None and ahead.take(1) is not None
    finally:
        release.set()
        ahead.close()
