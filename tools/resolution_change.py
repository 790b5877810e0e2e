"""Does a mid-stream picture size change survive an ingest and a decoder? (issue 13)

    .venv/bin/python tools/resolution_change.py [--out DIR]

Encodes 4 s of 1280x720@25 with libx264 as the broadcaster does, then, at a keyframe, a new
encoder at 640x360 for 4 s more, whose first keyframe carries its own SPS/PPS in-band (no
new FLV sequence header: the FLV muxer keeps the one from the stream's start). The same
packets go (1) through a real nginx-rtmp, recorded (FLV), (2) into an MPEG-TS file, as SRT
would carry them. Each result is decoded with PyAV (FFmpeg's decoder) and the frames of
each size, the decode errors and what the container header says are printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers.nginx_rtmp import NginxRtmp

FPS, SECONDS = 25, 4
SIZES = ((1280, 720), (640, 360))


X264 = {"preset": "ultrafast", "tune": "zerolatency",
        "x264-params": f"keyint={FPS * 2}:min-keyint={FPS * 2}:scenecut=0"}


def _setup(cc, width: int, height: int) -> None:
    cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
    cc.time_base = Fraction(1, FPS)
    cc.framerate = Fraction(FPS, 1)
    cc.bit_rate = 1_500_000
    cc.gop_size = FPS * 2
    cc.max_b_frames = 0
    cc.options = dict(X264)


def _frames(width: int, height: int, start: int):
    for i in range(FPS * SECONDS):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, :, 0] = (np.arange(width) + 4 * (start + i)) % 256
        img[: height // 2, :, 1] = 200
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = start + i
        yield frame


def write(url: str, fmt: str) -> None:
    """The first half with the stream's own encoder (the muxer's header, SPS/PPS out of band
    as for FLV), the second with a new encoder at the smaller size (SPS/PPS in-band)."""
    out = av.open(url, "w", format=fmt)
    stream = out.add_stream("libx264", rate=FPS)
    _setup(stream.codec_context, *SIZES[0])
    second = av.CodecContext.create("libx264", "w")
    _setup(second, *SIZES[1])
    start = 0
    for enc, size in ((stream.codec_context, SIZES[0]), (second, SIZES[1])):
        for frame in [*_frames(*size, start), None]:
            for packet in (stream.encode(frame) if enc is stream.codec_context
                           else enc.encode(frame)):
                packet.stream = stream
                out.mux(packet)
        start += FPS * SECONDS
    out.close()


def read(path: Path) -> dict:
    sizes: dict[str, int] = {}
    errors = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        header = f"{vs.codec_context.width}x{vs.codec_context.height}"
        for packet in c.demux(vs):
            try:
                for frame in packet.decode():
                    key = f"{frame.width}x{frame.height}"
                    sizes[key] = sizes.get(key, 0) + 1
            except av.error.FFmpegError:
                errors += 1
    return {"header": header, "frames": sizes, "decode_errors": errors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None)
    args = p.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="reschange-"))
    work.mkdir(parents=True, exist_ok=True)
    nginx = NginxRtmp(work / "nginx")
    nginx.start()
    try:
        write(nginx.url("size_change"), "flv")
    finally:
        nginx.stop()
    recorded = nginx.recordings("size_change")
    ts = work / "size_change.ts"
    write(str(ts), "mpegts")
    sent = {f"{w}x{h}": FPS * SECONDS for w, h in SIZES}
    print(f"sent: {sent} (the size changes at a keyframe, {SECONDS} s in)")
    for name, path in (("nginx-rtmp recording (FLV)", recorded[-1] if recorded else None),
                       ("MPEG-TS (as SRT carries it)", ts)):
        print(f"{name}: " + ("nothing recorded" if path is None else str(read(path))))


if __name__ == "__main__":
    main()
