"""`broadcaster run` over SRT to a real srt-live-transmit (caller and listener mode), decoded
with PyAV; a wrong passphrase is one clear error in the log and the broadcaster keeps going."""

import csv
import signal
import time

import pytest

from tests.support.broadcaster_proc import run_broadcaster, start_broadcaster, write_config
from tests.support.media import probe
from tests.support.ports import free_udp_port
from tests.support.processes import stop
from tests.support.servers.srt import SLT, start_receiver, stop_receiver

pytestmark = pytest.mark.skipif(SLT is None, reason="srt-live-transmit (Debian srt-tools) not installed")
PASSPHRASE = "correct-horse-battery"
STREAMID = "sk_srt_5e4d3c2b1a"


def config(tmp_path, **ratecontrol) -> str:
    return str(write_config(tmp_path / "config.yaml", control={"enabled": False},
                            output={"reconnect": {"initial_s": 0.5, "max_s": 1.0}},
                            ratecontrol=ratecontrol))


def assert_clean_stream(path, width, height, fps, min_seconds):
    report = probe(path)
    assert report.video_codec == "h264" and report.audio_codec == "aac"
    assert (report.width, report.height) == (width, height)
    assert report.audio_rate == 48000 and report.audio_channels == 2
    assert report.fps == pytest.approx(fps, rel=0.02)
    assert report.video_duration >= min_seconds
    assert report.max_video_gap() <= 1.0 / fps + 0.0015
    assert report.max_audio_gap() <= 0.0015


def test_srt_caller_push_to_a_listener_decodes_as_h264_aac_with_a_link_trace(tmp_path):
    port = free_udp_port()
    out = tmp_path / "received.ts"
    rx = start_receiver(f"srt://:{port}?mode=listener&latency=200&passphrase={PASSPHRASE}", out)
    trace = tmp_path / "trace.csv"
    try:
        time.sleep(0.3)
        result = run_broadcaster(
            "run", "-c", config(tmp_path, trace=str(trace)), "--responder", "script",
            "--output", f"srt://127.0.0.1:{port}?streamid={STREAMID}&passphrase={PASSPHRASE}",
            "--duration", "5", "--fps", "25", timeout=90)
    finally:
        time.sleep(0.5)
        stop_receiver(rx)
    log = result.stderr + result.stdout
    assert result.returncode == 0, log[-3000:]
    assert PASSPHRASE not in log and STREAMID not in log
    assert "SRT caller connected" in log and "encrypted" in log
    assert_clean_stream(out, 854, 480, 25, min_seconds=4.0)
    rows = list(csv.DictReader(trace.open()))
    measured = [r for r in rows if r["connected"] == "1" and r["send_kbps"]]
    assert len(measured) >= 30                       # ~10 samples a second while on air
    assert max(float(r["send_kbps"]) for r in measured) > 300   # the link carried the stream
    assert all(int(r["frames_skipped"]) == 0 for r in rows)    # an unshaped loopback: no cuts
    # the overhead is measured: MPEG-TS (AAC fills three 188-byte packets a frame) and
    # libsrt's headers carry well over the 6 % the controller used to assume
    factors = sorted(float(r["wire_factor"]) for r in measured if r["wire_factor"])
    assert len(factors) >= 20
    assert 1.06 < factors[len(factors) // 2] < 1.6, factors


def test_srt_listener_mode_serves_a_caller_and_stops_promptly_without_one(tmp_path):
    port = free_udp_port()
    out = tmp_path / "pulled.ts"
    proc = start_broadcaster("run", "-c", config(tmp_path), "--responder", "script",
                             "--output", f"srt://:{port}?mode=listener&latency_ms=200",
                             "--duration", "5", "--fps", "25")
    rx = None
    try:
        time.sleep(2.0)
        rx = start_receiver(f"srt://127.0.0.1:{port}?mode=caller&latency=200", out)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
        if rx is not None:
            time.sleep(0.5)
            stop_receiver(rx)
    assert proc.returncode == 0, err[-3000:]
    assert "waiting for a caller" in err and "SRT listener connected" in err
    assert_clean_stream(out, 854, 480, 25, min_seconds=1.5)

    # nobody calls: the end of the broadcast must not wait in the listener
    started = time.monotonic()
    result = run_broadcaster("run", "-c", config(tmp_path), "--responder", "script",
                             "--output", f"srt://:{free_udp_port()}?mode=listener",
                             "--duration", "2", "--fps", "25", timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 30


def test_wrong_passphrase_is_one_clear_error_and_the_broadcast_keeps_running(tmp_path):
    port = free_udp_port()
    rx = start_receiver(f"srt://:{port}?mode=listener&passphrase={PASSPHRASE}", tmp_path / "none.ts")
    wrong = "not-the-right-one-42"
    try:
        time.sleep(0.3)
        result = run_broadcaster("run", "-c", config(tmp_path), "--responder", "script",
                                 "--output", f"srt://127.0.0.1:{port}?passphrase={wrong}",
                                 "--duration", "6", "--fps", "25", timeout=90)
    finally:
        stop_receiver(rx)
    log = result.stderr
    assert result.returncode == 0, log[-3000:]      # a live service keeps trying
    assert wrong not in log and PASSPHRASE not in log
    assert log.count("rejected our passphrase") == 1
    assert "level=error" in log.split("rejected our passphrase")[0].splitlines()[-1]
    assert log.count("wrong passphrase") >= 2       # each retry, as a warning
    assert "broadcast ended after" in log
