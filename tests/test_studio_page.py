"""The studio page in a real browser (Debian's chromium, headless, through Playwright) against
a running broadcast: the preview shows the program as it goes out, the page's actions (say,
interrupt, chat, scene switch) act on air, the plots draw, and the page carries the control
token. What went on air is checked by decoding the recording (PyAV, Whisper tiny.en)."""

import base64
import difflib
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from broadcaster.tts.levels import resample_to_broadcast
from tests.support.broadcaster_proc import start_broadcaster, wait_on_air, wait_turns, write_config
from tests.support.browser import chromium_page
from tests.support.data.speech import KEY_WORDS, UTTERANCES, speech_with_pauses, words
from tests.support.http import http_json
from tests.support.media import audio_rms_per_frame, decode_frames_and_audio
from tests.support.paths import ROOT
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

LONG = ("Good evening and welcome to the late show. Tonight we will talk about live streaming, "
        "about virtual anchors, about how a voice is made from text, and about why the lips of "
        "an animated character should move with exactly the sound that goes out on air.")
FPS = 20
CAPTION = (slice(415, 470), slice(60, 800))      # the default scene's caption bar
SCREENSHOT = ROOT / "docs" / "studio-page.png"    # the README's picture (UPDATE_SCREENSHOT=1)

# what the page shows in the preview <img>: the JPEG's own pixels, read back by the page
PREVIEW_PIXELS = """async () => {
  const img = document.getElementById('preview');
  const buf = await (await fetch(img.src)).arrayBuffer();
  let s = ''; const b = new Uint8Array(buf);
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return [img.dataset.frame, btoa(s)];
}"""
CANVAS_INK = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


def preview(page) -> tuple[int, np.ndarray]:
    frame, data = page.evaluate(PREVIEW_PIXELS)
    return int(frame), np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def caption_ink(rgb: np.ndarray) -> float:
    return float((rgb[CAPTION] > 200).mean())


def similarity(heard: str, said: str) -> float:
    """How alike two transcripts are, ignoring case and punctuation (0..1)."""
    def words(text):
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split())
    return difflib.SequenceMatcher(None, words(heard), words(said)).ratio()


def last_speech(audio, pts, fps, gap_s=1.0) -> np.ndarray:
    """The last stretch of speech in the recording (48 kHz mono), ending at the last loud frame
    and starting after a silence of gap_s."""
    rms = audio_rms_per_frame(audio, pts, fps)
    loud = np.flatnonzero(rms > 0.01)
    end = loud[-1] + 1
    start = end - 1
    gap = int(gap_s * fps)
    while start > 0 and rms[max(0, start - gap):start].max() > 0.01:
        start -= 1
    samples = np.concatenate([a[1] for a in audio])
    t0 = audio[0][0]
    a, b = int((pts[start] - t0) * 48000), int((pts[end - 1] - t0 + 1 / fps) * 48000)
    return samples[max(0, a):b]


