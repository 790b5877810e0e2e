"""The encoder/mux thread: keeps one output session alive and reconnects with backoff.

The broadcast clock never waits for the network: while no ingest is connected, slots are
discarded (and counted), the connection is retried in the background (~2 s, x1.5, jitter,
capped; an absent RTMP ingest's port is checked meanwhile, see output.reconnect), and the
next session starts with a keyframe and fresh timestamps.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Callable

import av

from broadcaster.backoff import Backoff
from broadcaster.config import Config
from broadcaster.errors import OutputError
from broadcaster.media.slotqueue import SlotQueue
from broadcaster.media.stats import BroadcastStats
from broadcaster.output.encode import EncoderSession
from broadcaster.output.pacing import PicturePacing
from broadcaster.output.reconnect import ReconnectPolicy
from broadcaster.output.stallguard import StallGuard, StallWatcher
from broadcaster.redact import redact
from broadcaster.transport.output import ConnectAbort, OutputHandle, Target, open_output, waits_for_caller
from broadcaster.transport.rtmp_probe import handshake_answers, tcp_accepts

log = logging.getLogger(__name__)
STABLE_SESSION_S = 10.0   # a session that carried this much media resets the backoff
DISK_CHECK_INTERVAL_S = 1.0   # a file output's free space is looked at this often
DISK_RESERVE_S = 2.0          # ...and the recording ends while this much media still fits
DISK_RESERVE_MIN_BYTES = 256 * 1024


def disk_reserve_bytes(video_kbps: int, audio_kbps: int) -> int:
    """Free space a recording must keep to be closed properly (the last packets, the
    muxer's buffer, the trailer and the header's final duration)."""
    return max(DISK_RESERVE_MIN_BYTES, int((video_kbps + audio_kbps) * 1000 / 8 * DISK_RESERVE_S))


class PublisherEvents:
    """What the publisher reports (the service layer overrides these); called on its thread."""

    def on_connect_attempt(self) -> None: ...
    def on_connected(self) -> None: ...              # the first packet of a session was sent
    def on_disconnected(self, reason: str) -> None: ...
    def on_slot_written(self, nbytes: int, seconds: float, picture: bool) -> None: ...
    # (a slot muxed into an open output; picture: it carried a video frame)
    def on_bitrate(self, kbps: int) -> None: ...
    def on_lines_muxed(self, lines: tuple, when: float) -> None: ...   # first audio of a line sent
    def on_link_sample(self, send_bps: float, queue_delay_s: float) -> None: ...  # link monitor thread


class Publisher:
    def __init__(self, config: Config, target: Target, width: int, height: int, fps: int,
                 queue: SlotQueue, stats: BroadcastStats,
                 opener: Callable[[Target], OutputHandle] | None = None,
                 events: PublisherEvents | None = None):
        self.config = config
        self.target = target
        self.width, self.height, self.fps = width, height, fps
        self.queue = queue
        self.stats = stats
        self._stop = threading.Event()      # set when the thread ends: aborts a listener wait
        self._connecting = ConnectAbort()    # the connect attempt in progress, for its guard
        self._open = opener or (lambda t: open_output(t, config.output, stop=self._stop,
                                                      connecting=self._connecting))
        self.events = events or PublisherEvents()
        self._session_sent = False
        self._last_video = None
        rc = config.output.reconnect
        self.backoff = Backoff(rc.initial_s, rc.factor, rc.max_s, rc.jitter)
        # only a TCP ingest (RTMP) has a port to check cheaply
        self.reconnect = ReconnectPolicy(self.backoff, rc.probe_s if target.kind == "rtmp" else 0.0)
        self._probe: dict | None = None       # a port check running in the background
        self.bitrate_kbps = config.video.bitrate_kbps
        self.audio_kbps = config.audio.bitrate_kbps     # the next session's audio
        self._requested_kbps: int | None = None
        self._pacing = PicturePacing(fps)   # rate control: every n-th picture, or audio only
        self._padding_kbps = 0              # rate control: a probe's filler, kbit/s
        self._passphrase_reported = False
        self._session: EncoderSession | None = None
        self._handle: OutputHandle | None = None
        self._pending: dict | None = None     # a connection attempt running in the background
        self._next_disk_check = 0.0
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self.fatal: BaseException | None = None
        self._write_guard = StallGuard(config.output.write_timeout_s, "write")
        self._connect_guard = StallGuard(config.output.connect_timeout_s * 2, "connect")
        self._watcher = StallWatcher([self._write_guard, self._connect_guard])

    # -- control -----------------------------------------------------------------------
    def start(self) -> None:
        if not self.target.is_network:
            handle = self._open(self.target)                # a file error is fatal, at once
            self._write_guard.timeout_s = float("inf")      # a local file does not stall
            try:
                self._begin_session(handle, self._new_session(handle))
            except (OSError, av.error.FFmpegError) as exc:
                handle.close()
                raise OutputError(f"cannot write {self.target.shown}: {_why(exc)}") from None
        if self.target.is_network:
            self._watcher.start()
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def set_session_bitrate(self, kbps: int) -> None:
        """The video bitrate the next session opens at (rate control's starting point)."""
        self.bitrate_kbps = int(kbps)

    def set_session_audio_bitrate(self, kbps: int) -> None:
        """The audio bitrate the next session opens at (rate control: lower on a narrow
        link; AAC's bitrate is fixed while a session lasts)."""
        self.audio_kbps = int(kbps)

    @property
    def session_audio_kbps(self) -> int | None:
        """The audio bitrate of the session on air, or None between sessions."""
        session = self._session
        return session.audio_kbps if session is not None else None

    def request_bitrate(self, kbps: int) -> None:
        """Ask for a new video bitrate; applied by the encoder thread at the next slot."""
        self._requested_kbps = int(kbps)

    def set_video_pacing(self, fps_divisor: int = 1, drop_video: bool = False) -> None:
        """Rate control's fast actuator: from the next slot send only every fps_divisor-th
        picture, or none but one a second (drop_video: see pacing.py). Audio is always sent;
        skipped pictures are not replaced, so the next one sent keeps its own pts."""
        self._pacing.set(fps_divisor, drop_video)

    def set_padding(self, kbps: int) -> None:
        """Rate control's probe: add this much H.264 filler to the video from the next slot
        (0: none). It tests the link above the bitrate without touching the picture."""
        self._padding_kbps = max(0, int(kbps))

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def handle(self) -> OutputHandle | None:
        return self._handle

    # -- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                slot = self.queue.get(timeout=0.1)
                self.stats.queue_slots = len(self.queue)
                if slot is None:
                    if self.queue.closed:
                        break
                    self._poll_connection()
                    continue
                if slot.video is not None:
                    self._last_video = slot.video    # also offline: a new session starts from it
                if self._session is None:
                    self._poll_connection()
                if self._session is None:
                    self.stats.slots_offline += 1
                    continue
                self._write(slot)
        except BaseException as exc:   # a bug: report it, the supervisor decides
            self.fatal = exc
            log.exception("publisher stopped by an unexpected error")
        finally:
            self._stop.set()
            self._end_session(flush=True, reason=None)
            self._watcher.stop()

    def _write(self, slot) -> None:
        session = self._session
        if self._requested_kbps is not None:
            self.stats.bitrate_kbps = session.set_bitrate(self._requested_kbps)
            self._requested_kbps = None
            self.events.on_bitrate(self.stats.bitrate_kbps)
        if slot.video is None and session.needs_picture:
            slot.video = self._last_video     # a new session cannot repeat what it never had
        skip = self._pacing.skip(slot.index, session.needs_picture)
        session.padding_kbps = self._padding_kbps
        started = time.perf_counter()
        self._write_guard.begin(self._handle.abort)
        try:
            written = session.write(slot, skip_video=skip)
        except (OSError, av.error.FFmpegError) as exc:
            if self.target.is_network:
                self._end_session(flush=False, reason=f"ingest connection lost: {_why(exc)}")
            else:
                self._stop_recording(exc, session.media_seconds)
            return
        finally:
            self._write_guard.end()
        if not self.target.is_network and self._disk_nearly_full(session):
            return
        self.events.on_slot_written(written, time.perf_counter() - started, not skip)
        if slot.lines:
            self.events.on_lines_muxed(slot.lines, time.monotonic())
        if written and not self._session_sent:
            self._session_sent = True
            self.events.on_connected()
        self.stats.frames_out += 1
        if skip:
            self.stats.frames_skipped += 1
        self.stats.bytes_out += written
        self.stats.video_bytes_out = session.bytes_video
        self.stats.audio_bytes_out = session.bytes_audio
        self.stats.pts_seconds = session.media_seconds
        if written and self.stats.first_packet_at is None:
            self.stats.first_packet_at = time.monotonic()
        if session.media_seconds >= STABLE_SESSION_S and self.backoff.attempt:
            self.backoff.reset()

    def _disk_nearly_full(self, session: EncoderSession) -> bool:
        """Every DISK_CHECK_INTERVAL_S: when the recording's filesystem is down to its reserve,
        end the recording now, while the file can still be finished."""
        now = time.monotonic()
        if now < self._next_disk_check:
            return False
        self._next_disk_check = now + DISK_CHECK_INTERVAL_S
        try:
            stat = os.statvfs(os.path.dirname(os.path.abspath(self.target.url)))
        except OSError:
            return False
        free = stat.f_bavail * stat.f_frsize
        reserve = disk_reserve_bytes(session.bitrate_kbps, self.config.audio.bitrate_kbps)
        if free >= reserve:
            return False
        self.fatal = OutputError(
            f"recording stopped: the disk holding {self.target.shown} is full ({free // 1024} KiB "
            f"free, {reserve // 1024} KiB kept to finish the file); the file holds the first "
            f"{session.media_seconds:.1f} s")
        log.error("%s", self.fatal)
        self._end_session(flush=True, reason=None)
        return True

    def _stop_recording(self, exc: BaseException, seconds: float) -> None:
        """A file that cannot be written (a full disk, a removed drive) ends the broadcast with
        an error: there is no audience to keep on air, and writing on after a gap would hide
        it. The file is finished as far as the disk allows; a restart (systemd) begins a new
        one when the name holds {time}."""
        self.fatal = OutputError(f"recording stopped: cannot write {self.target.shown}: {_why(exc)} "
                                 f"(the file holds the first {seconds:.1f} s)")
        log.error("%s", self.fatal)
        self._end_session(flush=True, reason=None)

    def _poll_connection(self) -> None:
        if not self.target.is_network or self._session is not None:
            return
        pending = self._pending
        if pending is not None:
            if not pending["done"].is_set():
                return
            self._pending = None
            if pending["session"] is not None:
                self._begin_session(pending["handle"], pending["session"])
                return
            error = pending["error"]
            self.stats.last_error = str(error)
            if isinstance(error, OutputError):
                self.fatal = error
            self.events.on_disconnected(f"connect failed: {redact(str(error))}")
            if getattr(error, "passphrase_mismatch", False) and not self._passphrase_reported:
                self._passphrase_reported = True
                log.error("the SRT ingest rejected our passphrase (%s): fix the passphrase in "
                          "the output URL. A live service keeps retrying with backoff, so the "
                          "stream comes back once the ingest and this URL agree; this is "
                          "logged once, each retry only as a warning", redact(str(error)))
            delay = self.reconnect.failed(time.monotonic(), getattr(error, "absent", False),
                                          getattr(error, "hung", False))
            log.warning("connect failed: %s; retrying in %.1f s (attempt %d)", redact(str(error)),
                        delay, self.backoff.attempt)
            return
        if not self.reconnect.attempt_due(time.monotonic()):
            self._check_port()
            return
        state = {"done": threading.Event(), "handle": None, "session": None, "error": None}
        self._pending = state
        self.reconnect.attempt_started()
        self.events.on_connect_attempt()
        log.info("connecting to %s", self.target.shown)

        connecting = self._connecting = ConnectAbort()

        def attempt():
            handle = None
            # a connect or handshake that hangs (an ingest that accepts but never answers)
            if not waits_for_caller(self.target):
                self._connect_guard.begin(connecting.abort)
            try:
                handle = self._open(self.target)
                state["session"] = self._new_session(handle)   # connects, handshakes, sends headers
                state["handle"] = handle
            except BaseException as exc:
                if handle is not None:
                    _close_quietly(handle)
                state["error"] = exc if isinstance(exc, (OutputError, ConnectionError)) else \
                    ConnectionError(f"cannot publish to {self.target.shown}: {_why(exc)}")
            finally:
                self._connect_guard.end()
                state["done"].set()

        threading.Thread(target=attempt, name="connect", daemon=True).start()

    def _check_port(self) -> None:
        """While the ingest is absent (or hung): a TCP connect (or RTMP handshake) check in the
        background, one at a time; its answer may move the next attempt to now."""
        probe = self._probe
        if probe is not None:
            if not probe["done"].is_set():
                return
            self._probe = None
            if self.reconnect.probed(time.monotonic(), probe["accepted"]):
                log.info("%s %s again: reconnecting now", self.target.shown,
                         "answers the handshake" if probe["handshake"] else "accepts connections")
            return
        if not self.reconnect.probe_due(time.monotonic()):
            return
        handshake = self.reconnect.checks_handshake
        probe = {"done": threading.Event(), "accepted": False, "handshake": handshake}
        self._probe = probe
        host, port = self.target.rtmp_peer
        tls = self.target.rtmp_tls
        timeout = self.reconnect.probe_interval_s

        def check():
            try:
                if handshake:   # a distant ingest needs a few round trips for it
                    probe["accepted"] = handshake_answers(host, port, tls, max(1.0, timeout))
                else:
                    probe["accepted"] = tcp_accepts(host, port, timeout)
            finally:
                probe["done"].set()

        threading.Thread(target=check, name="ingest-check", daemon=True).start()

    def _new_session(self, handle: OutputHandle) -> EncoderSession:
        audio = self.config.audio
        if self.audio_kbps != audio.bitrate_kbps:
            audio = replace(audio, bitrate_kbps=self.audio_kbps)
        session = EncoderSession(handle.container, self.width, self.height, self.fps,
                                 self.config.video, audio, self.bitrate_kbps)
        handle.container.start_encoding()   # opens the connection and writes the header now
        return session

    def _begin_session(self, handle: OutputHandle, session: EncoderSession) -> None:
        self._handle = handle
        self._session = session
        self._session_sent = False
        self.events.on_bitrate(session.bitrate_kbps)
        self.stats.bitrate_kbps = self._session.bitrate_kbps
        self.reconnect.connected()
        if self.stats.connects:
            self.stats.reconnects += 1
        self.stats.connects += 1
        self.stats.connected = True
        log.info("on air: %s (%dx%d@%d, video ceiling %d kbit/s, audio %d kbit/s)", self.target.shown,
                 self.width, self.height, self.fps, self.config.video.bitrate_kbps, session.audio_kbps)

    def _end_session(self, flush: bool, reason: str | None) -> None:
        session, handle = self._session, self._handle
        self._session = None
        self._handle = None
        self.stats.connected = False
        if session is not None:
            self.bitrate_kbps = session.bitrate_kbps
            if handle is not None:
                self._write_guard.begin(handle.abort)     # the final flush may hit a stall too
            try:
                session.close(flush=flush)
            except (OSError, av.error.FFmpegError) as exc:
                log.debug("closing the output: %s", _why(exc))
            finally:
                self._write_guard.end()
        if handle is not None:
            handle.close()
        if reason:
            self.events.on_disconnected(reason)
            self.stats.last_error = reason
            delay = self.reconnect.dropped(time.monotonic())
            log.warning("%s; reconnecting in %.1f s", reason, delay)


def _close_quietly(handle: OutputHandle) -> None:
    try:
        handle.container.close()
    except (OSError, av.error.FFmpegError):
        pass
    handle.close()


def _why(exc: BaseException) -> str:
    return redact(getattr(exc, "strerror", None) or str(exc))
