"""SrtSink against a real SRT peer (srt-live-transmit from srt-tools) on loopback."""

from __future__ import annotations

import fractions
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from broadcaster.ratecontrol.srt_meter import SrtLinkMeter
from broadcaster.transport.srt import SrtConnectError, SrtConnectionLost, open_srt
from tests.support.ports import free_udp_port
from tests.support.servers.srt import SLT, connect_retry, start_receiver, stop_receiver

pytestmark = pytest.mark.skipif(SLT is None, reason="srt-live-transmit (Debian srt-tools) not installed")

FPS = 20


def mux_test_stream(sink, seconds: float, *, on_frame=None) -> int:
    """Encode `seconds` of moving test pattern + 440 Hz tone (libx264 + aac) into sink."""
    container = av.open(sink, mode="w", format="mpegts")
    v = container.add_stream("libx264", rate=FPS)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    v.bit_rate = 800_000
    v.codec_context.options = {"preset": "ultrafast", "maxrate": "800k", "bufsize": "400k"}
    v.codec_context.gop_size = 40
    a = container.add_stream("aac", rate=48000)
    a.layout = "stereo"
    a.bit_rate = 128_000
    yy, xx = np.mgrid[0:240, 0:320]
    frames = int(seconds * FPS)
    samples_per_frame = 48000 // FPS
    for n in range(frames):
        img = np.stack([(xx + 4 * n) % 256, (yy + 2 * n) % 256, (xx ^ yy) % 256], -1).astype(np.uint8)
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts = n
        vf.time_base = fractions.Fraction(1, FPS)
        for pkt in v.encode(vf):
            container.mux(pkt)
        t = (np.arange(samples_per_frame) + n * samples_per_frame) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([tone, tone]).reshape(1, -1), format="flt",
                                        layout="stereo")
        af.sample_rate = 48000
        af.pts = n * samples_per_frame
        af.time_base = fractions.Fraction(1, 48000)
        for pkt in a.encode(af):
            container.mux(pkt)
        if on_frame:
            on_frame(n)
        time.sleep(1.0 / FPS / 4)    # roughly paced, like a live source
    for s in (v, a):
        for pkt in s.encode(None):
            container.mux(pkt)
    container.close()
    return frames


def decode_counts(path: Path) -> tuple[int, int, str, str]:
    with av.open(str(path)) as c:
        vs, aus = c.streams.video[0], c.streams.audio[0]
        names = (vs.codec_context.name, aus.codec_context.name)
        nv = na = 0
        for frame in c.decode(vs, aus):
            if isinstance(frame, av.VideoFrame):
                nv += 1
            else:
                na += frame.samples
    return nv, na, names[0], names[1]


def test_caller_push_decodes_as_h264_and_aac(tmp_path):
    port = free_udp_port()
    out = tmp_path / "out.ts"
    rx = start_receiver(f"srt://:{port}?mode=listener&latency=120", out)
    try:
        sink = connect_retry(f"srt://127.0.0.1:{port}?latency=120000&streamid=test")
        stats_seen = []
        meter = SrtLinkMeter()

        def tick(n):
            if n % 10 == 0:
                st = sink.stats()
                stats_seen.append(st)
                meter.sample(time.monotonic(), st)
        frames = mux_test_stream(sink, 3.0, on_frame=tick)
        sent_messages = sink.messages_sent
        sink.close()
        time.sleep(0.5)
    finally:
        stop_receiver(rx)
    assert sent_messages * 1316 >= sink.bytes_written - 1316
    nv, na, vname, aname = decode_counts(out)
    assert (vname, aname) == ("h264", "aac")
    assert nv >= frames - 5, (nv, frames)            # all but the encoder tail
    assert na >= 48000 * 2.5
    assert len(stats_seen) >= 5
    assert sum(s.pkt_sent for s in stats_seen) > 0
    assert stats_seen[-1].pkt_sent_total >= sent_messages * 0.5
    assert all(s.rtt_ms > 0 for s in stats_seen)
    assert meter.sample(time.monotonic(), stats_seen[-1]) is not None


