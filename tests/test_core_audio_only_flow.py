"""Audio reaches the ingest slot by slot while rate control sends no picture.

FFmpeg's muxer interleaves: by default it holds every packet until each stream has one, or
for 10 s (live outputs now open with 0.2 s). When the link fell below the floor and the rate controller went to audio only,
nothing at all left the muxer for 10 s (the step test saw the stream go silent, RTMP and
SRT alike). Here a real libx264/AAC session writes to a real nginx-rtmp and a real
srt-live-transmit through open_output, and the bytes that reach the socket are counted
after every slot.
"""

import time

import numpy as np
import pytest

from broadcaster.config import AudioSettings, OutputSettings, VideoSettings
from broadcaster.media.slotqueue import MediaSlot
from broadcaster.output.encode import EncoderSession
from broadcaster.transport.output import open_output, parse_target
from broadcaster.transport.tcpinfo import find_tcp_socket_fd, read_tcp_info
from tests.support.ports import free_udp_port
from tests.support.servers.srt import SLT, start_receiver, stop_receiver

W, H, FPS = 320, 240, 20
SPF = 48000 // FPS


def _slot(index, rng):
    y = rng.integers(0, 255, size=(H * 3 // 2, W), dtype=np.uint8)
    audio = (rng.random((SPF, 2), dtype=np.float32) - 0.5) * 0.2   # a talking show's bed
    return MediaSlot(index, y, audio)


def _bytes_per_slot(handle, sent, with_picture=20, audio_only=40):
    """Bytes sent after each slot, from the last slot with a picture on."""
    session = EncoderSession(handle.container, W, H, FPS,
                             VideoSettings(bitrate_kbps=800, min_bitrate_kbps=200), AudioSettings())
    rng = np.random.default_rng(3)
    counts = []
    try:
        for index in range(with_picture + audio_only):
            session.write(_slot(index, rng), skip_video=index >= with_picture)
            time.sleep(0.005)                       # loopback: let the kernel send it
            counts.append(sent())
    finally:
        session.close(flush=False)
        handle.close()
    tail = counts[with_picture - 1:]
    return [b - a for a, b in zip(tail, tail[1:])]


def _assert_audio_flows(growth):
    assert len(growth) == 40
    # once the muxer's 0.2 s interleaving window (4 slots) has filled, every audio-only
    # slot (2400 samples: two or three AAC packets) goes out with the next one
    assert all(g > 0 for g in growth[5:]), growth
    kbps = sum(growth) * 8 / 1000 / (len(growth) / FPS)
    assert kbps > 60, (kbps, growth)                # ~128 kbit/s of AAC plus the container


def test_rtmp_audio_only_slots_reach_the_socket_at_once(nginx):
    target = parse_target(nginx.url("audioonly"))
    handle = open_output(target, OutputSettings())
    sock = []

    def sent():                    # FFmpeg connects when the first packet is muxed
        if not sock:
            sock.append(find_tcp_socket_fd("127.0.0.1", nginx.port))
            assert sock[0] is not None, "no RTMP socket to read"
        return read_tcp_info(sock[0]).bytes_sent
    growth = _bytes_per_slot(handle, sent)
    _assert_audio_flows(growth)


@pytest.mark.skipif(SLT is None, reason="srt-live-transmit (Debian srt-tools) not installed")
def test_srt_audio_only_slots_reach_the_socket_at_once(tmp_path):
    port = free_udp_port()
    rx = start_receiver(f"srt://:{port}?mode=listener&latency=200", tmp_path / "rx.ts")
    try:
        time.sleep(0.3)
        handle = open_output(parse_target(f"srt://127.0.0.1:{port}"), OutputSettings())
        growth = _bytes_per_slot(handle, lambda: handle.sink.bytes_written)
    finally:
        stop_receiver(rx)
    _assert_audio_flows(growth)
