"""The publisher's own RTMP client: AMF0, the chunk stream and FLV tags on their own, then
publishing to a real nginx-rtmp (directly and through a TLS front end) and decoding the
recording back; refusals said plainly, without the key; a silent ingest ends the connect
at its deadline while every other thread runs on; while publishing, what the ingest sends
(pings, acknowledgement windows, an error status, a close) is answered or ends the session."""

import json
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from broadcaster.config import AudioSettings, OutputSettings, VideoSettings
from broadcaster.media.slotqueue import MediaSlot
from broadcaster.output.encode import EncoderSession
from broadcaster.transport import amf0
from broadcaster.transport import rtmp_chunk as rc
from broadcaster.transport.flv_tags import FlvTagSplitter
from broadcaster.transport.output import ConnectAbort, open_output, parse_target
from broadcaster.transport.rtmp_client import (
    OUT_CHUNK_SIZE,
    RtmpConnectionLost,
    RtmpRefused,
    RtmpSink,
    open_rtmp,
    parse_rtmp_url,
)
from broadcaster.transport.rtmp_probe import IngestSilent
from tests.support.media import probe
from tests.support.servers.nginx_rtmp import NginxRtmp
from tests.support.servers.publish_auth import PublishAuth
from tests.support.servers.silent import SilentListener
from tests.support.servers.tls_proxy import TlsProxy

KEY = "rtmp_client_key_7c3b1a"
W, H, FPS = 320, 240, 20
SPF = 48000 // FPS


def test_amf0_round_trip():
    values = ["connect", 1.0, {"app": "live", "nested": {"n": 2.5, "ok": True}}, None,
              [1.0, "x"], "é" * 3]
    assert amf0.decode(amf0.encode(*values)) == values
    with pytest.raises(amf0.Amf0Error):
        amf0.decode(amf0.encode("cut")[:-1])


def test_chunks_survive_any_split_and_a_chunk_size_change():
    big = bytes(range(256)) * 40                                    # 10240 bytes: many chunks
    wire = (rc.encode_message(3, rc.COMMAND_AMF0, 0, 0, amf0.encode("_result", 1.0), 128)
            + rc.encode_message(2, rc.SET_CHUNK_SIZE, 0, 0, (4096).to_bytes(4, "big"), 128)
            + rc.encode_message(6, rc.VIDEO, 0x1234567, 1, big, 4096)   # extended timestamp
            + rc.encode_message(4, rc.AUDIO, 40, 1, b"a" * 300, 4096))
    for step in (1, 7, 1000, len(wire)):
        reader = rc.ChunkReader()
        got = []
        for start in range(0, len(wire), step):
            got += reader.feed(wire[start:start + step])
        assert [(m.type_id, m.stream_id, m.timestamp, len(m.payload)) for m in got] == [
            (rc.COMMAND_AMF0, 0, 0, 19), (rc.SET_CHUNK_SIZE, 0, 0, 4),
            (rc.VIDEO, 1, 0x1234567, len(big)), (rc.AUDIO, 1, 40, 300)], step
        assert got[2].payload == big and reader.chunk_size == 4096


def test_flv_tags_are_cut_whole_from_any_split():
    def tag(kind, ts, body):
        size = len(body)
        return (bytes([kind]) + size.to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
                + bytes([ts >> 24]) + bytes(3) + body + (11 + size).to_bytes(4, "big"))
    stream = (b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4) + tag(18, 0, b"meta")
              + tag(9, 0, b"v" * 5000) + tag(8, 0x01000010, b"a" * 7))
    for step in (1, 5, 11, 4096, len(stream)):
        splitter = FlvTagSplitter()
        tags = []
        for start in range(0, len(stream), step):
            tags += splitter.feed(stream[start:start + step])
        assert [(t.type_id, t.timestamp, len(t.body)) for t in tags] == [
            (18, 0, 4), (9, 0, 5000), (8, 0x01000010, 7)], step
        assert splitter.pending == 0


