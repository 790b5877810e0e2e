"""Link readers: what the link monitor reads once per tick, one kind per live output.

    SRT:  SrtSink.stats() -> SrtLinkMeter -> LinkSample
    RTMP: RtmpSink's TCP socket -> TCP_INFO -> TcpLinkMeter -> LinkSample
"""

from __future__ import annotations

import logging
from typing import Protocol

from broadcaster.ratecontrol.sample import LinkSample
from broadcaster.ratecontrol.srt_meter import SrtLinkMeter
from broadcaster.ratecontrol.tcp_meter import TcpLinkMeter
from broadcaster.transport.output import OutputHandle

log = logging.getLogger(__name__)


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
    if handle.target.kind == "rtmp" and handle.sink is not None:
        return TcpReader(handle.sink, tcp_notsent_lowat)
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
    """RTMP: the RtmpSink's TCP socket -> TCP_INFO -> TcpLinkMeter."""

    def __init__(self, sink, notsent_lowat: int | None):
        self.sink = sink
        self.meter = TcpLinkMeter()
        self.info = None
        if notsent_lowat:
            try:
                sink.limit_send_buffer(notsent_lowat)
            except OSError as exc:
                log.warning("rate control: cannot limit the RTMP send buffer: %s", exc)

    def wire_bytes(self) -> int | None:
        """Bytes written to the socket so far (FLV in RTMP chunks), None until known."""
        return None if self.info is None else self.info.bytes_written

    def sample(self, now: float) -> LinkSample | None:
        try:
            info = self.sink.tcp_info()
        except OSError:                             # closed: the session ended
            return None
        self.info = info
        return self.meter.sample(now, info)
