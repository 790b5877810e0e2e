#!/usr/bin/env python3
"""Studio preview cost, against composing the picture (the baseline, measured in the same run).

Composes N frames of the default scene (the puppet speaking, a caption) and times, per frame:
  compose:          Compositor.compose (what every broadcast pays anyway)
  tick, unwatched:  PreviewFeed.on_tick with no page watching (what a broadcast pays for the
                    studio when nobody looks)
  tick, watched:    PreviewFeed.on_tick while a page watches (keeps a reference, <= 4 per s)
  jpeg:             PreviewFeed.jpeg for a new picture (yuv420p -> RGB -> JPEG q70), paid only
                    for pictures a page fetched, at most 4 per second
and prints each in microseconds and as a ratio of compose, then the CPU share of one watched
preview (4 JPEGs/s) and of a real-time compose at the scene's frame rate.

    .venv/bin/python tools/bench_preview.py [--frames 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.avatar.factory import build_anchor  # noqa: E402
from broadcaster.render.compose import Compositor  # noqa: E402
from broadcaster.scene import load_scene  # noqa: E402
from broadcaster.service.preview import PreviewFeed  # noqa: E402
from broadcaster.stages import Tick  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    scene = load_scene(ROOT / "scenes" / "default.yaml")
    compositor = Compositor(scene, build_anchor(scene))
    fps = scene.canvas.fps
    rate = 48000 // fps
    t = np.arange(rate) / 48000
    frames, compose_s = [], 0.0
    for n in range(args.frames):
        speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(n / 3))).astype(np.float32)
        started = time.perf_counter()
        frames.append(compositor.compose(n, speech, "A caption on air while the anchor speaks."))
        compose_s += time.perf_counter() - started
    compose_us = compose_s / args.frames * 1e6

    def ticks(feed: PreviewFeed, clock: list[float]) -> float:
        started = time.perf_counter()
        for n, frame in enumerate(frames):
            clock[0] = n / fps
            feed.on_tick(Tick(n, None, 0.0, True, False, 0.0, frame))
        return (time.perf_counter() - started) / len(frames) * 1e6

    clock = [0.0]
    unwatched = PreviewFeed(clock=lambda: clock[0])
    unwatched_us = ticks(unwatched, clock)
    assert unwatched.jpeg() is None          # nothing was kept while nobody watched

    clock = [0.0]
    watched = PreviewFeed(watch_s=1e9, clock=lambda: clock[0])
    watched.watch()
    watched_us = ticks(watched, clock)

    feed = PreviewFeed(max_fps=1e9, watch_s=1e9)
    feed.watch()
    encode_s = 0.0
    for n, frame in enumerate(frames):
        feed.on_tick(Tick(n, None, 0.0, True, False, 0.0, frame))
        started = time.perf_counter()
        feed.jpeg()
        encode_s += time.perf_counter() - started
    jpeg_us = encode_s / len(frames) * 1e6

    w, h = scene.canvas.width, scene.canvas.height
    print(f"default scene {w}x{h}@{fps}, {args.frames} frames")
    print(f"{'':18}{'us/frame':>10}{'x compose':>11}")
    for name, us in (("compose", compose_us), ("tick, unwatched", unwatched_us),
                     ("tick, watched", watched_us), ("jpeg (per picture)", jpeg_us)):
        print(f"{name:18}{us:10.1f}{us / compose_us:11.3f}")
    print(f"CPU share: compose at {fps} fps {compose_us * fps / 1e4:.1f} %, "
          f"one watched preview at 4 pictures/s {jpeg_us * 4 / 1e4:.1f} %, "
          f"unwatched {unwatched_us * fps / 1e4:.3f} %")


if __name__ == "__main__":
    main()
