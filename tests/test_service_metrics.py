"""/metrics parsed with the Prometheus client parser; /healthz over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from broadcaster import redact
from broadcaster.service.health import Health
from broadcaster.service.metrics import (
    LINKS,
    MAX_CHAT_SOURCES,
    MAX_CURRENCIES,
    STAGES,
    Metrics,
    RateMeter,
)
from broadcaster.service.routes import add_service_routes
from tests.support.aio import serve_app

EXPECTED_FAMILIES = {
    "broadcaster_frames_out": "counter",
    "broadcaster_frames_repeated": "counter",
    "broadcaster_frames_dropped": "counter",
    "broadcaster_fps_out": "gauge",
    "broadcaster_encoder_bitrate_bps": "gauge",
    "broadcaster_send_rate_bps": "gauge",
    "broadcaster_queue_delay_seconds": "gauge",
    "broadcaster_reconnects": "counter",
    "broadcaster_connect_attempts": "counter",
    "broadcaster_chat_messages_in": "counter",
    "broadcaster_chat_messages_selected": "counter",
    "broadcaster_chat_messages_dropped": "counter",
    "broadcaster_stage_latency_seconds": "histogram",
    "broadcaster_link_bytes": "counter",
    "broadcaster_link_bytes_per_second": "gauge",
    "broadcaster_on_air": "gauge",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families, family, sample_name, **labels) -> float:
    for sample in families[family].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()):
            return sample.value
    raise KeyError((family, sample_name, labels))


def test_metrics_exposition_names_types_and_values():
    clock = FakeClock()
    metrics = Metrics(clock=clock)
    for i in range(40):  # 2 s of 20 fps
        clock.now = 100.0 + i * 0.05
        metrics.frame_out()
    metrics.frame_repeated(2)
    metrics.frame_dropped()
    metrics.set_encoder_bitrate(900_000)
    metrics.set_send_rate(870_000)
    metrics.set_queue_delay(0.12)
    metrics.reconnect()
    for _ in range(4):
        metrics.connect_attempt()
    for _ in range(3):
        metrics.chat_in("twitch")
    metrics.chat_selected("twitch")
    metrics.chat_dropped("spam")
    metrics.chat_dropped("too_old")
    for stage in STAGES:
        metrics.observe_stage(stage, 0.03)
    metrics.observe_stage("llm_first_token", 0.45)
    metrics.link_bytes("video_push", 125_000)
    metrics.link_bytes("llm", 800, "up")
    metrics.link_bytes("llm", 4_000)
    metrics.set_on_air(True)

    families = _families(metrics.render_metrics().decode())
    for name, kind in EXPECTED_FAMILIES.items():
        assert families[name].type == kind, name
    assert "process_cpu_seconds" in families
    assert _value(families, "broadcaster_frames_out", "broadcaster_frames_out_total") == 40
    assert _value(families, "broadcaster_frames_repeated",
                  "broadcaster_frames_repeated_total") == 2
    assert _value(families, "broadcaster_reconnects", "broadcaster_reconnects_total") == 1
    assert _value(families, "broadcaster_connect_attempts",
                  "broadcaster_connect_attempts_total") == 4
    assert _value(families, "broadcaster_fps_out", "broadcaster_fps_out") == \
        pytest.approx(20.0, rel=0.05)
    assert _value(families, "broadcaster_queue_delay_seconds",
                  "broadcaster_queue_delay_seconds") == 0.12
    assert _value(families, "broadcaster_chat_messages_dropped",
                  "broadcaster_chat_messages_dropped_total", reason="spam") == 1
    assert _value(families, "broadcaster_stage_latency_seconds",
                  "broadcaster_stage_latency_seconds_count", stage="llm_first_token") == 2
    assert _value(families, "broadcaster_stage_latency_seconds",
                  "broadcaster_stage_latency_seconds_bucket", stage="render", le="0.04") == 1
    assert _value(families, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                  link="llm", direction="up") == 800
    # every link and stage is present from the start, at zero when unused
    for link in LINKS:
        for direction in ("up", "down"):
            _value(families, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                   link=link, direction=direction)
    assert _value(families, "broadcaster_link_bytes_per_second",
                  "broadcaster_link_bytes_per_second", link="tts_download",
                  direction="down") == 0
    assert _value(families, "broadcaster_on_air", "broadcaster_on_air") == 1


def test_chat_sources_are_bounded_so_metrics_cannot_grow_without_end():
    """/chat takes any short platform name: a client naming a new one in every message gets
    the first MAX_CHAT_SOURCES their own series, and every later one counted as "other"."""
    metrics = Metrics(process_metrics=False)
    for i in range(500):
        metrics.chat_in(f"bridge{i}")
        metrics.chat_selected(f"bridge{i}")
    metrics.chat_in("bridge3")
    families = _families(metrics.render_metrics().decode())
    for family in ("broadcaster_chat_messages_in", "broadcaster_chat_messages_selected"):
        sources = {s.labels["source"] for s in families[family].samples if s.name.endswith("_total")}
        assert sources == {f"bridge{i}" for i in range(MAX_CHAT_SOURCES)} | {"other"}
    assert _value(families, "broadcaster_chat_messages_in", "broadcaster_chat_messages_in_total",
                  source="other") == 500 - MAX_CHAT_SOURCES
    assert _value(families, "broadcaster_chat_messages_in", "broadcaster_chat_messages_in_total",
                  source="bridge3") == 2


def test_viewer_events_and_gift_money_are_counted_with_bounded_labels():
    metrics = Metrics(process_metrics=False)
    for _ in range(3):
        metrics.chat_event("bilibili", "gift", 0.1, "CNY")
    metrics.chat_event("bilibili", "follow")
    metrics.chat_event("bilibili", "superlike")                 # a kind we do not know
    metrics.chat_event("youtube", "gift", 4.99, "USD")
    metrics.chat_event("youtube", "gift", float("nan"), "USD")  # never a NaN in a counter
    for i in range(20):
        metrics.chat_event("bridge", "gift", 1.0, f"c{i}")
    metrics.chat_event("bridge", "gift", 1.0, "Not A Currency!")
    families = _families(metrics.render_metrics().decode())
    events = "broadcaster_chat_events", "broadcaster_chat_events_total"
    assert families[events[0]].type == "counter"
    assert _value(families, *events, source="bilibili", kind="gift") == 3
    assert _value(families, *events, source="bilibili", kind="follow") == 1
    assert _value(families, *events, source="bilibili", kind="other") == 1
    assert _value(families, *events, source="youtube", kind="gift") == 2
    paid = "broadcaster_chat_paid_amount", "broadcaster_chat_paid_amount_total"
    assert _value(families, *paid, source="bilibili", currency="cny") == pytest.approx(0.3)
    assert _value(families, *paid, source="youtube", currency="usd") == pytest.approx(4.99)
    currencies = {s.labels["currency"] for s in families[paid[0]].samples if s.name == paid[1]}
    assert len(currencies) == MAX_CURRENCIES + 1 and "other" in currencies, currencies


def test_bad_names_are_rejected_so_no_text_becomes_a_label():
    metrics = Metrics(process_metrics=False)
    with pytest.raises(ValueError, match="unknown stage 'tts'"):
        metrics.observe_stage("tts", 0.1)
    with pytest.raises(ValueError, match="unknown link 'rtmp'"):
        metrics.link_bytes("rtmp", 10)
    with pytest.raises(ValueError, match="chat reason"):
        metrics.chat_dropped("contains rtmp://h/app/key")


def test_rate_meter_window():
    meter = RateMeter(window_s=5.0)
    for i in range(100):  # 10 s at 1000 B every 0.1 s = 10 kB/s
        meter.add(1000, 10.0 + i * 0.1)
    assert meter.rate(19.95) == pytest.approx(10_000, rel=0.05)
    assert meter.rate(30.0) == 0.0
    assert RateMeter().rate(1.0) == 0.0


def test_routes_serve_metrics_and_health_over_http():
    redact.register_secret("hlth_secret_key_991")
    metrics, health = Metrics(process_metrics=False), Health()
    app = web.Application()
    add_service_routes(app, metrics, health)
    with serve_app(app) as base:
        with pytest.raises(urllib.error.HTTPError) as off_air:
            urllib.request.urlopen(base + "/healthz", timeout=5)
        assert off_air.value.code == 503
        body = json.loads(off_air.value.read())
        assert body["live"] is True and body["on_air"] is False

        health.set_on_air(True)
        health.beat()
        health.degrade("tts", "edge-tts failed at wss://x/y?token=hlth_secret_key_991; piper")
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            assert response.status == 200
            body = json.loads(response.read())
        assert body["on_air"] is True and body["degraded"] is True
        assert body["reasons"] == {"tts": "edge-tts failed at wss://x/y?token=***; piper"}

        metrics.link_bytes("video_push", 5000)
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = response.read().decode()
        families = _families(text)
        assert _value(families, "broadcaster_on_air", "broadcaster_on_air") == 1
        assert _value(families, "broadcaster_link_bytes", "broadcaster_link_bytes_total",
                      link="video_push", direction="up") == 5000
        assert "hlth_secret_key_991" not in text


def test_health_stall_and_clear():
    health = Health(stall_after_s=5.0, now=0.0)
    health.set_on_air(True, now=1.0)
    health.beat(now=2.0)
    snap = health.snapshot(now=3.0)
    assert snap["live"] and snap["on_air_for_s"] == 2.0 and health.http_status(snap) == 200
    snap = health.snapshot(now=8.0)
    assert snap["live"] is False and health.http_status(snap) == 503
    health.degrade("llm", "slow")
    health.clear("llm")
    health.clear("never-set")
    assert health.snapshot(now=3.0)["degraded"] is False
    with pytest.raises(ValueError, match="health reason key"):
        health.degrade("Bad Key!", "x")
