"""The process's Prometheus metrics, on an own CollectorRegistry (never the global one).

The core calls small typed methods from any thread (prometheus_client is thread-safe);
rates that Prometheus would otherwise need two scrapes for (fps out, bytes per second on
each link) are also computed here over a short window, so /metrics and the status view show
them directly. Label values come from fixed sets or a strict name pattern: no URL, key or
viewer text can end up in a metric.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

STAGES = ("asr", "llm_first_token", "llm_first_sentence", "tts_first_audio", "render", "mux")
# Each link and the direction its payload mostly flows (the default for link_bytes).
LINKS = {"video_push": "up", "asr_uplink": "up", "llm": "down", "tts_download": "down"}
DIRECTIONS = ("up", "down")
CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "broadcaster_"

_LABEL_VALUE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_CHAT_SOURCES = 16       # chat source labels kept apart; later ones are counted as "other"
MAX_CURRENCIES = 8          # currency labels kept apart, likewise
CHAT_EVENT_KINDS = ("gift", "follow", "entrance")
# Seconds: render/mux live in milliseconds, LLM/TTS first output in hundreds of ms to seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.25, 0.4, 0.6, 0.8,
                    1.0, 1.5, 2.5, 4.0, 8.0, math.inf)


class RateMeter:
    """Events (bytes, frames) per second over the last window_s seconds, from 1/8 s bins.

    Pure apart from its lock: add() and rate() take `now` (monotonic seconds).
    """

    BIN_S = 0.125

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._bins: deque[list[float]] = deque()  # [bin_index, amount]
        self._first: float | None = None
        self._lock = threading.Lock()

    def add(self, amount: float, now: float) -> None:
        index = math.floor(now / self.BIN_S)
        with self._lock:
            if self._first is None:
                self._first = now
            if self._bins and self._bins[-1][0] == index:
                self._bins[-1][1] += amount
            else:
                self._bins.append([index, amount])
            self._trim(now)

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            if self._first is None:
                return 0.0
            # Before a full window has passed, divide by the time seen so far.
            span = min(self.window_s, max(now - self._first, self.BIN_S))
            return sum(amount for _, amount in self._bins) / span

    def _trim(self, now: float) -> None:
        oldest = math.floor((now - self.window_s) / self.BIN_S)
        while self._bins and self._bins[0][0] <= oldest:
            self._bins.popleft()


class _DerivedRates:
    """A collector for the windowed rates (fps out, link bytes per second)."""

    def __init__(self, owner: "Metrics") -> None:
        self._owner = owner

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        owner = self._owner
        now = owner.clock()
        fps = GaugeMetricFamily(PREFIX + "fps_out",
                                "Video frames sent to the encoder per second (last 2 s).")
        fps.add_metric([], owner.fps_meter.rate(now))
        yield fps
        rates = GaugeMetricFamily(PREFIX + "link_bytes_per_second",
                                  "Payload bytes per second on each link (last 5 s).",
                                  labels=["link", "direction"])
        for (link, direction), meter in owner.link_meters.items():
            rates.add_metric([link, direction], meter.rate(now))
        yield rates


class Metrics:
    """All broadcaster metrics; one instance per process, passed to the stages that report."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 process_metrics: bool = True) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._frames_out = Counter(PREFIX + "frames_out",
                                   "Video frames encoded and muxed into an open output "
                                   "(none while off air).", registry=r)
        self._frames_repeated = Counter(PREFIX + "frames_repeated",
                                        "Video frames repeated to hold the cadence.", registry=r)
        self._frames_dropped = Counter(PREFIX + "frames_dropped",
                                       "Video frames dropped to hold the cadence.", registry=r)
        self._anchor_late = Counter(PREFIX + "anchor_late_frames",
                                    "Slots whose lip-synced anchor picture was not rendered in "
                                    "time (the anchor's idle frame was shown).", registry=r)
        self._encoder_bitrate = Gauge(PREFIX + "encoder_bitrate_bps",
                                      "Video encoder target bitrate, bits per second.", registry=r)
        self._send_rate = Gauge(PREFIX + "send_rate_bps",
                                "Measured send rate towards the ingest, bits per second.",
                                registry=r)
        self._queue_delay = Gauge(PREFIX + "queue_delay_seconds",
                                  "Media queued but not yet sent to the ingest, in seconds.",
                                  registry=r)
        self._reconnects = Counter(PREFIX + "reconnects",
                                   "Successful reconnections: on air again after the ingest "
                                   "connection ended.", registry=r)
        self._connect_attempts = Counter(PREFIX + "connect_attempts",
                                         "Connection attempts to the ingest, the first and "
                                         "every retry.", registry=r)
        self._chat_in = Counter(PREFIX + "chat_messages_in", "Chat messages received.",
                                ["source"], registry=r)
        self._chat_selected = Counter(PREFIX + "chat_messages_selected",
                                      "Chat messages selected for an answer.", ["source"],
                                      registry=r)
        self._chat_sources = LabelBudget(MAX_CHAT_SOURCES)
        self._chat_dropped = Counter(PREFIX + "chat_messages_dropped",
                                     "Chat messages dropped, by reason.", ["reason"], registry=r)
        self._chat_events = Counter(PREFIX + "chat_events",
                                    "Viewer events that are not lines to answer (gifts, follows, "
                                    "entrances), by source and kind.", ["source", "kind"], registry=r)
        self._chat_paid = Counter(PREFIX + "chat_paid_amount",
                                  "Money viewers spent on gifts, in the currency's major unit.",
                                  ["source", "currency"], registry=r)
        self._currencies = LabelBudget(MAX_CURRENCIES)
        self._stage_latency = Histogram(PREFIX + "stage_latency_seconds",
                                        "Latency of each pipeline stage.", ["stage"],
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self._link_bytes = Counter(PREFIX + "link_bytes", "Payload bytes on each link.",
                                   ["link", "direction"], registry=r)
        self._tts_engine_bytes = Counter(PREFIX + "tts_engine_bytes",
                                         "Payload bytes to and from each remote TTS engine.",
                                         ["engine", "direction"], registry=r)
        self._on_air = Gauge(PREFIX + "on_air", "1 while packets reach the ingest.", registry=r)
        self._start_time = Gauge(PREFIX + "start_time_seconds",
                                 "Unix time the process started.", registry=r)
        self._start_time.set(time.time())
        for stage in STAGES:
            self._stage_latency.labels(stage)
        # Last values set, for the status view (None until the core reports one).
        self.last_encoder_bitrate_bps: float | None = None
        self.last_send_rate_bps: float | None = None
        self.last_queue_delay_s: float | None = None
        self.fps_meter = RateMeter(window_s=2.0)
        self.link_meters: dict[tuple[str, str], RateMeter] = {}
        for link in LINKS:
            for direction in DIRECTIONS:
                self._link_bytes.labels(link, direction)
                self.link_meters[(link, direction)] = RateMeter(window_s=5.0)
        r.register(_DerivedRates(self))
        if process_metrics:
            ProcessCollector(registry=r)  # CPU seconds, RSS, fds: leaks show over days

    # video
    def frame_out(self, n: int = 1) -> None:
        """n pictures reached an open output (fps_out follows them too)."""
        self._frames_out.inc(n)
        self.fps_meter.add(n, self.clock())

    def frame_repeated(self, n: int = 1) -> None:
        self._frames_repeated.inc(n)

    def frame_dropped(self, n: int = 1) -> None:
        self._frames_dropped.inc(n)

    def anchor_late_frame(self, n: int = 1) -> None:
        self._anchor_late.inc(n)

    def set_encoder_bitrate(self, bits_per_second: float) -> None:
        self._encoder_bitrate.set(bits_per_second)
        self.last_encoder_bitrate_bps = float(bits_per_second)

    # transport
    def set_send_rate(self, bits_per_second: float) -> None:
        self._send_rate.set(bits_per_second)
        self.last_send_rate_bps = float(bits_per_second)

    def set_queue_delay(self, seconds: float) -> None:
        self._queue_delay.set(seconds)
        self.last_queue_delay_s = float(seconds)

    def reconnect(self) -> None:
        """On air again after a disconnection (not counted for the first connection)."""
        self._reconnects.inc()

    def connect_attempt(self) -> None:
        self._connect_attempts.inc()

    def set_on_air(self, on_air: bool) -> None:
        self._on_air.set(1 if on_air else 0)

    def bind_health(self, health) -> None:
        """Read on_air from a Health object at scrape time (one source of truth)."""
        self._on_air.set_function(lambda: 1.0 if health.on_air else 0.0)

    # chat
    def chat_in(self, source: str) -> None:
        self._chat_in.labels(self._chat_sources.value(_label("chat source", source))).inc()

    def chat_selected(self, source: str) -> None:
        self._chat_selected.labels(self._chat_sources.value(_label("chat source", source))).inc()

    def chat_dropped(self, reason: str) -> None:
        self._chat_dropped.labels(_label("chat reason", reason)).inc()

    def chat_event(self, source: str, kind: str, paid_amount: float = 0.0, currency: str = "") -> None:
        """A gift, follow or entrance; a gift bought with money adds its amount."""
        source = self._chat_sources.value(_label("chat source", source))
        kind = kind if kind in CHAT_EVENT_KINDS else "other"
        self._chat_events.labels(source, kind).inc()
        if paid_amount > 0 and math.isfinite(paid_amount):
            code = currency.lower() or "unknown"
            code = code if _LABEL_VALUE.match(code) else "other"
            self._chat_paid.labels(source, self._currencies.value(code)).inc(paid_amount)

    # latency
    def observe_stage(self, stage: str, seconds: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        self._stage_latency.labels(stage).observe(seconds)

    # links
    def link_bytes(self, link: str, n: int, direction: str | None = None) -> None:
        """Count n payload bytes on a link; direction defaults to the link's main one."""
        if link not in LINKS:
            raise ValueError(f"unknown link {link!r}; links are {', '.join(LINKS)}")
        direction = LINKS[link] if direction is None else direction
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r} must be 'up' or 'down'")
        if n <= 0:
            return
        self._link_bytes.labels(link, direction).inc(n)
        self.link_meters[(link, direction)].add(n, self.clock())

    def tts_bytes(self, engine: str, n: int, direction: str) -> None:
        """Count n payload bytes to ("up") or from ("down") a remote TTS engine: on its own
        counter and on the tts_download link."""
        if n <= 0:
            return
        self.link_bytes("tts_download", n, direction)
        self._tts_engine_bytes.labels(_label("tts engine", engine), direction).inc(n)

    # snapshot values for the status view
    def fps_out(self) -> float:
        return self.fps_meter.rate(self.clock())

    def link_rate(self, link: str, direction: str | None = None) -> float:
        """Bytes per second over the last 5 s."""
        direction = LINKS[link] if direction is None else direction
        return self.link_meters[(link, direction)].rate(self.clock())

    def render_metrics(self) -> bytes:
        """The Prometheus text exposition of every metric (CONTENT_TYPE is its media type)."""
        return generate_latest(self.registry)


class LabelBudget:
    """A bounded set of label values: the first `limit` values seen keep their own series,
    any later one is "other". A client naming a new chat platform in every message must not
    grow /metrics (and the process) without end."""

    OTHER = "other"

    def __init__(self, limit: int):
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def value(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return self.OTHER


def _label(kind: str, value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise ValueError(f"{kind} {value!r} must be a short lowercase name "
                         f"({_LABEL_VALUE.pattern})")
    return value