def test_the_page_drives_a_running_broadcast(tmp_path, asr):
    port = free_port()
    out = tmp_path / "studio.flv"
    proc = start_broadcaster("run", "--output", str(out), "--control-port", str(port), "--duration", "45")
    try:
        wait_on_air(port)
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/studio/")
            page.wait_for_selector("body[data-ready='1']", timeout=15000)
            page.wait_for_selector("#preview[data-frame]", timeout=15000)
            assert page.inner_text("#onair") == "ON AIR"
            first_frame, idle = preview(page)
            assert idle.shape == (480, 854, 3)
            quiet_ink = caption_ink(idle)

            # the plots draw the bitrate and frame rate history
            wait_for(lambda: int(page.get_attribute("#plot-fps", "data-points") or 0) >= 3, 15,
                     what="three fps samples in the plot")
            assert page.evaluate(CANVAS_INK, "plot-fps") > 200
            assert page.evaluate(CANVAS_INK, "plot-bitrate") > 200
            assert "kbit/s" in page.inner_text("#bitrate")

            # say a line from the page: the preview follows the program while the anchor speaks
            page.fill("#say-text", LONG)
            page.click("#say-form button[type=submit]")
            wait_turns(port, lambda t: any(x["kind"] == "say" and x["ms"]["mux"] is not None for x in t))
            shots = []
            for _ in range(6):
                time.sleep(0.3)
                shots.append(preview(page))
            frames = [f for f, _ in shots]
            assert frames == sorted(frames) and frames[-1] > first_frame, frames
            assert len({img.tobytes() for _, img in shots}) >= 4, "the preview did not change"
            assert max(caption_ink(img) for _, img in shots) > quiet_ink + 0.02, "no caption in the preview"
            assert page.inner_text("#caption").strip(), "the page shows no caption while speaking"

            # the interrupt button cuts the line (checked in the recording below)
            time.sleep(1.0)
            # mid-sentence (under load Piper may pause between fragments): a caption is on air
            wait_for(lambda: http_json("GET", f"http://127.0.0.1:{port}/studio/state")[1]["caption"], 10,
                     interval=0.02, what="the anchor to be speaking")
            with page.expect_response(lambda r: r.url.endswith("/interrupt")) as answer:
                page.click("#interrupt")
            cut_frame = answer.value.json()["frame"]
            wait_turns(port, lambda t: any(x["kind"] == "say" and x["interrupted"] for x in t))
            time.sleep(1.5)                   # a second of silence after the cut, then the chat

            # a chat typed in the page is picked and answered on air
            page.fill("#chat-user", "alice")
            page.fill("#chat-text", "What is the weather like in Paris today?")
            page.click("#chat-form button[type=submit]")
            turns = wait_turns(port, lambda t: any(x["kind"] == "chat" and x["ms"]["mux"] is not None
                                                   for x in t), timeout=30)
            page.wait_for_selector("#chat-recent li.picked", timeout=5000)
            assert "alice" in page.inner_text("#chat-recent")
            page.wait_for_function("document.getElementById('turns').textContent.includes('alice')",
                                   timeout=5000)
            time.sleep(1.0)
            shot = tmp_path / "studio-page.png"
            page.screenshot(path=str(shot))
            if os.environ.get("UPDATE_SCREENSHOT"):
                SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT)
        wait_turns(port, lambda t: any(x["kind"] == "chat" and x["spoken"] for x in t), timeout=30)
        time.sleep(1.0)
    finally:
        _, err = stop(proc, timeout=60)
    assert proc.returncode == 0, err

    frames, audio = decode_frames_and_audio(out)
    pts = np.array([p for p, _ in frames])
    rms = audio_rms_per_frame(audio, pts, FPS)
    cut_at = int(np.argmin(np.abs(pts - (pts[0] + cut_frame / FPS))))
    assert rms[cut_at - 40:cut_at].max() > 0.02, "speech was on air before the cut"
    assert rms[cut_at + 1:cut_at + 20].max() < 0.002, rms[cut_at - 2:cut_at + 4]
    answer = last_speech(audio, pts, FPS)
    heard = asr.decode(resample_to_broadcast(answer, 48000, 16000)).text
    said = "alice says: What is the weather like in Paris today?"
    assert similarity(heard, said) > 0.75, (heard, [t["spoken"] for t in turns])


def _scene(path: Path, name: str, color: str) -> None:
    path.write_text(f"name: {name}\ncanvas: {{width: 320, height: 240, fps: {FPS}}}\n"
                    f"background: {{color: \"{color}\"}}\n")


