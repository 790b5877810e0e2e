#!/usr/bin/env python3
"""RTMP push cost: the publisher's Python RTMP client against FFmpeg's own rtmp:// protocol.

One run encodes --seconds of a moving 1280x720@25 picture (libx264, --kbps) and 48 kHz stereo
AAC once, into memory, then pushes the same packets to a real nginx-rtmp (record off) both
ways, alternating, --rounds times each, as fast as the ingest takes them:
  ffmpeg:  av.open("rtmp://...", "w", format="flv")        (FFmpeg's RTMP client; the baseline)
  python:  av.open(RtmpSink, "w", format="flv")            (broadcaster.transport.rtmp_client)
It prints, for each, this process's CPU milliseconds per video frame pushed (user + system,
connect included) and the ratio python/ffmpeg. Encoding is not counted: both mux packets only.

    .venv/bin/python tools/bench_rtmp_push.py [--seconds 20] [--kbps 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.transport.output import LIVE_MUX_OPTIONS
from broadcaster.transport.rtmp_client import open_rtmp
from tests.support.servers.nginx_rtmp import NginxRtmp

W, H, FPS, RATE = 1280, 720, 25, 48000


def encode(seconds: float, kbps: int) -> bytes:
    """An FLV in memory: a moving gradient with noise, and a tone with noise."""
    buf = io.BytesIO()
    out = av.open(buf, "w", format="flv")
    video = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": str(2 * FPS)})
    video.width, video.height, video.pix_fmt = W, H, "yuv420p"
    video.bit_rate = kbps * 1000
    audio = out.add_stream("aac", rate=RATE, layout="stereo")
    audio.bit_rate = 128000
    rng = np.random.default_rng(1)
    base = np.tile(np.linspace(16, 235, W, dtype=np.float32), (H, 1))
    spf = RATE // FPS
    apts = 0
    for i in range(int(seconds * FPS)):
        y = (np.roll(base, i * 8, axis=1) + rng.normal(0, 6, (H, W))).clip(0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.vstack([y, np.full((H // 2, W), 128, np.uint8)]),
                                           format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, FPS)
        out.mux(video.encode(frame))
        t = (np.arange(spf) + apts) / RATE
        pcm = (0.2 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 0.02, spf)).astype(np.float32)
        aframe = av.AudioFrame.from_ndarray(np.vstack([pcm, pcm]), format="fltp", layout="stereo")
        aframe.sample_rate, aframe.pts = RATE, apts
        apts += spf
        out.mux(audio.encode(aframe))
    out.mux(video.encode(None))
    out.mux(audio.encode(None))
    out.close()
    return buf.getvalue()


def push(flv: bytes, opener, key: str) -> tuple[float, int]:
    """CPU seconds of this process to push every packet of flv, and the video frames pushed."""
    source = av.open(io.BytesIO(flv), "r", format="flv")
    start = time.process_time()
    container, sink = opener(key)
    streams = {s.index: container.add_stream_from_template(s) for s in source.streams}
    frames = 0
    for packet in source.demux():
        if packet.dts is None:
            continue
        packet.stream = streams[packet.stream.index]
        container.mux(packet)
        frames += packet.stream.type == "video"
    container.close()
    if sink is not None:
        sink.close()
    took = time.process_time() - start
    source.close()
    return took, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kbps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    flv = encode(args.seconds, args.kbps)
    print(f"pushing {len(flv) / 1e6:.1f} MB of FLV ({args.seconds:.0f} s of {W}x{H}@{FPS}, "
          f"{args.kbps} kbit/s video + 128 kbit/s AAC), {args.rounds} rounds each way")
    with tempfile.TemporaryDirectory() as tmp:
        nginx = NginxRtmp(Path(tmp) / "nginx", record=False)
        nginx.start()
        try:
            def ffmpeg(key):
                return av.open(nginx.url(key), "w", format="flv",
                               container_options=LIVE_MUX_OPTIONS), None

            def python(key):
                sink = open_rtmp(nginx.url(key), "bench", connect_timeout_s=5, write_timeout_s=5)
                return av.open(sink, "w", format="flv", container_options=LIVE_MUX_OPTIONS), sink

            per_frame = {"ffmpeg": [], "python": []}
            for r in range(args.rounds):
                for name, opener in (("ffmpeg", ffmpeg), ("python", python)):
                    took, frames = push(flv, opener, f"bench{name}{r}")
                    per_frame[name].append(took / frames * 1000)
        finally:
            nginx.stop()
    for name, values in per_frame.items():
        print(f"{name:7s} CPU per video frame pushed: median {statistics.median(values):.3f} ms "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")
    ratio = statistics.median(per_frame["python"]) / statistics.median(per_frame["ffmpeg"])
    print(f"python / ffmpeg: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
