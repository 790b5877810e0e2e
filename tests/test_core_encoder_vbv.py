"""The encoder's VBV follows a lowered bitrate, so keyframes shrink with it.

A real libx264 session (854x480@20, a half-noise picture that fills any bitrate), written
to an FLV file and read back with PyAV: after set_bitrate(300) every keyframe fits the
buffer sized for 300 kbit/s, where the ceiling-sized buffer let each one take ~190 kbit.
"""

import av
import numpy as np
import pytest

from broadcaster.config import AudioSettings, VideoSettings
from broadcaster.media.slotqueue import MediaSlot
from broadcaster.output.codec_options import CodecOptions
from broadcaster.output.encode import EncoderSession

W, H, FPS = 854, 480, 20


def _frames(n, seed=1):
    rng = np.random.default_rng(seed)
    base = np.full((H * 3 // 2, W), 128, np.uint8)
    for _ in range(n):
        y = base.copy()
        y[H // 2:H] = 90 + rng.integers(0, 48, size=(H - H // 2, W), dtype=np.uint8)
        yield y


def _encode(path, schedule, buffer_s=0.5):
    video = VideoSettings(bitrate_kbps=4000, min_bitrate_kbps=250, keyframe_interval_s=1.0,
                          buffer_s=buffer_s)
    container = av.open(str(path), "w", format="flv")
    session = EncoderSession(container, W, H, FPS, video, AudioSettings())
    spf = 48000 // FPS
    index = 0
    for kbps, count in schedule:
        session.set_bitrate(kbps)
        for y in _frames(count, seed=index):
            session.write(MediaSlot(index, y, np.zeros((spf, 2), np.float32)))
            index += 1
    session.close()
    return session


def _video_packets(path):
    with av.open(str(path)) as c:
        return [(float(p.pts * p.time_base), p.size * 8 / 1000, p.is_keyframe)
                for p in c.demux(video=0) if p.size]


def test_keyframes_fit_the_buffer_of_a_lowered_bitrate(tmp_path):
    path = tmp_path / "vbv.flv"
    session = _encode(path, [(2500, 40), (300, 120)])
    packets = _video_packets(path)
    low = [p for p in packets if p[0] >= 3.0]        # a second after the cut to 300 kbit/s
    keyframes = [size for t, size, key in low if key]
    assert len(keyframes) >= 3
    assert max(keyframes) <= 300 * 0.5 * 1.1, keyframes
    rate = sum(size for _, size, _ in low) / (low[-1][0] - low[0][0] + 1 / FPS)
    assert 200 < rate < 380, rate
    assert session.bitrate_kbps == 300


def test_codec_options_reach_the_open_codec_context():
    container = av.open("/dev/null", "w", format="flv")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.codec_context.bit_rate = 1_234_000
    opts = CodecOptions(stream.codec_context)
    assert opts.get_int("b") == 1_234_000
    opts.set_int("bufsize", 777_000)
    assert opts.get_int("bufsize") == 777_000
    container.close()


def _encode_padded(path, fmt, padding_kbps, frames=60):
    video = VideoSettings(bitrate_kbps=1500, min_bitrate_kbps=250, keyframe_interval_s=1.0)
    container = av.open(str(path), "w", format=fmt)
    session = EncoderSession(container, W, H, FPS, video, AudioSettings())
    container.start_encoding()
    spf = 48000 // FPS
    for index, y in enumerate(_frames(frames)):
        session.padding_kbps = padding_kbps if index >= 20 else 0
        session.write(MediaSlot(index, y, np.zeros((spf, 2), np.float32)))
    session.close()
    return session


def test_probe_padding_adds_bytes_a_decoder_skips(tmp_path):
    """A probe's filler: the stream grows by the padding rate, every frame still decodes."""
    for fmt in ("flv", "mpegts"):
        plain = _encode_padded(tmp_path / f"plain.{fmt}", fmt, 0)
        padded = _encode_padded(tmp_path / f"padded.{fmt}", fmt, 2000)
        seconds = 40 / FPS
        assert padded.bytes_padding * 8 / 1000 / seconds == pytest.approx(2000, rel=0.05)
        with av.open(str(tmp_path / f"padded.{fmt}")) as c:
            sizes = [p.size for p in c.demux(video=0) if p.size]
            c.seek(0)
            frames = [f for f in c.decode(video=0)]
        assert len(frames) == 60, fmt
        assert sum(sizes) >= plain.bytes_video + padded.bytes_padding * 0.95, fmt
        # the picture is the encoder's own: filler changes nothing a viewer sees
        top = frames[-1].to_ndarray(format="gray")[: H // 2]
        assert abs(float(top.mean()) - 128) < 3, fmt