def test_listener_mode_accepts_a_caller(tmp_path):
    port = free_udp_port()
    out = tmp_path / "out.ts"
    result = {}

    def serve():
        try:
            result["sink"] = open_srt(f"srt://127.0.0.1:{port}?mode=listener&latency_ms=80",
                                      connect_timeout_s=10)
        except Exception as exc:  # reported by the assert below
            result["error"] = exc
    t = threading.Thread(target=serve)
    t.start()
    time.sleep(0.3)
    rx = start_receiver(f"srt://127.0.0.1:{port}?mode=caller", out)
    try:
        t.join(10)
        assert "error" not in result, result.get("error")
        sink = result["sink"]
        mux_test_stream(sink, 2.0)
        sink.close()
        time.sleep(0.5)
    finally:
        stop_receiver(rx)
    nv, na, vname, aname = decode_counts(out)
    assert (vname, aname) == ("h264", "aac") and nv >= 30


def test_listener_gives_up_when_no_caller_comes():
    port = free_udp_port()
    t0 = time.monotonic()
    with pytest.raises(SrtConnectError, match="no caller within"):
        open_srt(f"srt://127.0.0.1:{port}?mode=listener", connect_timeout_s=0.3)
    assert time.monotonic() - t0 < 2


def test_wrong_passphrase_is_a_clear_error_without_the_secret(tmp_path):
    port = free_udp_port()
    rx = start_receiver(f"srt://:{port}?mode=listener&passphrase=the-right-secret-1",
                        tmp_path / "out.ts")
    try:
        with pytest.raises(SrtConnectError) as info:
            connect_retry(f"srt://127.0.0.1:{port}?passphrase=a-wrong-secret-22")
    finally:
        stop_receiver(rx)
    msg = str(info.value)
    assert msg == f"SRT connection to 127.0.0.1:{port} rejected: wrong passphrase"
    assert "a-wrong-secret-22" not in msg


def test_missing_passphrase_is_rejected_clearly(tmp_path):
    port = free_udp_port()
    rx = start_receiver(f"srt://:{port}?mode=listener&passphrase=the-right-secret-1",
                        tmp_path / "out.ts")
    try:
        with pytest.raises(SrtConnectError, match="rejected: encryption mismatch"):
            connect_retry(f"srt://127.0.0.1:{port}")
    finally:
        stop_receiver(rx)


def test_matching_passphrase_carries_the_stream(tmp_path):
    port = free_udp_port()
    out = tmp_path / "out.ts"
    rx = start_receiver(f"srt://:{port}?mode=listener&passphrase=shared-secret-123&pbkeylen=32",
                        out)
    try:
        sink = connect_retry(f"srt://127.0.0.1:{port}?passphrase=shared-secret-123&pbkeylen=32")
        mux_test_stream(sink, 1.5)
        sink.close()
        time.sleep(0.5)
    finally:
        stop_receiver(rx)
    nv, _, vname, _ = decode_counts(out)
    assert vname == "h264" and nv >= 20


def test_nobody_listening_times_out_clearly():
    port = free_udp_port()
    with pytest.raises(SrtConnectError, match=r"timed out after 300 ms"):
        open_srt(f"srt://127.0.0.1:{port}", connect_timeout_s=0.3)


def test_write_raises_connection_lost_when_the_peer_goes(tmp_path):
    port = free_udp_port()
    rx = start_receiver(f"srt://:{port}?mode=listener", tmp_path / "out.ts")
    sink = connect_retry(f"srt://127.0.0.1:{port}")
    try:
        sink.write(b"\x47" + bytes(187) * 1)
        stop_receiver(rx)
        t0 = time.monotonic()
        with pytest.raises(SrtConnectionLost, match=f"127.0.0.1:{port} lost"):
            while time.monotonic() - t0 < 8:
                sink.write(b"\x47" + bytes(187))
                time.sleep(0.002)
        assert isinstance(SrtConnectionLost("x"), ConnectionError)
        assert time.monotonic() - t0 < 7
    finally:
        sink.close()