def test_scene_switch_from_the_page_and_the_token_on_every_request(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    _scene(scenes / "red.yaml", "Red", "#ff0000")
    _scene(scenes / "blue.yaml", "Blue", "#0000ff")
    port = free_port()
    config = write_config(tmp_path / "config.yaml", scene="red", scenes_dir=str(scenes),
                          output={"url": str(tmp_path / "switch.ts")}, control={"port": port})
    proc = start_broadcaster("run", "-c", str(config), "--duration", "30")
    sent: list[tuple[str, str, dict]] = []
    try:
        wait_on_air(port)
        with chromium_page() as page:
            page.on("request", lambda r: sent.append((r.method, r.url, r.headers)))
            page.goto(f"http://127.0.0.1:{port}/studio/?token=s3cret-token-123")
            page.wait_for_selector("body[data-ready='1']", timeout=15000)
            page.goto(f"http://127.0.0.1:{port}/studio/")       # the token stays for the session
            page.wait_for_selector("body[data-ready='1']", timeout=15000)
            page.wait_for_selector("#preview[data-frame]", timeout=15000)
            assert preview_colour(page) == "red"
            assert page.input_value("#scene-select") == "red"
            page.select_option("#scene-select", "blue")
            page.click("#scene-switch")
            wait_for(lambda: preview_colour(page) == "blue", 20,
                     what=lambda: f"the blue scene in the preview (shows {preview_colour(page)}, frame "
                                  f"{page.get_attribute('#preview', 'data-frame')}, state "
                                  f"{http_json('GET', f'http://127.0.0.1:{port}/studio/state')[1]['scene']})")
            page.wait_for_function("document.getElementById('scene-name').textContent === 'scene: blue'",
                                   timeout=5000)
            ws = page.evaluate("studioWsUrl('/chat/ws')")
    finally:
        _, err = stop(proc, timeout=60)
    assert "reload: scene Blue is on air" in err, err
    assert ws.startswith(f"ws://127.0.0.1:{port}/chat/ws?token=s3cret-token-123"), ws
    fetched = [(m, u, h) for m, u, h in sent if "/studio/" in u and not u.endswith("/studio/")
               and not u.endswith((".js", ".css")) and "?token=" not in u]
    assert any(u.endswith("/studio/state") for _, u, _ in fetched)
    assert any(u.endswith("/studio/preview.jpg") for _, u, _ in fetched)
    for method, url, headers in fetched:
        assert headers.get("authorization") == "Bearer s3cret-token-123", (method, url)
        if method == "POST":
            assert headers.get("content-type") == "application/json", url
    assert any(m == "POST" and u.endswith("/studio/scene") for m, u, _ in fetched)


def preview_colour(page) -> str:
    _, rgb = preview(page)
    r, g, b = rgb[60:180, 80:240].reshape(-1, 3).mean(axis=0)
    return "red" if r > 200 and b < 60 else "blue" if b > 200 and r < 60 else f"({r:.0f},{g:.0f},{b:.0f})"


def test_the_mic_button_mutes_the_host(tmp_path):
    wav, spans = speech_with_pauses(tmp_path / "host.wav", UTTERANCES, lead_s=6.0, pause_s=4.0, tail_s=10.0)
    port = free_port()
    proc = start_broadcaster("run", "--mic", str(wav), "--output", str(tmp_path / "mic.flv"),
                             "--responder", "read-aloud", "--size", "640x360", "--duration", "40",
                             "--control-port", str(port))
    try:
        wait_on_air(port)
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/studio/")
            page.wait_for_selector("#mic-mute:not([hidden])", timeout=15000)
            page.click("#mic-mute")
            page.wait_for_function("document.getElementById('mic-mute').textContent === 'Unmute mic'",
                                   timeout=5000)
            muted_at = mic_position(port)
            assert muted_at < spans[0][0] - 0.5, (muted_at, spans)     # muted before the first line
            wait_for(lambda: mic_position(port) > spans[0][1] + 1.5, 20, what="the first line to pass")
            page.click("#mic-mute")
            page.wait_for_function("document.getElementById('mic-mute').textContent === 'Mute mic'",
                                   timeout=5000)
            turns = wait_turns(port, lambda t: any(x["kind"] == "host" for x in t), timeout=30)
        mic = http_json("GET", f"http://127.0.0.1:{port}/mic")[1]
    finally:
        _, err = stop(proc, timeout=60)
    host = [t for t in turns if t["kind"] == "host"]
    assert len(host) == 1 and KEY_WORDS[1] <= words(host[0]["text"]), host   # the second line only
    assert len(mic["onsets"]) == 1, mic["onsets"]


def mic_position(port: int) -> float:
    """Seconds of the mic file read so far (20 ms frames)."""
    return http_json("GET", f"http://127.0.0.1:{port}/mic")[1]["frames_in"] * 0.02
