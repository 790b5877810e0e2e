#!/usr/bin/env python3
"""Encoding benchmark: the project's in-process path against the reference ffmpeg pipe.

Both encode the same synthetic talking-head frames (a gradient studio, a face whose mouth and
eyes move every frame, a caption) to FLV as fast as they can, in one run:
  reference: full rgb24 frames drawn with numpy and written into
             `ffmpeg -f rawvideo -pix_fmt rgb24 ... -c:v libx264 -preset ultrafast -f flv`
  project:   broadcaster's Compositor (cached yuv420p base + face patch) on one thread,
             broadcaster's Publisher/EncoderSession (PyAV libx264 + AAC) on another.
It prints frames/s and CPU seconds per frame for each and their ratios at 640x480@20 and
1280x720@25, then the CPU share of a real-time 480p20 broadcast of a static scene.

    .venv/bin/python tools/bench_encode.py [--frames 300] [--static-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.config import load_config  # noqa: E402
from broadcaster.media.slotqueue import (
    MediaSlot,
    SlotQueue,  # noqa: E402
)
from broadcaster.media.stats import BroadcastStats  # noqa: E402
from broadcaster.output.publisher import Publisher  # noqa: E402
from broadcaster.render.compose import Compositor  # noqa: E402
from broadcaster.scene import AnchorSpec, Background, Canvas, CaptionSpec, Scene  # noqa: E402
from broadcaster.transport.output import parse_target  # noqa: E402


class TalkingHead:
    """A synthetic face (an AnchorRenderer): skin ellipse, eyes that blink, a mouth that opens
    with a phase."""

    static = False

    def __init__(self, w: int, h: int):
        self.w, self.h = w, h
        self.width, self.height = w, h
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.face = ((xx - w / 2) / (w * 0.38)) ** 2 + ((yy - h * 0.45) / (h * 0.4)) ** 2 <= 1
        self.yy, self.xx = yy, xx

    def rgba(self, n: int) -> np.ndarray:
        w, h = self.w, self.h
        img = np.zeros((h, w, 4), np.uint8)
        img[self.face] = (236, 188, 160, 255)
        opening = 0.5 + 0.5 * np.sin(n * 0.9)
        mouth = ((self.xx - w / 2) / (w * 0.14)) ** 2 + ((self.yy - h * 0.66) / (h * (0.01 + 0.05 * opening))) ** 2 <= 1
        img[mouth] = (120, 30, 40, 255)
        eye_h = 0.004 if n % 40 < 3 else 0.03
        for cx in (0.36, 0.64):
            eye = ((self.xx - w * cx) / (w * 0.06)) ** 2 + ((self.yy - h * 0.38) / (h * eye_h)) ** 2 <= 1
            img[eye] = (40, 40, 60, 255)
        return img

    def render(self, n: int, speech) -> np.ndarray:
        return self.rgba(n)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_scene(w: int, h: int, fps: int) -> Scene:
    aw, ah = (w // 3) // 2 * 2, (h * 2 // 3) // 2 * 2
    return Scene(
        name="bench", source="bench", base_dir=ROOT, canvas=Canvas(w, h, fps),
        background=Background(kind="gradient", color=(20, 33, 61, 255), color2=(58, 36, 88, 255),
                              direction="diagonal"),
        anchor=AnchorSpec(x=(w - aw) // 2 // 2 * 2, y=h // 8 // 2 * 2, width=aw, height=ah, renderer="puppet"),
        captions=CaptionSpec(x=w // 20 // 2 * 2, y=h * 4 // 5 // 2 * 2, width=w * 9 // 10 // 2 * 2,
                             height=h // 6 // 2 * 2, size=max(12, h // 20)),
    )


def gradient_rgb(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / (w - 1) + yy / (h - 1)) / 2
    c1, c2 = np.array([20, 33, 61], np.float32), np.array([58, 36, 88], np.float32)
    return (c1 + (c2 - c1) * t[..., None]).astype(np.uint8)


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_reference(w: int, h: int, fps: int, frames: int, bitrate_kbps: int, out: Path) -> tuple[float, float]:
    """The reference pipeline: numpy draws full rgb24 frames, ffmpeg encodes from a pipe."""
    head = TalkingHead(w // 3 // 2 * 2, h * 2 // 3 // 2 * 2)
    base = gradient_rgb(w, h)
    ax, ay = (w - head.w) // 2 // 2 * 2, h // 8 // 2 * 2
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
           "-b:v", f"{bitrate_kbps}k", "-g", str(2 * fps), "-pix_fmt", "yuv420p", "-f", "flv", str(out)]
    c0, k0, t0 = cpu_self(), cpu_children(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for n in range(frames):
        frame = base.copy()
        face = head.rgba(n)
        region = frame[ay:ay + head.h, ax:ax + head.w]
        a = face[..., 3:4].astype(np.float32) / 255
        region[:] = (face[..., :3] * a + region * (1 - a)).astype(np.uint8)
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    proc.wait()
    wall = time.perf_counter() - t0
    cpu = (cpu_self() - c0) + (cpu_children() - k0)
    return frames / wall, cpu / frames


def bench_project(w: int, h: int, fps: int, frames: int, bitrate_kbps: int, out: Path) -> tuple[float, float]:
    """The project's path: compositor thread -> SlotQueue -> publisher thread (PyAV)."""
    from dataclasses import replace
    config = load_config(ROOT / "config.yaml")
    config = replace(config, video=replace(config.video, bitrate_kbps=bitrate_kbps))
    scene = make_scene(w, h, fps)
    head = TalkingHead(scene.anchor.width, scene.anchor.height)
    compositor = Compositor(scene, head)
    stats = BroadcastStats()
    queue = SlotQueue(soft_limit=8, hard_limit=16)
    publisher = Publisher(config, parse_target(str(out)), w, h, fps, queue, stats)
    samples = 48000 // fps
    silence = np.zeros((samples, 2), np.float32)
    speech = np.zeros(samples, np.float32)
    c0, t0 = cpu_self(), time.perf_counter()
    publisher.start()
    for n in range(frames):
        video = compositor.compose(n, speech, "Thanks for the question, here is what I think")
        while len(queue) >= queue.soft_limit - 1:     # a benchmark must not drop: wait instead
            time.sleep(0.0005)
        queue.put(MediaSlot(n, video, silence))
    queue.close()
    publisher.join()
    wall = time.perf_counter() - t0
    cpu = cpu_self() - c0
    assert stats.frames_out == frames, stats
    return frames / wall, cpu / frames