def test_urls_split_as_ffmpeg_splits_them():
    url = parse_rtmp_url("rtmps://live.example.com/app/sub/KEY?x=1")
    assert (url.host, url.port, url.tls, url.app, url.stream_key) == (
        "live.example.com", 443, True, "app", "sub/KEY?x=1")
    assert url.tc_url == "rtmps://live.example.com/app"
    assert parse_rtmp_url("rtmp://h:1936/live/k").tc_url == "rtmp://h:1936/live"
    with pytest.raises(ValueError, match="application and a stream key"):
        parse_rtmp_url("rtmp://h/live")
    for port in ("99999", "abc"):
        with pytest.raises(ValueError, match="port must be a number from 1 to 65535"):
            parse_rtmp_url(f"rtmp://h:{port}/live/k")


def _publish_slots(handle, seconds: float, paced: bool = False) -> None:
    session = EncoderSession(handle.container, W, H, FPS,
                             VideoSettings(bitrate_kbps=600, min_bitrate_kbps=200), AudioSettings())
    rng = np.random.default_rng(5)
    handle.container.start_encoding()
    try:
        for index in range(int(seconds * FPS)):
            y = np.full((H * 3 // 2, W), 16 + index % 200, dtype=np.uint8)
            audio = (rng.random((SPF, 2), dtype=np.float32) - 0.5) * 0.2
            session.write(MediaSlot(index, y, audio))
            if paced:
                time.sleep(1.0 / FPS)
    finally:
        session.close(flush=True)
        handle.close()


def _assert_recorded(nginx, key, seconds):
    time.sleep(0.3)
    (recording,) = nginx.recordings(key)
    report = probe(recording)
    assert (report.video_codec, report.audio_codec) == ("h264", "aac")
    assert (report.width, report.height) == (W, H)
    assert report.video_duration >= seconds - 0.3
    assert report.max_video_gap() <= 1.0 / FPS + 0.0015          # timestamps continuous
    assert report.max_audio_gap() <= 0.0015


def test_publish_to_nginx_and_decode_the_recording(nginx):
    handle = open_output(parse_target(nginx.url(KEY)), OutputSettings())
    assert handle.sink.publishing and handle.sink.stream_id >= 1
    _publish_slots(handle, 2.0)
    assert handle.sink.closed
    _assert_recorded(nginx, KEY, 2.0)
    access = (nginx.logs / "access.log").read_text()
    assert "live" in access


def test_a_player_gets_the_publishers_onmetadata(tmp_path):
    """nginx-rtmp records no metadata; with `meta copy` it hands a player the publisher's
    onMetaData as sent (@setDataFrame), so ffprobe playing the stream sees FFmpeg's fields."""
    nginx = NginxRtmp(tmp_path / "nginx", meta="copy")
    nginx.start()
    try:
        handle = open_output(parse_target(nginx.url(KEY)), OutputSettings())
        publishing = threading.Thread(target=_publish_slots, args=(handle, 4.0, True))
        publishing.start()
        time.sleep(0.5)
        played = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "5000000",
                                 "-show_entries", "format_tags:stream=codec_name,width",
                                 "-of", "json", nginx.url(KEY)],
                                capture_output=True, text=True, timeout=20, check=False)
        publishing.join()
    finally:
        nginx.stop()
    info = json.loads(played.stdout or "{}")
    assert info.get("format", {}).get("tags", {}).get("encoder", "").startswith("Lavf"), played
    assert {s.get("codec_name") for s in info["streams"]} == {"h264", "aac"}


def test_rtmps_through_a_tls_front_end(nginx, tmp_path, monkeypatch):
    with TlsProxy(tmp_path / "tls", nginx.port) as proxy:
        url = f"rtmps://localhost:{proxy.port}/live/{KEY}"
        with pytest.raises(IngestSilent, match="certificate is not trusted") as refused:
            open_rtmp(url, "rtmps://localhost/live/***", connect_timeout_s=3, write_timeout_s=3)
        assert KEY not in str(refused.value)
        monkeypatch.setenv("SSL_CERT_FILE", str(proxy.cert))         # trust the test CA
        handle = open_output(parse_target(url), OutputSettings())
        _publish_slots(handle, 1.5)
        assert proxy.sessions == 1       # the refused attempt never got past TLS
    _assert_recorded(nginx, KEY, 1.5)


