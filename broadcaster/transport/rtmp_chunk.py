"""The RTMP chunk stream: messages cut into chunks to send, and chunks put back together.

Outgoing messages always start with a full (type 0) header and continue with type 3
headers, repeating the extended timestamp as FFmpeg and nginx-rtmp expect. Incoming chunks
may use every header type and interleave chunk streams; Set Chunk Size from the peer is
applied here, as it changes how the following bytes are cut.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL = 1, 2, 3, 4
WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 5, 6
AUDIO, VIDEO, DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0 = 8, 9, 15, 17, 18, 20
DEFAULT_CHUNK_SIZE = 128
MAX_MESSAGE_SIZE = 16 * 1024 * 1024 - 1
_EXTENDED = 0xFFFFFF


class ChunkError(ValueError):
    """The peer sent bytes that are not a valid RTMP chunk stream."""


@dataclass(frozen=True)
class Message:
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


def encode_message(csid: int, type_id: int, timestamp: int, stream_id: int, payload: bytes,
                   chunk_size: int) -> bytes:
    """One message as chunks of at most chunk_size payload bytes (csid 2..63)."""
    timestamp &= 0xFFFFFFFF
    extended = timestamp >= _EXTENDED
    ext = struct.pack(">I", timestamp) if extended else b""
    first = (bytes([csid & 0x3F]) + (_EXTENDED if extended else timestamp).to_bytes(3, "big")
             + len(payload).to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)
             + ext)
    if len(payload) <= chunk_size:
        return first + payload
    more = bytes([0xC0 | (csid & 0x3F)]) + ext
    parts = [first, payload[:chunk_size]]
    for start in range(chunk_size, len(payload), chunk_size):
        parts.append(more)
        parts.append(payload[start:start + chunk_size])
    return b"".join(parts)


@dataclass
class _StreamState:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    body: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Feed received bytes; get back the messages they complete."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._buf = bytearray()
        self._streams: dict[int, _StreamState] = {}

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        messages = []
        while True:
            message, done = self._one_chunk()
            if not done:
                return messages
            if message is not None:
                if message.type_id == SET_CHUNK_SIZE and len(message.payload) >= 4:
                    size = struct.unpack_from(">I", message.payload)[0] & 0x7FFFFFFF
                    if size < 1:
                        raise ChunkError("the peer set a chunk size of 0")
                    self.chunk_size = size
                messages.append(message)

    def _one_chunk(self) -> tuple[Message | None, bool]:
        buf = self._buf
        if not buf:
            return None, False
        fmt, csid, pos = buf[0] >> 6, buf[0] & 0x3F, 1
        if csid == 0:
            if len(buf) < 2:
                return None, False
            csid, pos = 64 + buf[1], 2
        elif csid == 1:
            if len(buf) < 3:
                return None, False
            csid, pos = 64 + buf[1] + buf[2] * 256, 3
        header_len = (11, 7, 3, 0)[fmt]
        if len(buf) < pos + header_len:
            return None, False
        state = self._streams.get(csid)
        if state is None:
            if fmt != 0:
                raise ChunkError(f"chunk stream {csid} starts without a full header")
            state = self._streams[csid] = _StreamState()
        field3 = int.from_bytes(buf[pos:pos + 3], "big") if fmt < 3 else None
        extended = field3 == _EXTENDED if fmt < 3 else state.extended
        end = pos + header_len + (4 if extended else 0)
        if len(buf) < end:
            return None, False
        new_message = not state.body
        length, type_id = state.length, state.type_id
        if fmt < 2:
            length = int.from_bytes(buf[pos + 3:pos + 6], "big")
            type_id = buf[pos + 6]
        value = struct.unpack_from(">I", buf, pos + header_len)[0] if extended else field3
        take = min(self.chunk_size, length - len(state.body)) if not new_message else \
            min(self.chunk_size, length)
        if len(buf) < end + take:
            return None, False
        # the whole chunk is here: commit the header
        if fmt == 0:
            state.stream_id = struct.unpack_from("<I", buf, pos + 7)[0]
        if fmt < 3:
            state.extended = extended
        if new_message:
            if fmt == 0:
                state.timestamp, state.delta = value, 0
            elif fmt < 3:
                state.delta = value
                state.timestamp = (state.timestamp + value) & 0xFFFFFFFF
            else:
                state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
            state.length, state.type_id = length, type_id
        state.body += buf[end:end + take]
        del buf[:end + take]
        if len(state.body) < state.length:
            return None, True
        message = Message(state.type_id, state.stream_id, state.timestamp, bytes(state.body))
        state.body = bytearray()
        return message, True
