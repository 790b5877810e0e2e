"""The speaking anchor on air: `say` and /say make it talk (real Piper voice, real puppet
ONNX session), the mouth moves with exactly the audio on air, captions show the line, and an
interruption cuts speech and mouth within one frame. Checked by decoding the recording."""

import time

import numpy as np

from tests.support.anchor_av import MOUTH, check_lips_and_captions
from tests.support.broadcaster_proc import run_broadcaster, start_broadcaster, wait_on_air, wait_turns
from tests.support.http import http_json
from tests.support.media import audio_rms_per_frame
from tests.support.media import decode_frames_and_audio as decode
from tests.support.ports import free_port

LONG = ("Good evening and welcome to the late show. Tonight we will talk about live streaming, "
        "about virtual anchors, about how a voice is made from text, and about why the lips of "
        "an animated character should move with exactly the sound that goes out on air.")


def test_say_makes_the_anchor_speak_with_lips_in_sync_and_captions(tmp_path):
    port = free_port()
    out = tmp_path / "say.flv"
    proc = start_broadcaster("run", "--output", str(out), "--control-port", str(port), "--duration", "14")
    try:
        wait_on_air(port)
        time.sleep(1.0)
        said = run_broadcaster("say", "--control-port", str(port),
                               "Hello everyone, and welcome to the show. We are live, and I am talking to you now.")
        assert said.returncode == 0, said.stderr
        turns = wait_turns(port, lambda t: t and t[0]["spoken"] and t[0]["ms"]["total_to_muxed"] is not None)
        assert turns[0]["kind"] == "say" and not turns[0]["interrupted"]
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    frames, audio = decode(out)
    speaking = check_lips_and_captions(frames, audio, fps=20)
    assert speaking.sum() > 3 * 20, "the line should give several seconds of speech"


def test_interrupt_cuts_speech_and_mouth_within_one_frame(tmp_path):
    port = free_port()
    out = tmp_path / "cut.flv"
    proc = start_broadcaster("run", "--output", str(out), "--control-port", str(port), "--duration", "12")
    try:
        wait_on_air(port)
        status, _ = http_json("POST", f"http://127.0.0.1:{port}/say", {"text": LONG})
        assert status == 202
        wait_turns(port, lambda t: t and t[0]["ms"]["mux"] is not None)
        time.sleep(2.5)                       # well inside the long line
        status, body = http_json("POST", f"http://127.0.0.1:{port}/interrupt", {})
        assert status == 200
        cut_frame = body["frame"]
        turns = wait_turns(port, lambda t: t and t[0]["interrupted"])
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    frames, audio = decode(out)
    fps = 20
    pts = np.array([p for p, _ in frames])
    rms = audio_rms_per_frame(audio, pts, fps)
    first = pts[0]
    cut_at = int(np.argmin(np.abs(pts - (first + cut_frame / fps))))
    assert rms[cut_at - 20:cut_at].max() > 0.02, "speech was on air before the cut"
    # from the slot after the cut on: silence (the 5 ms fade fits inside the cut slot)
    assert rms[cut_at + 1:cut_at + 20].max() < 0.002, rms[cut_at - 2:cut_at + 4]
    mouth = np.array([f[MOUTH].astype(np.float32) for _, f in frames])
    per_frame = np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))   # change into frame i+1
    still = per_frame[cut_at + 1:cut_at + 20].mean()
    moving = per_frame[cut_at - 20:cut_at - 1].max()
    assert still < moving / 4, (still, moving)


def test_say_rejects_bad_requests_and_reports_a_stopped_broadcaster(tmp_path):
    port = free_port()
    result = run_broadcaster("say", "--control-port", str(port), "hello")
    assert result.returncode == 1 and "no broadcaster answering" in result.stderr
    proc = start_broadcaster("run", "--output", str(tmp_path / "x.flv"), "--control-port", str(port), "--duration", "6")
    try:
        wait_on_air(port)
        url = f"http://127.0.0.1:{port}/say"
        assert http_json("POST", url, {"nope": 1})[0] == 400
        assert http_json("POST", url, {"text": "   "})[0] == 400
        assert http_json("POST", url, {"text": "x" * 5000})[0] == 413
        assert http_json("POST", url, {"text": "hi", "interrupt": "yes"})[0] == 400
    finally:
        proc.communicate(timeout=60)


def test_scene_script_lines_are_spoken_while_nothing_else_happens(tmp_path):
    scene = tmp_path / "scripted.yaml"
    scene.write_text("canvas: {width: 640, height: 360, fps: 20}\n"
                     "script:\n  lines: ['First scripted line.', 'Second scripted line.']\n"
                     "  every_s: 1\n  start_after_s: 0.5\n")
    port = free_port()
    proc = start_broadcaster("run", "--scene", str(scene), "--output", str(tmp_path / "s.flv"),
                             "--control-port", str(port), "--duration", "12")
    try:
        wait_on_air(port)
        turns = wait_turns(port, lambda t: len([x for x in t if x["kind"] == "script" and x["spoken"]]) >= 3)
    finally:
        proc.communicate(timeout=60)
    texts = [t["text"] for t in turns if t["kind"] == "script"]
    assert texts[:3] == ["First scripted line.", "Second scripted line.", "First scripted line."]


def test_cjk_captions_render_with_a_cjk_font():
    from broadcaster.render.captions import CaptionRenderer
    from broadcaster.scene import CaptionSpec
    renderer = CaptionRenderer(CaptionSpec(0, 0, 400, 80, size=28))
    assert "CJK" in renderer.font.getname()[0] or "Noto" in renderer.font.getname()[0]
    text = renderer.render_rgba("你好，欢迎来到直播间")
    tofu = renderer.render_rgba("\U000f0000\U000f0001\U000f0002")   # private-use: no glyphs
    assert (text[..., 3] > 0).sum() > 0
    assert not np.array_equal(text, tofu)


def test_chat_overlay_draws_the_question_on_its_background():
    from broadcaster.render.overlay import ChatOverlay, overlay_spec
    spec = overlay_spec({"x": 0, "y": 0, "width": 200, "height": 200}, "scene.yaml", 640, 360)
    assert spec.background is not None
    rgba = ChatOverlay(spec).add("alice", "What are we talking about today?")
    assert rgba.shape == (200, 200, 4)
    assert (rgba[..., 3] > 100).mean() > 0.1          # a box behind the text
    none = overlay_spec({"x": 0, "y": 0, "width": 200, "height": 200, "background": "none"}, "s", 640, 360)
    assert none.background is None