def test_a_second_publisher_of_the_key_is_refused_plainly(nginx):
    first = open_output(parse_target(nginx.url(KEY)), OutputSettings())
    try:
        started = time.monotonic()
        with pytest.raises(RtmpRefused, match="the ingest refused the stream key") as refused:
            open_output(parse_target(nginx.url(KEY)), OutputSettings(connect_timeout_s=3))
        assert time.monotonic() - started < 2
        assert "NetStream.Publish.BadName" in str(refused.value)
        assert KEY not in str(refused.value) and refused.value.absent is False
    finally:
        first.container.close()
        first.close()


def test_an_unknown_application_is_a_refusal_not_an_absence(nginx):
    url = nginx.url(KEY).replace("/live/", "/nosuchapp/")
    with pytest.raises(RtmpRefused, match="application 'nosuchapp'") as refused:
        open_output(parse_target(url), OutputSettings(connect_timeout_s=3))
    assert KEY not in str(refused.value)


def test_an_ingest_that_never_answers_connect_stalls_only_its_thread():
    ticks = []
    stop = threading.Event()

    def other_thread():                     # stands for the media loop and /healthz
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.02)

    worker = threading.Thread(target=other_thread)
    worker.start()
    try:
        with SilentListener(handshake=True) as silent:
            started = time.monotonic()
            with pytest.raises(IngestSilent, match="did not answer connect in time") as err:
                open_output(parse_target(f"rtmp://127.0.0.1:{silent.port}/live/{KEY}"),
                            OutputSettings(connect_timeout_s=1))
            took = time.monotonic() - started
            assert silent.handshakes == 1 and silent.bytes_after_handshake > 0   # connect sent
    finally:
        stop.set()
        worker.join()
    assert 0.9 < took < 2.0, took
    assert KEY not in str(err.value)
    during = [t for t in ticks if started <= t <= started + took]
    assert len(during) >= took / 0.02 * 0.5, len(during)     # the other thread kept running
    assert max(np.diff(during)) < 0.3


def test_an_ingest_that_goes_silent_after_connect_is_given_up_at_the_deadline():
    with SilentListener(answer_connect=True) as silent:
        started = time.monotonic()
        with pytest.raises(IngestSilent, match="did not answer createStream in time") as err:
            open_output(parse_target(f"rtmp://127.0.0.1:{silent.port}/live/{KEY}"),
                        OutputSettings(connect_timeout_s=1))
        assert time.monotonic() - started < 2.0
        assert KEY not in str(err.value)


def test_the_connect_guard_aborts_a_connect_in_progress():
    with SilentListener(handshake=True) as silent:
        connecting = ConnectAbort()
        threading.Timer(0.3, connecting.abort).start()
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            open_output(parse_target(f"rtmp://127.0.0.1:{silent.port}/live/{KEY}"),
                        OutputSettings(connect_timeout_s=10), connecting=connecting)
        assert time.monotonic() - started < 2


def _flv(*tags) -> bytes:
    out = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)
    for kind, ts, body in tags:
        out += (bytes([kind]) + len(body).to_bytes(3, "big") + ts.to_bytes(3, "big") + b"\x00"
                + bytes(3) + body + (11 + len(body)).to_bytes(4, "big"))
    return out


def _ingest_side():
    """A publishing RtmpSink on one end of a socket pair; the other end plays the ingest."""
    ours, ingest = socket.socketpair()
    sink = RtmpSink(ours, parse_rtmp_url(f"rtmp://127.0.0.1/live/{KEY}"),
                    "rtmp://127.0.0.1/live/***", 2.0)
    sink.stream_id, sink.publishing = 1, True
    ingest.settimeout(2)
    return sink, ingest


