"""Opening an output container for a target URL: RTMP/RTMPS (FLV), SRT (MPEG-TS) or a file.

Network outputs are Python sinks PyAV muxes into (rtmp_client, srt): PyAV opens an output
URL holding the GIL, with no timeouts, so FFmpeg's own network protocols are not used. Errors
leave here with the stream key masked.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import av

from broadcaster.config import FILE_EXTENSIONS, OutputSettings
from broadcaster.errors import OutputError
from broadcaster.redact import redact, redact_url
from broadcaster.transport.rtmp_probe import default_port

log = logging.getLogger(__name__)
LISTENER_WAIT_S = 86400.0
# FFmpeg's interleaving holds every packet until each stream has one, or for
# max_interleave_delta (10 s by default): while rate control sends audio only, or one
# picture in n, the audio would sit in the muxer for up to 10 s and the ingest would see a
# dead stream. 0.2 s still sorts what the encoder muxes slightly out of order across the
# streams (a slot's picture before its audio; with no sorting at all FLV rejects the audio
# packet that comes after a later picture: "Invalid argument"), and audio alone goes out
# 0.2 s late.
LIVE_MUX_OPTIONS = {"max_interleave_delta": "200000"}


@dataclass(frozen=True)
class Target:
    url: str
    kind: str            # rtmp | srt | file

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    @property
    def is_network(self) -> bool:
        return self.kind != "file"

    @property
    def rtmp_peer(self) -> tuple[str, int]:
        """The ingest's host and TCP port of an rtmp:// or rtmps:// target (FFmpeg's defaults:
        port 1935, 443 for rtmps; localhost without a host)."""
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or default_port(self.rtmp_tls)

    @property
    def rtmp_tls(self) -> bool:
        """An rtmps:// target: RTMP over TLS."""
        return self.url.lower().startswith("rtmps://")


def parse_target(url: str) -> Target:
    lower = url.lower()
    if lower.startswith(("rtmp://", "rtmps://")):
        return Target(url, "rtmp")
    if lower.startswith("srt://"):
        return Target(url, "srt")
    if lower.startswith("file://"):
        return Target(url[len("file://"):], "file")
    return Target(url, "file")


class OutputHandle:
    """An open container plus what it was opened on (for link measurement and closing)."""

    def __init__(self, container, target: Target, sink=None):
        self.container = container
        self.target = target
        self.sink = sink     # the RTMP or SRT sink, when there is one

    def abort(self) -> None:
        """Unblock a write stuck on this connection (see stallguard). SRT detects its own
        stalls (SRTO_SNDTIMEO)."""
        abort = getattr(self.sink, "abort", None)
        if abort is not None:
            abort()

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close()
            except OSError:
                pass


def claim_new_file(path: Path) -> None:
    """Create path, empty, failing with FileExistsError when it is there already: the check and
    the creation are one step, so two broadcasters never write the same recording."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


class ConnectAbort:
    """Lets another thread (the connect guard) end a connection open_output() is making."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abort = None
        self.aborted = False

    def attach(self, abort) -> None:
        """The connection in progress is ended by abort() (at once, when already asked to)."""
        with self._lock:
            self._abort = abort
            aborted = self.aborted
        if aborted:
            abort()

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            abort = self._abort
        if abort is not None:
            abort()


def open_output(target: Target, settings: OutputSettings, stop=None,
                connecting: ConnectAbort | None = None) -> OutputHandle:
    """Open (connect) the output. Raises ConnectionError/OSError for retryable failures,
    OutputError for ones that retrying cannot fix. `stop` (a threading.Event) ends an SRT
    listener's wait for a caller, so shutdown never hangs there; `connecting` lets the
    caller's connect guard abort an RTMP connect."""
    if target.kind == "file":
        path = Path(target.url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            claim_new_file(path)
        except FileExistsError:
            raise OutputError(f"cannot write {path}: the file already exists (a recording is never "
                              "overwritten; choose another name, or put {time} in it)") from None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {redact(exc.strerror or str(exc))}") from None
        try:
            container = av.open(str(path), mode="w", format=FILE_EXTENSIONS[path.suffix.lower()])
        except (OSError, av.error.FFmpegError) as exc:
            path.unlink(missing_ok=True)
            raise OutputError(f"cannot write {path}: {redact(str(exc))}") from None
        return OutputHandle(container, target)
    if target.kind == "rtmp":
        from broadcaster.transport.rtmp_client import open_rtmp
        try:
            sink = open_rtmp(target.url, target.shown, connect_timeout_s=settings.connect_timeout_s,
                             write_timeout_s=settings.write_timeout_s,
                             on_connected=connecting.attach if connecting is not None else None)
        except ValueError as exc:
            raise OutputError(f"output {target.shown}: {exc}") from None
        return _muxing_into(sink, "flv", target)
    if target.kind == "srt":
        try:
            from broadcaster.transport.srt import (
                open_srt,  # libsrt binding (optional system library)
            )
        except ImportError as exc:
            raise OutputError(f"SRT output is not available: {exc}") from None
        from broadcaster.transport.srt_url import SrtUrlError, parse_srt_url
        try:
            url = parse_srt_url(target.url)
        except SrtUrlError as exc:
            raise OutputError(str(exc)) from None
        # a caller gives up after connect_timeout_s; a listener keeps waiting for its caller
        # (a day, or the URL's connect_timeout) and `stop` ends that wait at shutdown
        if url.mode == "caller":
            timeout = settings.connect_timeout_s
        elif "connect_timeout=" in target.url:
            timeout = url.connect_timeout_ms / 1000.0
        else:
            timeout = LISTENER_WAIT_S
        sink = open_srt(url, connect_timeout_s=timeout, stop=stop)
        return _muxing_into(sink, "mpegts", target)
    raise OutputError(f"unsupported output {target.shown}")


def _muxing_into(sink, container_format: str, target: Target) -> OutputHandle:
    """A live muxer writing into a connected sink (closed again if the muxer cannot open)."""
    try:
        container = av.open(sink, mode="w", format=container_format,
                            container_options=LIVE_MUX_OPTIONS)
    except BaseException:
        sink.close()
        raise
    return OutputHandle(container, target, sink)


def waits_for_caller(target: Target) -> bool:
    """An SRT listener: opening it waits (stoppably) for a caller, which is no stall."""
    if target.kind != "srt":
        return False
    from broadcaster.transport.srt_url import SrtUrlError, parse_srt_url
    try:
        return parse_srt_url(target.url).mode == "listener"
    except SrtUrlError:
        return False

