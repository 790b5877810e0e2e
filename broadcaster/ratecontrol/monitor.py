"""The publisher's link monitor: samples the live output every tick, feeds the rate controller
and applies its decisions (bitrate, frame-rate cut, audio only).

One small thread of its own, so the measurement keeps its rhythm while the encoder thread is
busy or blocked in a write. Each output session gets a link reader (reader.py): for SRT it is
the only caller of SrtSink.stats() (which resets libsrt's interval counters); for RTMP it
reads TCP_INFO of the RtmpSink's socket. With tcp_notsent_lowat the kernel holds little
unsent media, so a backlog waits in the SlotQueue instead, where it is counted: the queueing
delay handed to the controller is the link's queue plus the slots waiting for the encoder.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from dataclasses import replace

from broadcaster.ratecontrol.controller import RateController, RateDecision, Reason
from broadcaster.ratecontrol.rates import WindowedCounters
from broadcaster.ratecontrol.reader import LinkReader, reader_for
from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.ratecontrol.settings import RateControlSettings

log = logging.getLogger(__name__)

TRACE_COLUMNS = ("mono", "t", "connected", "send_kbps", "queue_ms", "link_queue_ms", "slot_queue",
                 "rtt_ms", "busy_kbps", "capacity_kbps", "encoder_kbps", "fps_divisor",
                 "drop_video", "reason", "frames_out", "frames_skipped", "frames_dropped",
                 "reconnects", "bytes_out", "video_bytes", "padding_kbps", "video_kbps",
                 "wire_factor")
OFFERED_WINDOW_S = 0.5
WIRE_WINDOW_S = 2.0
WARMUP_S = 1.0      # a new session's headers, first IDR and empty meter windows are no verdict


class LinkMonitor:
    """Samples the publisher's link every settings.tick_s; see the module docstring.

    on_sample(send_bits_per_s, queue_delay_s) reports each measurement (metrics).
    """

    def __init__(self, publisher, settings: RateControlSettings, fps: int, queue,
                 on_sample=None, clock=time.monotonic):
        self.publisher = publisher
        self.settings = settings
        self.fps = fps
        self.queue = queue
        self.on_sample = on_sample
        self.clock = clock
        self.controller = RateController(settings.controller) if settings.enabled else None
        self.decision: RateDecision | None = None
        self.last_sample: LinkSample | None = None
        self._requested: int | None = None
        self._next_audio = int(settings.controller.audio_kbps)   # the next session's audio
        self._logged_kbps: int | None = None
        self._handle = None
        self._reader: LinkReader | None = None
        self._session_at = 0.0
        self._written = WindowedCounters(OFFERED_WINDOW_S)  # (now, bytes muxed)
        self._wire = WindowedCounters(WIRE_WINDOW_S)        # (now, bytes on the link, bytes muxed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link-monitor", daemon=True)
        self._trace_file = None
        self._trace = None
        self._t0 = clock()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self.settings.trace is not None:
            self.settings.trace.parent.mkdir(parents=True, exist_ok=True)
            self._trace_file = open(self.settings.trace, "w", newline="", encoding="utf-8")
            self._trace = csv.writer(self._trace_file)
            self._trace.writerow(TRACE_COLUMNS)
        if self.controller is not None:
            cfg = self.settings.controller
            start = cfg.start_kbps if cfg.start_kbps is not None else cfg.ceiling_kbps
            self._requested = int(start)
            self.publisher.set_session_bitrate(int(start))
        mode = "on" if self.controller is not None else "off (fixed bitrate)"
        log.info("rate control %s: video %d..%d kbit/s, link sampled every %d ms", mode,
                 self.settings.controller.floor_kbps, self.settings.controller.ceiling_kbps,
                 round(self.settings.tick_s * 1000))
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        if self._trace_file is not None:
            self._trace_file.close()
            self._trace_file = None

    def _run(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set():
            try:
                self.tick(self.clock())
            except Exception:       # measuring must never take the broadcast down
                log.exception("link monitor tick failed")
            next_at += self.settings.tick_s
            delay = next_at - self.clock()
            if delay < 0:
                next_at = self.clock()
                delay = 0.0
            self._stop.wait(delay)

    # -- one tick -----------------------------------------------------------------------
    def tick(self, now: float) -> None:
        handle = self.publisher.handle
        if handle is not self._handle:
            self._handle = handle
            self._reader = reader_for(handle, self.settings.tcp_notsent_lowat, now)
            self._wire.clear()
            self._session_at = now
        if self.controller is not None:
            self._plan_audio()
        sample = self._reader.sample(now) if self._reader is not None else None
        if sample is None:
            self._write_trace(now, None)
            return
        slot_ms = len(self.queue) * 1000.0 / self.fps
        sample = replace(sample, queue_delay_ms=sample.queue_delay_ms + slot_ms,
                         offered_kbps=self._offered_kbps(now),
                         wire_factor=self._wire_factor(now))
        self.last_sample = sample
        if self.controller is not None and now - self._session_at >= WARMUP_S:
            self._apply(self.controller.update(sample))
        if self.on_sample is not None:
            self.on_sample(sample.send_rate_kbps * 1000.0, sample.queue_delay_ms / 1000.0)
        self._write_trace(now, sample, slot_ms)

    def _plan_audio(self) -> None:
        """Budget the audio of the session on air, and choose the next session's (a
        reconnect on a link measured to be narrow opens with less audio: audio_rate.py)."""
        on_air = self.publisher.session_audio_kbps
        if on_air is not None:
            self.controller.budget_audio(on_air)
        audio = self.controller.session_audio_kbps(int(self.settings.controller.audio_kbps))
        if audio != self._next_audio:
            self._next_audio = audio
            self.publisher.set_session_audio_bitrate(audio)
            log.debug("rate control: a new session would open with audio at %d kbit/s "
                      "(link capacity %s kbit/s)", audio, _f(self.controller.capacity_kbps))

    def _offered_kbps(self, now: float) -> float | None:
        """What the encoder handed to the output over the last OFFERED_WINDOW_S."""
        t0, b0 = self._written.add(now, self.publisher.stats.bytes_out)
        if now - t0 < 0.5 * OFFERED_WINDOW_S:
            return None
        return max(0, self._written.latest[1] - b0) * 8 / 1000.0 / (now - t0)

    def _wire_factor(self, now: float) -> float | None:
        """Bytes on the link per byte the encoder wrote, over the last WIRE_WINDOW_S.

        The container and transport overhead is measured, not assumed: MPEG-TS spends about
        half again on AAC frames (each fills most of three 188-byte packets) and libsrt adds
        44 bytes a packet, so SRT carries noticeably more than the encoder wrote, FLV over TCP
        little more; the controller budgets with this figure.
        """
        wire = self._reader.wire_bytes() if self._reader is not None else None
        if wire is None or now - self._session_at < WARMUP_S:   # (headers, first IDR)
            self._wire.clear()
            return None
        t0, w0, e0 = self._wire.add(now, wire, self.publisher.stats.bytes_out)
        es = self._wire.latest[2] - e0
        if now - t0 < 0.5 * WIRE_WINDOW_S or es < 4000:
            return None
        return max(0, self._wire.latest[1] - w0) / es

    def _apply(self, decision: RateDecision) -> None:
        cfg = self.settings.controller
        kbps = decision.video_kbps
        if kbps < cfg.floor_kbps and decision.fps_divisor > 1:
            # libx264 spends bit_rate/fps per frame: with every n-th frame sent, n times the
            # rate gives each sent frame the quality the decision's total rate allows
            kbps = min(int(cfg.ceiling_kbps), kbps * decision.fps_divisor)
        if kbps != self._requested:
            self._requested = kbps
            self.publisher.request_bitrate(kbps)
        self.publisher.set_video_pacing(decision.fps_divisor, decision.drop_video)
        self.publisher.set_padding(decision.padding_kbps)
        prev = self.decision
        self.decision = decision
        # every change of regime is logged; the many small steps of a recovery or a probe
        # only when the bitrate moved 10 % since the last line
        moved = self._logged_kbps is None or \
            abs(decision.video_kbps - self._logged_kbps) >= 0.1 * self._logged_kbps
        if prev is None or (prev.fps_divisor, prev.drop_video) != \
                (decision.fps_divisor, decision.drop_video) or (
                prev.reason != decision.reason and (decision.reason in (Reason.CUT, Reason.EMERGENCY, Reason.FLOOR)
                                                    or moved)):
            self._logged_kbps = decision.video_kbps
            cap = decision.capacity_kbps
            s = self.last_sample
            log.info("rate control: %s -> video %d kbit/s%s%s (link %.0f kbit/s, queue %.0f ms%s)",
                     decision.reason, decision.video_kbps,
                     f", 1/{decision.fps_divisor} of the frames" if decision.fps_divisor > 1 else "",
                     ", audio only" if decision.drop_video else "",
                     s.send_rate_kbps if s else 0.0, s.queue_delay_ms if s else 0.0,
                     f", capacity {cap:.0f} kbit/s" if cap else "")

    def _write_trace(self, now: float, sample: LinkSample | None, slot_ms: float = 0.0) -> None:
        if self._trace is None:
            return
        st = self.publisher.stats
        d = self.decision
        cap = self.controller.capacity_kbps if self.controller is not None else None
        self._trace.writerow((
            f"{now:.3f}", f"{now - self._t0:.3f}", int(st.connected),
            _f(sample and sample.send_rate_kbps), _f(sample and sample.queue_delay_ms),
            _f(sample and sample.queue_delay_ms - slot_ms), len(self.queue),
            _f(sample and sample.rtt_ms), _f(sample and sample.busy_rate_kbps), _f(cap),
            st.bitrate_kbps, d.fps_divisor if d else 1, int(d.drop_video) if d else 0,
            d.reason if d else ("fixed" if self.controller is None else ""),
            st.frames_out, st.frames_skipped, st.frames_dropped, st.reconnects, st.bytes_out,
            st.video_bytes_out, d.padding_kbps if d else 0,
            # the video rate decided (encoder rate x frames sent), for oscillation counts
            "" if d is None else (0 if d.drop_video else d.video_kbps),
            "" if sample is None or sample.wire_factor is None else f"{sample.wire_factor:.3f}"))
        self._trace_file.flush()


def _f(value) -> str:
    return "" if value is None else f"{value:.1f}"
