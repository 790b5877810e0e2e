"""--measure against a real aiohttp app serving real metrics while bytes flow."""

from __future__ import annotations

import io
import threading
import time

from aiohttp import web

from broadcaster.service.bandwidth import bandwidth_main, measure
from broadcaster.service.health import Health
from broadcaster.service.metrics import Metrics
from broadcaster.service.routes import add_service_routes
from tests.support.aio import serve_app
from tests.support.ports import free_port


def _pump(metrics: Metrics, stop: threading.Event) -> None:
    """200 kB/s of video push and 6 kB/s of TTS download (a remote engine), in 20 ms steps."""
    next_t = time.monotonic()
    while not stop.is_set():
        metrics.link_bytes("video_push", 4000)
        metrics.tts_bytes("openai_speech", 120, "down")
        next_t += 0.02
        stop.wait(max(0.0, next_t - time.monotonic()))


def test_measure_reads_link_counters_from_a_running_instance():
    metrics = Metrics(process_metrics=False)
    app = web.Application()
    add_service_routes(app, metrics, Health())
    stop = threading.Event()
    pump = threading.Thread(target=_pump, args=(metrics, stop))
    pump.start()
    try:
        with serve_app(app) as base:
            rates = measure(base + "/metrics", 1.0)
            out = io.StringIO()
            port = int(base.rsplit(":", 1)[1])
            config = {"control": {"port": port}, "video": {"bitrate_kbps": 1500}}
            assert bandwidth_main(config, 0.5, out=out) == 0
    finally:
        stop.set()
        pump.join()
    assert abs(rates[("video_push", "up")] - 1600) < 160  # 200 kB/s = 1600 kbit/s
    assert abs(rates[("tts_download", "down")] - 48) < 5
    assert rates[("llm", "down")] == 0
    text = out.getvalue()
    assert text.startswith(f"measured over 0.5 s from {base}/metrics")
    video_row = next(line for line in text.splitlines() if line.startswith("video_push    up"))
    measured = float(video_row.split()[-1])
    assert 1400 < measured < 1800
    engine_line = next(line for line in text.splitlines() if "by engine openai_speech" in line)
    assert 40 < float(engine_line.split("down ")[1].split()[0]) < 56   # 48 kbit/s


def test_measure_without_a_running_instance_says_so():
    port = free_port()  # nothing listens on it
    err = io.StringIO()
    code = bandwidth_main({"control": {"port": port}}, 0.1, out=io.StringIO(), err=err)
    assert code == 1
    assert f"cannot read http://127.0.0.1:{port}/metrics" in err.getvalue()
    assert "running `broadcaster run`" in err.getvalue()
