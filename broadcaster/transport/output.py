"""Opening an output container for a target URL: RTMP/RTMPS (FLV), SRT (MPEG-TS) or a file.

Errors leave here with the stream key masked: FFmpeg puts the URL in its messages.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import av

from broadcaster.config import FILE_EXTENSIONS, OutputSettings
from broadcaster.errors import OutputError
from broadcaster.redact import redact, redact_url
from broadcaster.transport.rtmp_probe import rtmp_handshake

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
        return parts.hostname or "127.0.0.1", parts.port or (443 if self.rtmp_tls else 1935)

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
        self.sink = sink     # the SRT socket sink, when there is one

    def abort(self) -> None:
        """Unblock a write stuck on this connection (see stallguard)."""
        abort_connection(self.target)

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


def open_output(target: Target, settings: OutputSettings, stop=None) -> OutputHandle:
    """Open (connect) the output. Raises ConnectionError/OSError for retryable failures,
    OutputError for ones that retrying cannot fix. `stop` (a threading.Event) ends an SRT
    listener's wait for a caller, so shutdown never hangs there."""
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
        # PyAV connects output URLs holding the GIL, without protocol options (rw_timeout
        # would be ignored): an ingest that accepts and stays silent would freeze the whole
        # process there. Python completes a handshake first, with a deadline (rtmp_probe);
        # write stalls are caught by the publisher's StallGuard.
        host, port = target.rtmp_peer
        rtmp_handshake(host, port, target.rtmp_tls, settings.connect_timeout_s, target.shown)
        try:
            container = av.open(target.url, mode="w", format="flv", container_options=LIVE_MUX_OPTIONS)
        except av.error.FFmpegError as exc:
            raise ConnectionError(f"cannot connect to {target.shown}: {_reason(exc)}") from None
        except OSError as exc:
            raise ConnectionError(f"cannot connect to {target.shown}: {_reason(exc)}") from None
        return OutputHandle(container, target)
    if target.kind == "srt":
        try:
            from broadcaster.transport.srt import open_srt  # libsrt binding (optional system library)
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
        try:
            container = av.open(sink, mode="w", format="mpegts", container_options=LIVE_MUX_OPTIONS)
        except BaseException:
            sink.close()
            raise
        return OutputHandle(container, target, sink)
    raise OutputError(f"unsupported output {target.shown}")


def waits_for_caller(target: Target) -> bool:
    """An SRT listener: opening it waits (stoppably) for a caller, which is no stall."""
    if target.kind != "srt":
        return False
    from broadcaster.transport.srt_url import SrtUrlError, parse_srt_url
    try:
        return parse_srt_url(target.url).mode == "listener"
    except SrtUrlError:
        return False


def abort_connection(target: Target) -> bool:
    """Shut down this process's TCP connection to an RTMP ingest (FFmpeg owns the socket):
    a send() or handshake blocked on it fails at once. SRT detects its own stalls."""
    if target.kind != "rtmp":
        return False
    from broadcaster.transport.tcpinfo import find_tcp_socket_fd, shutdown_socket
    handle = find_tcp_socket_fd(*target.rtmp_peer)
    if handle is None:
        return False
    shutdown_socket(handle)
    return True


def _reason(exc: BaseException) -> str:
    """The OS-level reason without FFmpeg's copy of the URL."""
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return redact(str(strerror))
    return redact(str(exc))
