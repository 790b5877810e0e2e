"""An FLV byte stream, as a muxer writes it in pieces, cut back into whole tags.

FLV: a header ("FLV", version, flags, header size), then PreviousTagSize0 (4 bytes), then
tags: type (1) | body size (3) | timestamp (3, then 1 high byte) | stream id (3) | body |
PreviousTagSize (4). A tag may arrive split over any number of writes.
"""

from __future__ import annotations

from dataclasses import dataclass

TAG_HEADER = 11
TRAILER = 4


class FlvError(ValueError):
    """The bytes are not an FLV stream."""


@dataclass(frozen=True)
class FlvTag:
    type_id: int         # 8 audio, 9 video, 18 script data
    timestamp: int       # ms
    body: bytes


class FlvTagSplitter:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._header_left: int | None = None     # bytes of header + PreviousTagSize0 to skip

    def feed(self, data: bytes) -> list[FlvTag]:
        """The tags that data completes."""
        self._buf += data
        buf = self._buf
        if self._header_left is None:
            if len(buf) < 9:
                return []
            if bytes(buf[:3]) != b"FLV":
                raise FlvError("the muxer's output does not start with an FLV header")
            self._header_left = int.from_bytes(buf[5:9], "big") + TRAILER
        if self._header_left:
            skip = min(self._header_left, len(buf))
            del buf[:skip]
            self._header_left -= skip
            if self._header_left:
                return []
        tags = []
        pos = 0
        while len(buf) - pos >= TAG_HEADER:
            size = int.from_bytes(buf[pos + 1:pos + 4], "big")
            end = pos + TAG_HEADER + size + TRAILER
            if len(buf) < end:
                break
            timestamp = int.from_bytes(buf[pos + 4:pos + 7], "big") | (buf[pos + 7] << 24)
            tags.append(FlvTag(buf[pos] & 0x1F, timestamp,
                               bytes(buf[pos + TAG_HEADER:pos + TAG_HEADER + size])))
            pos = end
        del buf[:pos]
        return tags

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a tag not yet complete."""
        return len(self._buf)