def _read_messages(ingest, reader, count):
    got = []
    while len(got) < count:
        got += reader.feed(ingest.recv(65536))
    return got


def test_while_publishing_pings_are_answered_and_windows_acknowledged():
    sink, ingest = _ingest_side()
    reader = rc.ChunkReader()
    reader.chunk_size = OUT_CHUNK_SIZE        # (publish() announced it with Set Chunk Size)
    try:
        ingest.sendall(rc.encode_message(2, rc.WINDOW_ACK_SIZE, 0, 0, (100).to_bytes(4, "big"), 128)
                       + rc.encode_message(2, rc.USER_CONTROL, 0, 0,
                                           (6).to_bytes(2, "big") + (123456).to_bytes(4, "big"), 128)
                       + rc.encode_message(3, rc.COMMAND_AMF0, 0, 1, amf0.encode(
                           "onStatus", 0.0, None, {"level": "status", "code": "x"}) + bytes(80), 128))
        time.sleep(0.05)
        meta = amf0.encode("onMetaData", {"width": 320.0})
        sink.write(_flv((18, 0, meta), (9, 0, b"\x17" + b"v" * 5000), (8, 40, b"\xaf\x01aa")))
        got = _read_messages(ingest, reader, 5)
        kinds = [m.type_id for m in got]
        assert kinds == [rc.USER_CONTROL, rc.ACKNOWLEDGEMENT, rc.DATA_AMF0, rc.VIDEO, rc.AUDIO]
        assert got[0].payload == (7).to_bytes(2, "big") + (123456).to_bytes(4, "big")
        assert int.from_bytes(got[1].payload, "big") >= 100       # all bytes received so far
        assert amf0.decode(got[2].payload)[:2] == ["@setDataFrame", "onMetaData"]
        assert (got[3].timestamp, len(got[3].payload), got[4].timestamp) == (0, 5001, 40)
        assert {m.stream_id for m in got[2:]} == {1}
    finally:
        sink.close()
        ingest.close()


def test_an_error_status_or_a_closed_connection_ends_publishing():
    sink, ingest = _ingest_side()
    try:
        ingest.sendall(rc.encode_message(5, rc.COMMAND_AMF0, 0, 1, amf0.encode(
            "onStatus", 0.0, None, {"level": "error", "code": "NetStream.Publish.BadName",
                                    "description": f"{KEY} is taken"}), 128))
        time.sleep(0.05)
        with pytest.raises(RtmpConnectionLost, match="refused the stream key") as lost:
            sink.write(_flv((8, 0, b"\xaf\x01aa")))
        assert KEY not in str(lost.value)
    finally:
        sink.close()
        ingest.close()
    sink, ingest = _ingest_side()
    ingest.close()
    time.sleep(0.05)
    with pytest.raises(RtmpConnectionLost, match="closed the connection|lost"):
        sink.write(_flv((8, 0, b"\xaf\x01aa")))
    sink.close()


def test_a_key_the_platform_rejects_is_a_refusal_without_the_key(tmp_path):
    with PublishAuth({KEY}) as auth:
        nginx = NginxRtmp(tmp_path / "nginx", on_publish=auth.url)
        nginx.start()
        try:
            wrong = "wrong_key_5e2a9d"
            started = time.monotonic()
            with pytest.raises(RtmpRefused, match="refused the stream key") as refused:
                open_output(parse_target(nginx.url(wrong)), OutputSettings(connect_timeout_s=3))
            assert time.monotonic() - started < 2.5
            assert wrong not in str(refused.value) and refused.value.absent is False
            handle = open_output(parse_target(nginx.url(KEY)), OutputSettings())
            _publish_slots(handle, 1.0)
        finally:
            nginx.stop()
        assert auth.asked == [wrong, KEY]
    _assert_recorded(nginx, KEY, 1.0)
