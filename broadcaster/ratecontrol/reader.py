"""Link readers: what the link monitor reads once per tick, one kind per live output.

    SRT:  SrtSink.stats() -> SrtLinkMeter -> LinkSample
    RTMP: FFmpeg's TCP socket (found by peer address) -> TCP_INFO -> TcpLinkMeter -> LinkSample
"""

from __future__ import annotations

import logging
from typing import Protocol

from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.ratecontrol.srt_meter import SrtLinkMeter
from broadcaster.ratecontrol.tcp_meter import TcpLinkMeter
from broadcaster.transport.output import OutputHandle, Target
from broadcaster.transport.tcpinfo import find_tcp_socket_fd, limit_send_buffer, read_tcp_info

log = logging.getLogger(__name__)

TCP_FIND_PATIENCE_S = 3.0


class LinkReader(Protocol):
    """One output session's link, measured."""

    def sample(self, now: float) -> LinkSample | None:
        """This tick's measurement; None when there is none (yet, or any more)."""
        ...

    def wire_bytes(self) -> int | None:
        """Bytes written to the link so far, in the units of the sample's rates (None:
        unknown yet)."""
        ...


def reader_for(handle: OutputHandle | None, tcp_notsent_lowat: int | None, now: float) -> LinkReader | None:
    """The reader for an output session (None for a file, or no session)."""
    if handle is None:
        return None
    if handle.target.kind == "srt" and handle.sink is not None:
        return SrtReader(handle.sink)
    if handle.target.kind == "rtmp":
        return TcpReader(handle.target, tcp_notsent_lowat, now)
    return None


class SrtReader:
    """SRT: SrtSink.stats() -> SrtLinkMeter."""

    def __init__(self, sink):
        self.sink = sink
        self.meter = SrtLinkMeter()

    def sample(self, now: float) -> LinkSample | None:
        try:
            stats = self.sink.stats()
        except (ValueError, ConnectionError):      # closed or lost: the publisher reconnects
            return None
        return self.meter.sample(now, stats, self.sink.bytes_written, self.sink.bytes_handed)

    def wire_bytes(self) -> int:
        """Bytes written to the link so far, in the units the meter's rates count
        (MPEG-TS plus libsrt's per-packet header)."""
        return int(self.sink.link_bytes)


class TcpReader:
    """RTMP: FFmpeg's TCP socket (found by peer address) -> TCP_INFO -> TcpLinkMeter."""

    def __init__(self, target: Target, notsent_lowat: int | None, started: float):
        self.host, self.port = target.rtmp_peer
        self.notsent_lowat = notsent_lowat
        self.meter = TcpLinkMeter()
        self.handle = None
        self.started = started
        self.gave_up = False
        self.info = None

    def wire_bytes(self) -> int | None:
        """Bytes FFmpeg wrote to the socket so far (FLV in RTMP chunks), None until known."""
        return None if self.info is None else self.info.bytes_written

    def sample(self, now: float) -> LinkSample | None:
        if self.handle is None:
            if self.gave_up:
                return None
            self.handle = find_tcp_socket_fd(self.host, self.port)
            if self.handle is None:
                if now - self.started > TCP_FIND_PATIENCE_S:
                    self.gave_up = True
                    log.warning("rate control: cannot find the RTMP socket to %s:%d; the bitrate "
                                "stays fixed for this session", self.host, self.port)
                return None
            if self.notsent_lowat:
                try:
                    limit_send_buffer(self.handle, notsent_lowat=self.notsent_lowat)
                except OSError as exc:
                    log.warning("rate control: cannot limit the RTMP send buffer: %s", exc)
        try:
            info = read_tcp_info(self.handle)
        except OSError:                             # closed by FFmpeg: the session ended
            return None
        self.info = info
        return self.meter.sample(now, info)
