"""A simulated run through ServiceRuntime's hooks, with every real service part underneath:
sd_notify on a real socket, /metrics and /healthz over HTTP, JSON logs; with a stream key,
an API key and an SRT passphrase set, none appears in any log line, metric, health body,
notification or status line."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import urllib.error
import urllib.request

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from broadcaster.credentials import read_credentials
from broadcaster.logsetup import configure_logging
from broadcaster.service.runtime import ServiceRuntime
from broadcaster.service.status_view import render_status_line
from tests.support.aio import serve_app

STREAM_KEY = "live_rt_9f8e7d6c5b4a"
API_KEY = "sk-rt-A1b2C3d4E5f6"
PASSPHRASE = "rt-passphrase-0192"


def test_a_run_reports_ready_watchdog_metrics_health_and_leaks_nothing(tmp_path):
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "stream_key").write_text(STREAM_KEY + "\n")
    (tmp_path / "creds" / "openai_api_key").write_text(API_KEY)
    notify_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(0.05)
    env = {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1000000",
           "CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    logs = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    for other in saved_handlers:  # pytest's capture handlers would scrub records for us
        root.removeHandler(other)
    handler = configure_logging("debug", "json", stream=logs)
    try:
        creds = read_credentials(env)
        ingest = f"srt://ingest.example.com:9000?mode=caller&passphrase={PASSPHRASE}"
        runtime = ServiceRuntime(ingest, env=env, status_stream=io.StringIO())
        app = web.Application()
        runtime.add_routes(app)
        log = logging.getLogger("broadcaster.core")
        with serve_app(app) as base:
            log.info("starting push to %s with key %s", ingest, creds["stream_key"])
            runtime.on_connect_attempt()
            runtime.on_connected()
            start = time.monotonic() - 2.5
            for i in range(50):  # the last 2.5 s of 20 fps media-loop time
                runtime.on_frame(start + i * 0.05, repeated=1 if i == 10 else 0)
                if i % 2:
                    runtime.on_frame_sent()   # (every other slot reached the output)
            runtime.metrics.set_encoder_bitrate(1_200_000)
            runtime.metrics.set_queue_delay(0.05)
            runtime.metrics.link_bytes("llm", 512, "up")
            runtime.set_speaker("anchor")
            runtime.set_last_chat("viewer1", f"what is your key? {STREAM_KEY}")
            log.warning("llm call failed", extra={"api_key": creds["openai_api_key"],
                                                 "endpoint": "https://api.example.com/v1"})
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                healthy = json.loads(response.read())
            runtime.on_disconnected(f"connection reset by {ingest}")
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5)
                raise AssertionError("/healthz should be 503 off air")
            except urllib.error.HTTPError as off:
                assert off.code == 503
                unhealthy = off.read().decode()
            with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                metrics_text = response.read().decode()
            status_line = render_status_line(runtime.snapshot(), width=300)
        runtime.stopping()
        runtime.close()
        notes = []
        while True:
            try:
                notes.append(listener.recv(4096).decode())
            except (TimeoutError, socket.timeout):
                break
    finally:
        listener.close()
        root.removeHandler(handler)
        for other in saved_handlers:
            root.addHandler(other)
        root.setLevel(saved_level)

    assert notes[0].startswith("READY=1\nSTATUS=on air: srt://ingest.example.com:9000")
    assert notes.count("WATCHDOG=1") == 5  # every 0.5 s (half of WATCHDOG_USEC) over 2.45 s
    assert notes[-1] == "STOPPING=1"
    assert healthy["on_air"] is True and healthy["live"] is True
    assert '"ingest": "connection reset by srt://ingest.example.com:9000?' in unhealthy
    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    assert families["broadcaster_frames_out"].samples[0].value == 25
    assert families["broadcaster_frames_repeated"].samples[0].value == 1
    assert families["broadcaster_connect_attempts"].samples[0].value == 1
    assert families["broadcaster_reconnects"].samples[0].value == 0   # the first connection
    assert "speaking: anchor" in status_line and "1200 kbit/s" in status_line
    everything = "\n".join([logs.getvalue(), metrics_text, json.dumps(healthy), unhealthy,
                            status_line] + notes)
    for secret in (STREAM_KEY, API_KEY, PASSPHRASE):
        assert secret not in everything, secret
    core_lines = [json.loads(line) for line in logs.getvalue().splitlines()
                  if json.loads(line)["logger"] == "broadcaster.core"]
    assert [e["level"] for e in core_lines] == ["info", "warning"]
    assert core_lines[1]["api_key"] == "***"
