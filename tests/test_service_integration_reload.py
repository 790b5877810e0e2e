"""SIGHUP on the real `broadcaster run`: the scene named in config.yaml is swapped live while
the recording continues without a pts gap; a broken scene is refused with a clear log line and
the broadcast goes on; a canvas change is named as needing a restart."""

import signal
import time

import av
import numpy as np

from tests.support.broadcaster_proc import healthz, start_broadcaster, write_config
from tests.support.media import probe, write_wav
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

FPS = 20


def _tone(path, freq, seconds=1.0, rate=48000):
    t = np.arange(int(rate * seconds)) / rate
    write_wav(path, (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16), rate)


def _scene(path, name, color, width=320, height=240, bed="tone.wav"):
    path.write_text(f"name: {name}\ncanvas: {{width: {width}, height: {height}, fps: {FPS}}}\n"
                    f"background: {{color: \"{color}\"}}\naudio: {{bed: {bed}, volume: 0.8}}\n")


def _classify(rgb):
    h, w, _ = rgb.shape
    r, g, b = rgb[h // 4: 3 * h // 4, w // 4: 3 * w // 4].reshape(-1, 3).mean(axis=0)
    for name, (cr, cg, cb) in {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}.items():
        if abs(r - cr) < 40 and abs(g - cg) < 40 and abs(b - cb) < 40:
            return name
    return f"other({r:.0f},{g:.0f},{b:.0f})"


def test_sighup_swaps_the_scene_live_refuses_a_broken_one_and_names_a_canvas_change(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    _tone(scenes / "tone.wav", 440)
    _scene(scenes / "red.yaml", "Red", "#ff0000")
    _scene(scenes / "blue.yaml", "Blue", "#0000ff")
    (scenes / "broken.yaml").write_text("name: Broken\nbackground: {color: \"#zz0000\"}\n")
    _scene(scenes / "green.yaml", "Green", "#00ff00", width=640, height=360)
    port = free_port()
    recording = tmp_path / "onair.ts"

    def configure(scene):
        write_config(tmp_path / "config.yaml", scene=scene, scenes_dir=str(scenes),
                     output={"url": str(recording)}, control={"port": port})

    configure("red")
    proc = start_broadcaster("run", "-c", str(tmp_path / "config.yaml"))
    try:
        wait_for(lambda: healthz(port)[0] == 200, 15, what="on air")
        time.sleep(2)
        for scene in ("blue", "broken", "green"):
            configure(scene)
            proc.send_signal(signal.SIGHUP)
            time.sleep(1.5)
        assert proc.poll() is None, "the broadcast stopped after a reload"
        assert healthz(port)[0] == 200
        time.sleep(0.5)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err

    # the log: each reload named, the broken scene refused naming its file, the canvas change named
    assert "reload: scene Blue is on air" in err, err
    failed = [line for line in err.splitlines() if "reload failed" in line]
    assert len(failed) == 1, err
    assert "broken.yaml" in failed[0] and "background" in failed[0], failed[0]
    assert "keeping the current scene" in failed[0]
    restart = [line for line in err.splitlines() if "needs a restart" in line]
    assert len(restart) == 1 and "640x360" in restart[0] and "320x240" in restart[0], err
    assert "reload: scene Green is on air" in err

    # the recording: one continuous stream at the starting canvas, no pts gap anywhere
    report = probe(recording, decode_audio=True)
    assert (report.width, report.height) == (320, 240)
    assert abs(report.fps - FPS) < 0.05
    assert report.max_video_gap() <= 1.0 / FPS + 0.0015
    assert report.max_audio_gap() <= 0.0015
    assert abs(report.audio_duration - report.video_duration) <= 1.0 / FPS
    assert report.video_duration >= 6.0
    assert min(report.audio_rms[5:-5]) > 0.05          # the bed plays on across the swaps

    # the pictures: red, then blue (the broken reload changes nothing), then green
    with av.open(str(recording)) as container:
        colours = [_classify(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    runs = []
    for c in colours:
        if not runs or runs[-1][0] != c:
            runs.append([c, 0])
        runs[-1][1] += 1
    assert [c for c, _ in runs] == ["red", "blue", "green"], runs
    assert all(n >= FPS for _, n in runs), runs              # each scene on air for over 1 s
    blue = runs[1][1]
    assert blue >= 2.5 * FPS, runs                            # blue stayed through the broken reload


def test_sighup_keeps_command_line_overrides_and_refuses_a_bad_chat_section(tmp_path):
    """--output, --bitrate and --control-port given on the command line are not reported as
    config changes on each reload; a chat: section `check` would refuse is refused by the
    reload too, naming the key, and the broadcast goes on."""
    port = free_port()
    config = tmp_path / "config.yaml"
    write_config(config)
    proc = start_broadcaster("run", "-c", str(config), "--output", str(tmp_path / "cli.ts"),
                             "--bitrate", "900", "--control-port", str(port))
    try:
        wait_for(lambda: healthz(port)[0] == 200, 30, what="on air")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        write_config(config, chat={"sources": [{"type": "twitch", "chanel": "typo"}]})
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None and healthz(port)[0] == 200
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert "section changed" not in err, err
    failed = [line for line in err.splitlines() if "reload failed" in line]
    assert len(failed) == 1 and "chat" in failed[0] and "chanel" in failed[0], err
    assert err.count("reload: scene") == 1, err
