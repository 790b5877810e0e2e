"""The broadcast: a paced media loop (mix audio, render video) feeding the encoder thread.

    mixer.pull(samples of slot n) ──> speech drives the anchor ──> compositor ──> SlotQueue ──> Publisher
            (audio master clock)                                    (yuv420p)              (encode, mux, reconnect)

The loop never blocks on the network or the encoder; when rendering is late the slot repeats
the previous picture, and the audio of every slot is always produced.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from broadcaster.avatar.factory import build_anchor
from broadcaster.avatar.renderer import SpeechAhead
from broadcaster.config import Config, resolve_output_path
from broadcaster.media.clock import FrameClock, Pacer
from broadcaster.media.mixer import AudioMixer, load_bed
from broadcaster.media.slotqueue import MediaSlot, SlotQueue
from broadcaster.media.stats import BroadcastStats
from broadcaster.output.publisher import Publisher, PublisherEvents
from broadcaster.render.compose import Compositor
from broadcaster.scene import Scene
from broadcaster.stages import Tick
from broadcaster.transport.output import parse_target

log = logging.getLogger(__name__)


class Broadcast:
    def __init__(self, config: Config, scene: Scene, output_url: str | None = None, anchor=None,
                 duration_s: float | None = None, events: PublisherEvents | None = None,
                 on_tick: Callable[[Tick], None] | None = None):
        """events: what the publisher and the link monitor report; on_tick: called on the
        media thread after each slot is queued."""
        self.config = config
        self.scene = scene
        self.width, self.height, self.fps = scene.canvas.width, scene.canvas.height, scene.canvas.fps
        self.clock = FrameClock(self.fps, config.audio.sample_rate)
        bed = load_bed(scene.audio.file, config.audio.sample_rate) if scene.audio.file else None
        self.mixer = AudioMixer(config.audio.sample_rate, bed, scene.audio.volume, scene.audio.duck)
        self.anchor = anchor if anchor is not None else build_anchor(scene)
        self.mixer.add_speech_listener(self._speech_queued)
        self.mixer.set_start_gate(self.speech_may_start)
        self.compositor = Compositor(scene, self.anchor)
        self.stats = BroadcastStats()
        self.queue = SlotQueue(soft_limit=max(2, self.fps // 2), hard_limit=self.fps * 10)
        self.target = parse_target(resolve_output_path(output_url or config.output.url))
        self.publisher = Publisher(config, self.target, self.width, self.height, self.fps,
                                   self.queue, self.stats, events=events)
        self.link_monitor = None
        if self.target.is_network:    # the bitrate follows the measured link (or, off, is fixed)
            from broadcaster.ratecontrol.monitor import LinkMonitor
            from broadcaster.ratecontrol.settings import ratecontrol_settings
            settings = ratecontrol_settings(config.features.get("ratecontrol"), config.source,
                                            config.video, config.audio, config.base_dir)
            self.link_monitor = LinkMonitor(self.publisher, settings, self.fps, self.queue,
                                            on_sample=events.on_link_sample if events else None)
        self.duration_s = duration_s
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._media_loop, name="media", daemon=True)
        self.frame_index = 0
        self._on_tick = on_tick

    @property
    def output_path(self) -> Path | None:
        return Path(self.target.url) if self.target.kind == "file" else None

    def start(self) -> None:
        self.publisher.start()
        if self.link_monitor is not None:
            self.link_monitor.start()
        self._thread.start()
        log.info("broadcast started: scene %s, %dx%d@%d fps, output %s", self.scene.name,
                 self.width, self.height, self.fps, self.target.shown)

    def stop(self) -> None:
        self._stop.set()

    def show_scene(self, scene: Scene, compositor: Compositor, bed) -> None:
        """Put a reloaded scene on air: the next frame uses the new compositor (one reference
        swap, no lock on the media thread), the bed changes at the next slot."""
        old = self.anchor
        self.compositor = compositor
        self.anchor = compositor.anchor
        self.scene = scene
        self.mixer.set_bed(bed, scene.audio.volume, scene.audio.duck)
        if old is not self.anchor and isinstance(old, SpeechAhead):
            old.close()

    def _speech_queued(self, pcm, stream_pos: int, plays_in: int) -> None:
        """The mixer queued speech: an anchor that renders ahead starts on it now."""
        anchor = self.anchor
        if isinstance(anchor, SpeechAhead):
            anchor.speech_queued(pcm, stream_pos, plays_in)

    def speech_may_start(self, stream_pos: int) -> bool:
        """A line after silence goes on air once an anchor that renders ahead has its first
        mouth (the mixer caps the wait); any other anchor never holds it."""
        anchor = self.anchor
        return anchor.speech_may_start(stream_pos) if isinstance(anchor, SpeechAhead) else True

    def reset_anchor(self) -> None:
        """The anchor stops mid-gesture (an interruption): back to idle at the next frame."""
        anchor = self.anchor
        if anchor is not None:
            anchor.reset()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def join(self) -> None:
        """Wait for the media loop and the encoder to finish (files flushed and closed)."""
        self._thread.join()
        self.publisher.join()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def _media_loop(self) -> None:
        pacer = Pacer(self.clock)
        end_slot = None if self.duration_s is None else round(self.duration_s * self.fps)
        n = 0
        try:
            while not self._stop.is_set() and (end_slot is None or n < end_slot):
                if self.publisher.fatal is not None:
                    break
                wait, render = pacer.plan(n, time.monotonic())
                if wait > 0:
                    self._stop.wait(wait)
                    if self._stop.is_set():
                        break
                chunk = self.mixer.pull(self.clock.samples_in(n))
                mixed_at = time.monotonic()
                video = None
                render_s = 0.0
                anchor_late = False
                if render or n == 0:
                    started = time.perf_counter()
                    compositor = self.compositor
                    video = compositor.compose(n, chunk.speech, chunk.caption, chunk.speech_pos)
                    render_s = time.perf_counter() - started
                    anchor_late = isinstance(compositor.anchor, SpeechAhead) and compositor.anchor.last_late
                    self.stats.frames_rendered += 1
                else:
                    self.stats.frames_repeated += 1
                video_dropped, lost = self.queue.put(MediaSlot(n, video, chunk.stereo, chunk.started))
                if video_dropped:
                    self.stats.frames_dropped += 1
                if lost is not None:
                    self.stats.audio_samples_dropped += len(lost.audio)
                    log.warning("encoder %d slots behind: dropped slot %d (audio included)",
                                len(self.queue), lost.index)
                if self._on_tick is not None:
                    self._on_tick(Tick(n, chunk, mixed_at, render, video_dropped, render_s, video,
                                       anchor_late))
                n += 1
                self.frame_index = n
        except BaseException:
            log.exception("media loop stopped by an unexpected error")
            raise
        finally:
            self.queue.close()
            if isinstance(self.anchor, SpeechAhead):
                self.anchor.close()
            self.publisher.join()
            if self.link_monitor is not None:
                self.link_monitor.close()
            self._finished.set()
            log.info("broadcast ended after %d frames (%.1f s of media): %d sent, %d discarded "
                     "while off air", n, n / self.fps, self.stats.frames_out,
                     self.stats.slots_offline)
