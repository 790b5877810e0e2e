"""One object that ties metrics, health, sd_notify, the watchdog and the status view together.

The Station creates one ServiceRuntime and calls a handful of hooks from the places where
things happen (each media tick, the publisher's connect/disconnect events, SIGHUP, stop),
so the systemd, /healthz, /metrics and terminal views never disagree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO

from aiohttp import web

from broadcaster.service.health import Health
from broadcaster.service.metrics import Metrics
from broadcaster.service.routes import add_service_routes
from broadcaster.service.sdnotify import SdNotifier, WatchdogPacer
from broadcaster.service.status_view import StatusSnapshot, StatusView

log = logging.getLogger(__name__)


class ServiceRuntime:
    """Metrics + Health + SdNotifier + WatchdogPacer (+ StatusView), with the core's hooks."""

    def __init__(self, ingest: str, env: Mapping[str, str] | None = None,
                 status_stream: IO[str] | None = None) -> None:
        self.ingest = ingest
        self.metrics = Metrics()
        self.health = Health()
        self.notifier = SdNotifier(env)
        self.watchdog = WatchdogPacer(self.notifier)
        self._lock = threading.Lock()
        self._ready_sent = False
        self._reload_announced = False
        self._speaker: str | None = None
        self._last_chat: str | None = None
        self._link_log: deque[dict] = deque(maxlen=100)
        self.status_view = StatusView(self.snapshot, stream=status_stream, env=env)

    def add_routes(self, app: web.Application) -> None:
        """GET /metrics and /healthz on the control app (before it starts)."""
        add_service_routes(app, self.metrics, self.health)

    # media loop
    def on_frame(self, now: float, repeated: int = 0, dropped: int = 0) -> None:
        """Once per video frame slot from the media loop: cadence, liveness, watchdog. Whether
        the slot reached the output is on_frame_sent's business."""
        if repeated:
            self.metrics.frame_repeated(repeated)
        if dropped:
            self.metrics.frame_dropped(dropped)
        self.health.beat(now)
        self.watchdog.maybe_ping(now)

    # transport
    def on_frame_sent(self) -> None:
        """A picture was muxed into an open output (publisher thread)."""
        self.metrics.frame_out()

    def on_connected(self) -> None:
        """First packet reached the ingest (or the file): on air; READY=1 the first time,
        a reconnection counted every later time."""
        self.health.set_on_air(True)
        self.health.clear("ingest")
        self._note_link("connected", "on air")
        with self._lock:
            first, self._ready_sent = not self._ready_sent, True
        if first:
            self.notifier.ready(f"on air: {self.ingest}")
        else:
            self.metrics.reconnect()
            self.notifier.status(f"on air again: {self.ingest}")

    def on_disconnected(self, reason: str) -> None:
        """The ingest dropped or refused us; the publisher reconnects with backoff."""
        self.health.set_on_air(False)
        self.health.degrade("ingest", reason)
        self._note_link("dropped", reason)
        self.notifier.status(f"reconnecting to {self.ingest}: {reason}")

    def on_connect_attempt(self) -> None:
        self.metrics.connect_attempt()
        self._note_link("connecting", "")

    def on_bitrate(self, kbps: int) -> None:
        """The encoder's target changed (the rate controller's decision, or the first rate)."""
        changed = self.metrics.last_encoder_bitrate_bps != kbps * 1000
        self.metrics.set_encoder_bitrate(kbps * 1000)
        if changed:
            self._note_link("bitrate", f"{kbps} kbit/s")

    def link_events(self) -> list[dict]:
        """Recent connects, drops, reconnect attempts and bitrate changes, oldest first
        (`at`: monotonic seconds)."""
        with self._lock:
            return list(self._link_log)

    def _note_link(self, kind: str, detail: str) -> None:
        with self._lock:
            self._link_log.append({"kind": kind, "detail": detail, "at": time.monotonic()})

    # SIGHUP
    def on_reload_started(self) -> None:
        # Before the first READY=1 systemd still waits for startup: a reload then must not
        # announce RELOADING/READY, or the unit would count as started before it is on air.
        with self._lock:
            self._reload_announced = self._ready_sent
        if self._reload_announced:
            self.notifier.reloading()

    def on_reload_finished(self) -> None:
        with self._lock:
            announced, self._reload_announced = self._reload_announced, False
        if announced:
            self.notifier.ready()

    # the conversation / chat, for the status view
    def set_speaker(self, speaker: str | None) -> None:
        self._speaker = speaker

    def set_last_chat(self, author: str, text: str) -> None:
        self._last_chat = f"{author}: {text}"

    def snapshot(self) -> StatusSnapshot:
        health = self.health.snapshot()
        return StatusSnapshot(
            on_air=health["on_air"], ingest=self.ingest,
            bitrate_bps=self.metrics.last_encoder_bitrate_bps, fps=self.metrics.fps_out(),
            queue_delay_s=self.metrics.last_queue_delay_s, speaker=self._speaker,
            last_chat=self._last_chat, degraded=tuple(health["reasons"]))

    # lifecycle
    def start(self) -> None:
        """Starts the terminal status view when interactive (a no-op under systemd)."""
        self.status_view.start()

    def stopping(self) -> None:
        """SIGINT/SIGTERM received: STOPPING=1, status view off."""
        self.notifier.stopping()
        self.status_view.stop()

    def close(self) -> None:
        self.status_view.stop()
        self.notifier.close()