def bench_static_broadcast(seconds: float) -> tuple[float, float]:
    """CPU share of a real-time 640x480@20 broadcast of a static scene (steady state)."""
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "static.yaml"
        scene.write_text("canvas: {width: 640, height: 480, fps: 20}\n"
                         "background: {gradient: {from: '#14213d', to: '#3a2458'}}\n"
                         "layers:\n  - {text: 'Static scene', x: 20, y: 20, size: 24}\n")
        shares = []
        for duration in (2.0, seconds):
            k0 = cpu_children()
            subprocess.run([sys.executable, "-m", "broadcaster", "run", "--scene", str(scene),
                            "--output", str(Path(tmp) / "s.flv"), "--duration", str(duration),
                            "--control-port", "0", "--log-level", "warning"], check=True, cwd=ROOT)
            shares.append(cpu_children() - k0)
        steady = (shares[1] - shares[0]) / (seconds - 2.0)
        return steady, shares[1] / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--static-seconds", type=float, default=20.0)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; frames per case: {args.frames}")
    with tempfile.TemporaryDirectory() as tmp:
        for (w, h, fps, kbps) in ((640, 480, 20, 1000), (1280, 720, 25, 2500)):
            ref_fps, ref_cpu = bench_reference(w, h, fps, args.frames, kbps, Path(tmp) / "ref.flv")
            prj_fps, prj_cpu = bench_project(w, h, fps, args.frames, kbps, Path(tmp) / "prj.flv")
            print(f"{w}x{h}@{fps}: reference pipe {ref_fps:7.1f} frames/s {ref_cpu * 1000:6.2f} ms CPU/frame | "
                  f"project {prj_fps:7.1f} frames/s {prj_cpu * 1000:6.2f} ms CPU/frame | "
                  f"ratio fps x{prj_fps / ref_fps:.2f}, CPU/frame x{prj_cpu / ref_cpu:.2f}")
    steady, overall = bench_static_broadcast(args.static_seconds)
    print(f"static 640x480@20 broadcast, real time: {steady * 100:.1f} % of one core in steady state "
          f"({overall * 100:.1f} % including start-up over {args.static_seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
