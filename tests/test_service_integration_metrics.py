"""/metrics and /healthz of the real `broadcaster run` pushing to a real nginx-rtmp ingest,
parsed with the Prometheus client's parser; /healthz follows the ingest going down and up."""

import re
import time

from tests.support.broadcaster_proc import (
    FAST_RECONNECT,
    healthz,
    metrics,
    sample,
    start_broadcaster,
    write_config,
)
from tests.support.http import http_json
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

KEY = "metrics_key_7a2e"

EXPECTED = [
    "broadcaster_fps_out", "broadcaster_frames_out", "broadcaster_frames_repeated",
    "broadcaster_frames_dropped", "broadcaster_encoder_bitrate_bps", "broadcaster_send_rate_bps",
    "broadcaster_queue_delay_seconds", "broadcaster_reconnects", "broadcaster_connect_attempts",
    "broadcaster_chat_messages_in",
    "broadcaster_chat_messages_selected", "broadcaster_chat_messages_dropped",
    "broadcaster_stage_latency_seconds", "broadcaster_link_bytes",
    "broadcaster_link_bytes_per_second", "broadcaster_on_air",
]
STAGES = ("asr", "llm_first_token", "llm_first_sentence", "tts_first_audio", "render", "mux")


def test_metrics_and_healthz_follow_a_real_run(nginx, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.yaml",
                          output={"url": nginx.url(KEY), "reconnect": FAST_RECONNECT},
                          video={"bitrate_kbps": 800}, control={"port": port})
    proc = start_broadcaster("run", "-c", str(config), "--size", "320x240", "--fps", "20")
    try:
        wait_for(lambda: healthz(port)[0] == 200, 15, what="/healthz 200 on air")
        # viewer chat through the control endpoint: one answered, one duplicate, one empty
        for text in ("hello there, how are you?", "hello there, how are you?", ""):
            http_json("POST", f"http://127.0.0.1:{port}/chat", {"user": "alice", "text": text})
        time.sleep(3)                        # a few seconds on air: rates fill their windows
        fam = metrics(port)
        assert sample(fam, "broadcaster_chat_messages_in", "broadcaster_chat_messages_in_total",
                      source="http") == 3
        assert sample(fam, "broadcaster_chat_messages_selected",
                      "broadcaster_chat_messages_selected_total", source="http") == 1
        for reason in ("duplicate", "empty"):
            assert sample(fam, "broadcaster_chat_messages_dropped",
                          "broadcaster_chat_messages_dropped_total", reason=reason) == 1, reason
        wait_for(lambda: sample(metrics(port), "broadcaster_stage_latency_seconds",
                                "broadcaster_stage_latency_seconds_count",
                                stage="tts_first_audio") >= 1, 10, what="the answer's first audio")
        fam = metrics(port)
        for stage in ("llm_first_token", "llm_first_sentence", "tts_first_audio"):
            assert sample(fam, "broadcaster_stage_latency_seconds",
                          "broadcaster_stage_latency_seconds_count", stage=stage) == 1, stage
        for name in EXPECTED:
            assert name in fam, name
        assert sample(fam, "broadcaster_on_air") == 1
        assert 17 <= sample(fam, "broadcaster_fps_out") <= 23
        assert sample(fam, "broadcaster_frames_out", "broadcaster_frames_out_total") >= 60
        assert sample(fam, "broadcaster_frames_dropped", "broadcaster_frames_dropped_total") == 0
        assert sample(fam, "broadcaster_encoder_bitrate_bps") == 800_000
        assert sample(fam, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                      link="video_push", direction="up") > 10_000
        push_rate = sample(fam, "broadcaster_link_bytes_per_second", link="video_push",
                           direction="up")
        assert push_rate > 1000
        # the send rate gauge is the measured push rate, in bits per second
        send = sample(fam, "broadcaster_send_rate_bps")
        assert 0.5 * push_rate * 8 <= send <= 2 * push_rate * 8, (send, push_rate)
        assert 0 <= sample(fam, "broadcaster_queue_delay_seconds") < 1.0
        assert sample(fam, "broadcaster_reconnects", "broadcaster_reconnects_total") == 0
        assert sample(fam, "broadcaster_connect_attempts",
                      "broadcaster_connect_attempts_total") == 1
        for stage in STAGES:
            sample(fam, "broadcaster_stage_latency_seconds",
                   "broadcaster_stage_latency_seconds_count", stage=stage)
        for stage in ("render", "mux"):
            assert sample(fam, "broadcaster_stage_latency_seconds",
                          "broadcaster_stage_latency_seconds_count", stage=stage) >= 40, stage
        status, body = healthz(port)
        assert status == 200 and body["live"] and body["on_air"] and not body["degraded"]

        nginx.stop()                          # the ingest goes away mid-run
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(healthz(port)),
                                15, what="/healthz 503 while the ingest is down")
        assert body["live"] and not body["on_air"] and body["degraded"]
        assert "ingest" in body["reasons"] and body["reasons"]["ingest"], body
        assert KEY not in str(body)
        fam = metrics(port)
        assert sample(fam, "broadcaster_on_air") == 0
        # off air, frames are discarded, not counted as sent
        offline_from = sample(fam, "broadcaster_frames_out", "broadcaster_frames_out_total")
        time.sleep(2.5)                      # (fps_out's window is 2 s)
        fam = metrics(port)
        assert sample(fam, "broadcaster_frames_out", "broadcaster_frames_out_total") == offline_from
        assert sample(fam, "broadcaster_fps_out") == 0
        assert sample(fam, "broadcaster_connect_attempts", "broadcaster_connect_attempts_total") >= 2

        nginx.start()                         # and comes back
        wait_for(lambda: healthz(port)[0] == 200, 15, what="/healthz 200 after the ingest returned")
        status, body = healthz(port)
        assert body["on_air"] and not body["degraded"], body
        fam = metrics(port)
        assert sample(fam, "broadcaster_on_air") == 1
        assert sample(fam, "broadcaster_reconnects", "broadcaster_reconnects_total") == 1
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert KEY not in out + err
    ended = re.search(r"broadcast ended after (\d+) frames .*: (\d+) sent, (\d+) discarded while "
                      r"off air", err)
    assert ended, err[-2000:]
    composed, sent, discarded = map(int, ended.groups())
    assert discarded >= 40 and sent >= 60 and sent + discarded <= composed, ended.group(0)
