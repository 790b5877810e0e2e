"""The running broadcaster: the broadcast itself plus the control endpoint and the service
layer (metrics, health, sd_notify, status view), wired together, with SIGHUP reload.

The live side (speech, chat) and the host's microphone are stages (broadcaster.stages): each
adds itself with add_stage(), is started after the broadcast and stopped in reverse order, and
learns of ticks, interruptions, reloads and muxed lines through `Station.events`, so the media
core stays unaware of them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from broadcaster.avatar.factory import build_anchor
from broadcaster.config import Config, load_config
from broadcaster.errors import BroadcasterError
from broadcaster.logsetup import configure_logging
from broadcaster.media.pipeline import Broadcast
from broadcaster.output.publisher import PublisherEvents
from broadcaster.redact import redact
from broadcaster.scene import Scene, load_scene, scene_path
from broadcaster.service.runtime import ServiceRuntime
from broadcaster.stages import AirState, LinesMuxed, Reload, Stage, StationEvents, Tick

log = logging.getLogger(__name__)


class _ServiceEvents(PublisherEvents):
    """Publisher events -> metrics, health and sd_notify; muxed lines and going on/off air ->
    station events."""

    def __init__(self, runtime: ServiceRuntime, events: StationEvents):
        self.runtime = runtime
        self.events = events

    def on_connect_attempt(self) -> None:
        self.runtime.on_connect_attempt()

    def on_connected(self) -> None:
        self.runtime.on_connected()
        self.events.air.publish(AirState(True, time.monotonic()))

    def on_disconnected(self, reason: str) -> None:
        self.runtime.on_disconnected(reason)
        self.events.air.publish(AirState(False, time.monotonic()))

    def on_slot_written(self, nbytes: int, seconds: float, picture: bool) -> None:
        if picture:
            self.runtime.on_frame_sent()
        if nbytes:
            self.runtime.metrics.link_bytes("video_push", nbytes)
        self.runtime.metrics.observe_stage("mux", seconds)

    def on_bitrate(self, kbps: int) -> None:
        self.runtime.on_bitrate(kbps)

    def on_link_sample(self, send_bps: float, queue_delay_s: float) -> None:
        self.runtime.metrics.set_send_rate(send_bps)
        self.runtime.metrics.set_queue_delay(queue_delay_s)

    def on_lines_muxed(self, lines: tuple, when: float) -> None:
        self.events.lines_muxed.publish(LinesMuxed(tuple(lines), when))


class Station:
    def __init__(self, config: Config, scene: Scene, *, config_path: str | None = None,
                 scene_override: str | None = None, canvas_override: dict | None = None,
                 duration_s: float | None = None, responder: str | None = None, live: bool = True,
                 mic: str | None = None, answer_chat: bool = True,
                 config_overrides: Callable[[Config], Config] | None = None,
                 interactive: bool = False):
        """live: run the live side (speech, chat, conversation); answer_chat=False speaks only
        scripted and /say lines; mic: --mic's device or file; config_overrides: what the
        command line changed, applied again to the config a reload reads; interactive: run
        from a terminal (lines typed there are chat, and the scene's greeting is spoken)."""
        self.config = config
        self.config_path = config_path
        self.config_overrides = config_overrides or (lambda c: c)
        self.interactive = interactive
        self.scene_override = scene_override
        self.canvas_override = canvas_override or {}
        from broadcaster.config import resolve_output_path
        from broadcaster.transport.output import parse_target
        shown = parse_target(resolve_output_path(config.output.url)).shown
        self.runtime = ServiceRuntime(ingest=shown)
        self.events = StationEvents()
        self.events.tick.subscribe(self._on_tick)
        self.broadcast = Broadcast(config, scene, duration_s=duration_s,
                                   events=_ServiceEvents(self.runtime, self.events),
                                   on_tick=self.events.tick.publish)
        self.events.interrupt.subscribe(lambda _event: self.broadcast.reset_anchor())
        from broadcaster.service.control import ControlServer
        # the control loop also runs the live side (chat, LLM, TTS); HTTP only when enabled
        self.control = ControlServer(config.control.host, config.control.port,
                                     serve_http=config.control.enabled, token=config.control.token)
        self.runtime.add_routes(self.control.app)
        from broadcaster.service.anchor_routes import add_anchor_routes
        add_anchor_routes(self.control.app, lambda: self.broadcast.anchor)
        self._stages: list[Stage] = []
        self._reload_requested = threading.Event()
        self.live = None
        if live:
            from broadcaster.dialogue.live import Live
            self.live = Live(self, responder_override=responder, answer_chat=answer_chat,
                             stdin_chat=interactive and mic != "-", greet=interactive)
        self.host_mic = None
        if live:
            from broadcaster.mic.host import attach_host_mic
            self.host_mic = attach_host_mic(self, mic)       # None unless mic is enabled / --mic
        self.studio = None
        if config.control.enabled:
            from broadcaster.service.studio import Studio
            self.studio = Studio(self)

    def add_stage(self, stage: Stage) -> None:
        """Run `stage` with the station: started after the broadcast, stopped in reverse order."""
        self._stages.append(stage)

    # -- media loop tick (runs on the media thread, once per slot) ---------------------
    def _on_tick(self, tick: Tick) -> None:
        self.runtime.on_frame(time.monotonic(), repeated=0 if tick.rendered else 1,
                              dropped=1 if tick.video_dropped else 0)
        if tick.rendered:
            self.runtime.metrics.observe_stage("render", tick.render_s)
        if tick.anchor_late:
            self.runtime.metrics.anchor_late_frame()
        # a network output's link monitor measures send rate and queueing delay at the socket;
        # a file output has no link: report what is written and what waits for the encoder
        if self.broadcast.link_monitor is None:
            metrics = self.runtime.metrics
            metrics.set_send_rate(metrics.link_rate("video_push") * 8)
            metrics.set_queue_delay(len(self.broadcast.queue) / self.broadcast.fps)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self.control is not None:
            self.control.start()
        self.broadcast.start()
        self.runtime.start()
        for stage in self._stages:
            stage.start()

    def request_stop(self) -> None:
        self.broadcast.stop()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def scene_name(self) -> str:
        """The scene on air, as named on the command line, by a switch or in the config."""
        return self.scene_override or self.config.scene

    def switch_scene(self, name: str) -> None:
        """Put scene `name` on air: the SIGHUP reload with the scene overridden (main thread)."""
        self.scene_override = name
        self.request_reload()

    def run(self) -> int:
        """Run until the duration ends or a signal stops it; SIGHUP reloads."""
        def on_stop(signum, _frame):
            log.info("received %s: ending the broadcast", signal.Signals(signum).name)
            self.runtime.stopping()
            self.request_stop()

        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        try:
            self.start()
            while not self.broadcast.wait(0.2):
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
            self.broadcast.join()
        finally:
            self.close()
        fatal = self.broadcast.publisher.fatal
        if fatal is not None:
            if isinstance(fatal, BroadcasterError):
                raise fatal
            return 1
        return 0

    def close(self) -> None:
        for stage in reversed(self._stages):
            try:
                stage.stop()
            except Exception:
                log.exception("stopping the %s stage failed", stage.name)
        if self.control is not None:
            self.control.stop()
        self.runtime.close()

    # -- SIGHUP ------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read config and scene; apply what can change live, name what cannot."""
        self.runtime.on_reload_started()
        try:
            config = self.config_overrides(load_config(self.config_path))
            name = self.scene_override or config.scene
            scene = load_scene(scene_path(config.scenes_dir, name))
            current = self.broadcast.scene.canvas
            if self.canvas_override:
                scene = scene.with_canvas(**self.canvas_override)
            if (scene.canvas.width, scene.canvas.height, scene.canvas.fps) != \
                    (current.width, current.height, current.fps):
                log.warning("reload: canvas %dx%d@%d differs from the running %dx%d@%d; a canvas "
                            "change needs a restart, the new scene is fitted to the running canvas",
                            scene.canvas.width, scene.canvas.height, scene.canvas.fps,
                            current.width, current.height, current.fps)
                scene = scene.with_canvas(current.width, current.height, current.fps)
            if self.live is not None:
                from broadcaster.dialogue.live import chat_settings
                chat_settings(config)
            self._apply_scene(scene)
            for key, old, new in (("output", self.config.output, config.output),
                                  ("video", self.config.video, config.video),
                                  ("audio", self.config.audio, config.audio),
                                  ("control", self.config.control, config.control),
                                  ("chat", self.config.features.get("chat"), config.features.get("chat"))):
                if old != new:
                    log.warning("reload: the %s section changed; it applies at the next restart", key)
            if config.logging != self.config.logging:
                configure_logging(config.logging.level, config.logging.format)
            self.events.reload.publish(Reload(config, scene))
            self.config = replace(self.config, logging=config.logging, features=config.features,
                                  scene=config.scene)
            log.info("reload: scene %s is on air", scene.name)
        except BroadcasterError as exc:
            log.error("reload failed, keeping the current scene: %s", redact(str(exc)))
        except Exception:   # reload runs on the main loop: an unexpected error must not end the broadcast
            log.exception("reload failed unexpectedly, keeping the current scene")
        finally:
            self.runtime.on_reload_finished()

    def _apply_scene(self, scene: Scene) -> None:
        from broadcaster.media.mixer import load_bed
        from broadcaster.render.compose import Compositor
        compositor = Compositor(scene, build_anchor(scene))
        bed = load_bed(scene.audio.file, self.config.audio.sample_rate) if scene.audio.file else None
        self.broadcast.show_scene(scene, compositor, bed)
